// Training configuration: one strict YAML file (configs/train/*.yaml) with sections model, data,
// train, eval, checkpoint, run, sdm; `--set section.key=value` overrides any key before the file
// is checked. Each section is a struct parsed and range-checked next to its definition, so an
// error names the file, the key and the value. Every key is documented in docs/configs.md.
#pragma once

#include <string>
#include <vector>

#include "config/model_config.h"
#include "config/strict_yaml.h"
#include "ops/options.h"
#include "sdm/sparsity_control.h"

namespace mcd::train {

// model: exactly one of preset / config / init_from.
struct ModelSection {
  std::string preset, config_file, init_from;
  void parse(const config::StrictYamlMap& m);
};

struct DataSection {
  std::string format = "auto";
  std::vector<std::string> paths;
  std::string cache_dir = ".cache/tokens/default";
  double val_fraction = 0.005;
  uint64_t split_seed = 0;
  int64_t max_documents = -1;
  // A restricted vocabulary (data/tokenizer/vocab_map.h, `data vocab`): the corpus is tokenized
  // through it, the model's vocabulary becomes its size, and every saved model carries it.
  std::string vocab_map;
  void parse(const config::StrictYamlMap& m);
};

// The YAML section `train`: the optimisation itself.
struct OptimSection {
  int64_t seq_len = 256;     // L: tokens per training sequence (windows are L+1)
  int64_t batch_size = 8;    // global sequences per optimizer step (all ranks, all micro-batches)
  int64_t grad_accum = 1;    // micro-batches per optimizer step on each rank
  int64_t steps = 100;
  double lr = 1e-3, min_lr_ratio = 0.1;
  int64_t warmup_steps = 10;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;    // global gradient-norm clip; 0 = no clipping (the norm is still logged)
  std::string precision = "fp32";  // fp32 | bf16 (CUDA autocast, fp32 master weights)
  uint64_t seed = 0;
  // Each step's forward and backward as a CUDA graph (ops/step_graphs.h): one launch instead of the
  // host queueing thousands of kernels. On a CUDA device in one process; needs grad_accum 1 and no
  // gates being learned (sdm.enabled false: their noise and regulariser run outside a graph).
  bool cuda_graphs = false;
  void parse(const config::StrictYamlMap& m);
};

struct EvalSection {
  int64_t interval = 50;    // steps; 0 = only at the end
  int64_t windows = 32;     // validation windows per evaluation; 0 = all
  int64_t batch_size = 8;
  // A validation corpus from outside the training data (e.g. WikiText-2 validation): the final
  // model's loss over all of it, in consecutive windows of seq_len + 1, and the unigram baseline's
  // on the same tokens go into the summary (corpus_val_loss, unigram_corpus_val_loss). Empty: none.
  std::vector<std::string> corpus;
  std::string corpus_format = "auto";  // auto | wikitext | wikiextractor | text
  void parse(const config::StrictYamlMap& m);
};

struct CheckpointSection {
  int64_t interval = 100;   // steps; 0 = only at the end
  int64_t keep_last = 2;
  void parse(const config::StrictYamlMap& m);
};

struct RunSection {
  std::string out_dir = "runs/default";
  std::string device = "auto";  // auto | cpu | cuda | cuda:N (checked when parsed)
  int64_t threads = 0;          // LibTorch's and the BLAS pool (util/cpu_threads.h); 0 = the CLI's
  int64_t log_interval = 10;
  double max_minutes = 0;       // stop (with a checkpoint) after this wall time; 0 = no limit
  void parse(const config::StrictYamlMap& m);
};

// sdm (METHOD.md §2): channel gates learned during pre-training.
struct SdmSection {
  bool enabled = false;
  std::string gate_type = "hard_concrete";
  int64_t gate_block = 1;
  double gate_init = 1.0;
  double gate_lr = 0.1;  // constant learning rate of the gate logits (no weight decay)
  // Which gate keys the file set explicitly (an already gated init_from must agree with them).
  bool gate_type_set = false, gate_block_set = false, gate_init_set = false;
  sdm::SparsitySettings control;  // target, warm-up, lagrangian/penalty, λ rates, τ schedule
  SdmSection() { control.lambda_signal = "deterministic"; }  // pre-training's default (docs/sdm.md)
  void parse(const config::StrictYamlMap& m);
};

// ops (docs/configs.md, "`ops` section"): the ops layer's options for this run. Only the keys the
// file sets (or `--set ops.key=…`) change the process's options (the CLI's global ones otherwise).
struct OpsSection {
  std::vector<std::pair<std::string, std::string>> settings;  // key, value, in file order
  void parse(const config::StrictYamlMap& m);
  ops::OpsOptions apply(ops::OpsOptions base) const;
};

struct TrainConfig {
  ModelSection model;
  DataSection data;
  OptimSection train;
  EvalSection eval;
  CheckpointSection checkpoint;
  RunSection run;
  SdmSection sdm;
  OpsSection ops;
  std::string source;  // the file it came from (for messages)

  ModelConfig model_config() const;  // resolves preset / config / init_from, adds SDM gates
};

// Reads `path`, applies overrides ("section.key=value", value parsed as YAML), checks strictly.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace mcd::train
