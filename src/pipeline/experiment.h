// The experiment file of `mamba-codesign run` (docs/pipeline.md) and the stage plan it implies.
// Torch-free: the plan names the stages, what each needs and the settings its result depends on;
// the CLI binds each stage kind to its action (pre-training, CSP, pruning, fine-tuning, profile,
// report).
//
// Variant chains (METHOD §5), every variant from the same corpus, tokens and seeds:
//   M_base       dense pre-training → full fine-tuning
//   M_CSP        dense → CSP → full fine-tuning
//   M_SDM        SDM pre-training → prune → full fine-tuning
//   M_SGH        dense → magnitude-proxy importance → SGH-PEFT
//   M_SDM+SGH    SDM → prune → SGH-PEFT with the gates' importance
//   M_full       SDM → CSP (gates permuted with the weights) → prune → SGH-PEFT, gate importance
//   M_challenge  dense → magnitude pruning to M_SDM's kept widths → LoRA on every layer
//   LoRA-all / IA3-all   dense → LoRA / IA³ on every layer (the PEFT baselines)
// Stages shared by several variants run once (M_SDM and M_SDM+SGH share the pruned model). With
// vocab.restrict, a `vocab` stage comes before both pre-trainings.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mcd::pipeline {

// The variants by their report names; parse_variant accepts these spellings only.
enum class Variant { kBase, kCsp, kSdm, kSgh, kSdmSgh, kFull, kChallenge, kLoraAll, kIa3All };
const char* variant_name(Variant v);  // "M_base", "M_CSP", …, "LoRA-all", "IA3-all"
const char* variant_slug(Variant v);  // its stage folders: "base", "csp", …, "lora-all", "ia3-all"
Variant parse_variant(const std::string& name);
std::vector<Variant> all_variants();

struct TaskSpec {
  std::string name;      // a GLUE task (cola, sst2, …) or "custom"
  std::string data_dir;  // GLUE: the folder holding the task folders
  std::string train, dev;  // custom: JSONL files
  std::string label;     // the name used in stage folders and the report (default: name)
};

struct Experiment {
  std::string file;  // where it was read from (for messages)
  std::string name, description;
  std::string out_dir;  // the run directory
  // Sections whose keys are checked here and passed on to the stages as settings.
  nlohmann::json corpus, model, pretrain, sdm, csp, prune, peft, finetune, profile;
  // vocab: {restrict, min_count}. With restrict, a `vocab` stage builds a restricted vocabulary
  // (data/tokenizer/vocab_map.h) from the corpus's training documents and the tasks' training
  // data; both pre-trainings use it and every model derived from them carries it.
  nlohmann::json vocab;
  std::vector<TaskSpec> tasks;
  std::vector<int64_t> seeds;
  std::vector<Variant> variants;
};

// Reads and checks an experiment file: unknown keys, wrong types, empty lists, a variant or task
// name that does not exist — each an mcd::Error naming the file and the key.
Experiment load_experiment(const std::string& path);

// One planned stage; `kind` selects the action the CLI binds.
struct PlannedStage {
  std::string name;
  std::string kind;  // vocab | pretrain | importance | csp | prune | finetune | profile | report
  std::vector<std::string> needs;
  nlohmann::json settings;
  double expected_seconds = 1;
  bool exclusive = false;  // runs alone when stages run concurrently (the profile's timings)
};

// The stages the experiment's variants need, each once, in an order where needs come first.
std::vector<PlannedStage> plan_stages(const Experiment& e);

}  // namespace mcd::pipeline
