// The experiment file and its stage plan (see experiment.h).
#include "pipeline/experiment.h"

#include <algorithm>
#include <map>
#include <set>

#include "config/model_config.h"
#include "config/strict_yaml.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::pipeline {
namespace {

struct VariantInfo {
  Variant v;
  const char* name;  // in the report
  const char* slug;  // in stage folders
};
constexpr VariantInfo kVariants[] = {
    {Variant::kBase, "M_base", "base"},         {Variant::kCsp, "M_CSP", "csp"},
    {Variant::kSdm, "M_SDM", "sdm"},            {Variant::kSgh, "M_SGH", "sgh"},
    {Variant::kSdmSgh, "M_SDM+SGH", "sdm-sgh"}, {Variant::kFull, "M_full", "full"},
    {Variant::kChallenge, "M_challenge", "challenge"}, {Variant::kLoraAll, "LoRA-all", "lora-all"},
    {Variant::kIa3All, "IA3-all", "ia3-all"}};

const VariantInfo& info(Variant v) {
  for (const auto& i : kVariants)
    if (i.v == v) return i;
  fail("unknown variant");
}

const std::set<std::string> kGlueTasks = {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"};

// A section's schema: every key with its default, whose JSON type is the type the value must have
// (integer, number, boolean, string, list of strings, list of integers). A null default marks a
// required key of the type given by `required_types`.
using Schema = std::vector<std::pair<std::string, nlohmann::json>>;

std::string yaml_line(const YAML::Node& n) {
  const auto m = n.Mark();
  return m.line >= 0 ? " (line " + std::to_string(m.line + 1) + ")" : std::string();
}

nlohmann::json read_value(const YAML::Node& v, const nlohmann::json& like, const std::string& where) {
  auto bad = [&](const std::string& want) -> nlohmann::json {
    fail(where + " must be " + want + yaml_line(v));
  };
  try {
    if (like.is_boolean()) return v.IsScalar() ? nlohmann::json(v.as<bool>()) : bad("true or false");
    if (like.is_number_integer()) return v.IsScalar() ? nlohmann::json(v.as<int64_t>()) : bad("an integer");
    if (like.is_number()) return v.IsScalar() ? nlohmann::json(v.as<double>()) : bad("a number");
    if (like.is_string()) return v.IsScalar() ? nlohmann::json(v.as<std::string>()) : bad("a string");
    if (like.is_array()) {
      if (!v.IsSequence()) return bad("a list");
      const bool ints = !like.empty() && like.front().is_number_integer();
      nlohmann::json out = nlohmann::json::array();
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].IsScalar()) return bad(ints ? "a list of integers" : "a list of strings");
        if (ints) {
          out.push_back(v[i].as<int64_t>());
        } else {
          out.push_back(v[i].as<std::string>());
        }
      }
      return out;
    }
  } catch (const YAML::Exception&) {
    return bad(like.is_boolean() ? "true or false" : like.is_number_integer() ? "an integer"
                                                 : like.is_number()           ? "a number"
                                                 : like.is_array()            ? "a list of integers"
                                                                              : "a string");
  }
  fail(where + ": unsupported schema type");
}

nlohmann::json read_section(const YAML::Node& root, const std::string& section, const Schema& schema,
                            const std::string& file) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : schema) out[k] = v;
  const YAML::Node node = root[section];
  if (!node) return out;
  MCD_CHECK(node.IsMap(), file, ": '", section, "' must be a mapping of keys to values", yaml_line(node));
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const auto it = std::find_if(schema.begin(), schema.end(), [&](const auto& p) { return p.first == key; });
    if (it == schema.end()) {
      std::string known;
      for (const auto& p : schema) known += (known.empty() ? "" : ", ") + p.first;
      fail(file + ": unknown key '" + section + "." + key + "'" + yaml_line(kv.first) + "; known: " + known);
    }
    out[key] = read_value(kv.second, it->second, file + ": '" + section + "." + key + "'");
  }
  return out;
}

const Schema kCorpus = {{"format", "wikiextractor"}, {"paths", nlohmann::json::array({""})},
                        {"val_fraction", 0.02},      {"max_documents", int64_t(-1)},
                        {"validation_paths", nlohmann::json::array()}, {"validation_format", "auto"}};
// preset: both pre-trainings start from a fresh model of that shape; init_from: from this HF model folder
// (continued pre-training, e.g. of state-spaces/mamba-130m-hf: its weights, its tokenizer.json; the SDM
// pre-training adds gates to it). Exactly one of them; preset's default applies when neither is given.
const Schema kModel = {{"preset", "mamba-tiny"}, {"init_from", ""}};
const Schema kPretrain = {{"steps", int64_t(200)}, {"batch_size", int64_t(8)},  {"seq_len", int64_t(128)},
                          {"lr", 4e-3},            {"warmup_steps", int64_t(20)}, {"precision", "fp32"},
                          {"seed", int64_t(0)},    {"eval_windows", int64_t(64)}};
const Schema kSdm = {{"target_sparsity", 0.5}, {"granularity", int64_t(1)}, {"gate_type", "hard_concrete"}};
const Schema kCsp = {{"calibration_windows", int64_t(16)}, {"seq_len", int64_t(128)}};
// granularity: the pruning unit of the SDM model without CSP ordering (M_SDM and what builds on it;
// 1 = the gates' own channel decisions). M_full prunes its CSP-ordered channels in blocks of
// sdm.granularity instead (METHOD §5: block-granular, so the ordering matters).
const Schema kPrune = {{"round_to", int64_t(1)}, {"granularity", int64_t(1)}};
const Schema kPeft = {{"rank", int64_t(16)}, {"alpha", 32.0}, {"dropout", 0.05}, {"lora_percentile", 75.0}};
const Schema kFinetune = {{"epochs", int64_t(3)}, {"batch_size", int64_t(32)}, {"max_length", int64_t(128)},
                          {"max_train_examples", int64_t(0)}, {"lr", 0.0}, {"lr_scale", 1.0},
                          {"pooling", "last"}};
const Schema kVocab = {{"restrict", false}, {"min_count", int64_t(1)}};
const Schema kProfile = {{"prefill", nlohmann::json::array({"1x128"})},
                         {"decode_batch", nlohmann::json::array({int64_t(1)})},
                         {"iters", int64_t(20)},
                         {"at_presets", nlohmann::json::array()},
                         {"at_round_to", int64_t(16)}};

}  // namespace

const char* variant_name(Variant v) { return info(v).name; }
const char* variant_slug(Variant v) { return info(v).slug; }

Variant parse_variant(const std::string& name) {
  std::string known;
  for (const auto& i : kVariants) {
    if (name == i.name) return i.v;
    known += (known.empty() ? "" : ", ") + std::string(i.name);
  }
  fail("unknown variant '" + name + "'; known: " + known);
}

std::vector<Variant> all_variants() {
  std::vector<Variant> out;
  for (const auto& i : kVariants) out.push_back(i.v);
  return out;
}

Experiment load_experiment(const std::string& path) {
  const YAML::Node root = config::load_yaml_file(path);
  MCD_CHECK(root.IsMap(), path, ": an experiment file is a mapping of sections");
  const std::set<std::string> known = {"name", "description", "out_dir", "corpus", "model", "pretrain", "sdm",
                                       "csp", "prune", "peft", "finetune", "profile", "vocab", "tasks", "seeds",
                                       "variants"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(path + ": unknown key '" + key + "'" + yaml_line(kv.first) + "; known: " + list);
    }
  }
  Experiment e;
  e.file = path;
  config::StrictYamlMap top(root, path);
  e.name = top.get_string("name", "");
  MCD_CHECK(!e.name.empty(), path, ": 'name' is required");
  e.description = top.get_string("description", "");
  e.out_dir = top.get_string("out_dir", "runs/" + e.name);
  e.corpus = read_section(root, "corpus", kCorpus, path);
  MCD_CHECK(!(e.corpus["paths"].empty() || e.corpus["paths"][0] == ""), path, ": 'corpus.paths' is required");
  for (const char* key : {"format", "validation_format"}) {
    const std::string format = e.corpus[key].get<std::string>();
    MCD_CHECK(format == "auto" || format == "text" || format == "wikitext" || format == "wikiextractor", path,
              ": 'corpus.", key, "' must be auto, text, wikitext or wikiextractor, got '", format, "'");
  }
  e.model = read_section(root, "model", kModel, path);
  // The settings hold only the key in use (so an experiment without init_from keeps its stage keys).
  const std::string init_from = e.model["init_from"].get<std::string>();
  if (init_from.empty()) {
    e.model.erase("init_from");
  } else {
    MCD_CHECK(!(root["model"] && root["model"]["preset"]), path, ": give 'model.preset' or 'model.init_from', not both");
    MCD_CHECK(fs::is_directory(init_from) && fs::exists(fs::join(init_from, "config.json")), path,
              ": 'model.init_from' ", init_from, " is not a model folder (no config.json)");
    e.model.erase("preset");
  }
  e.pretrain = read_section(root, "pretrain", kPretrain, path);
  e.sdm = read_section(root, "sdm", kSdm, path);
  const double t = e.sdm["target_sparsity"].get<double>();
  MCD_CHECK(t > 0 && t < 1, path, ": 'sdm.target_sparsity' must be in (0, 1), got ", t);
  MCD_CHECK(e.sdm["granularity"].get<int64_t>() >= 1, path, ": 'sdm.granularity' must be at least 1");
  e.csp = read_section(root, "csp", kCsp, path);
  e.prune = read_section(root, "prune", kPrune, path);
  MCD_CHECK(e.prune["granularity"].get<int64_t>() >= 1, path, ": 'prune.granularity' must be at least 1");
  e.peft = read_section(root, "peft", kPeft, path);
  e.finetune = read_section(root, "finetune", kFinetune, path);
  e.profile = read_section(root, "profile", kProfile, path);
  for (const auto& preset : e.profile["at_presets"]) {
    try {
      (void)model_preset(preset.get<std::string>());
    } catch (const Error& err) {
      fail(path + ": 'profile.at_presets': " + err.what());
    }
  }
  MCD_CHECK(e.profile["at_round_to"].get<int64_t>() >= 1, path, ": 'profile.at_round_to' must be at least 1");
  MCD_CHECK(e.finetune["lr"].get<double>() >= 0 && e.finetune["lr_scale"].get<double>() > 0, path,
            ": 'finetune.lr' must be >= 0 and 'finetune.lr_scale' > 0");
  MCD_CHECK(e.finetune["lr"].get<double>() == 0 || e.finetune["lr_scale"].get<double>() == 1, path,
            ": 'finetune.lr_scale' scales each method's default rate; it cannot be combined with 'finetune.lr'");
  MCD_CHECK(e.finetune["pooling"] == "last" || e.finetune["pooling"] == "mean", path,
            ": 'finetune.pooling' must be last or mean");
  e.vocab = read_section(root, "vocab", kVocab, path);
  MCD_CHECK(!e.vocab["restrict"].get<bool>() || !e.model.contains("init_from"), path,
            ": 'vocab.restrict' builds a vocabulary for a model pre-trained from scratch; a model.init_from model "
            "keeps its own tokenizer and embedding");
  MCD_CHECK(e.vocab["min_count"].get<int64_t>() >= 1, path, ": 'vocab.min_count' must be at least 1");

  const YAML::Node tasks = root["tasks"];
  MCD_CHECK(tasks && tasks.IsSequence() && tasks.size() > 0, path, ": 'tasks' must be a non-empty list",
            tasks ? yaml_line(tasks) : std::string());
  std::set<std::string> labels;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const std::string where = path + ": tasks[" + std::to_string(i) + "]";
    config::StrictYamlMap m(tasks[i], where);
    m.reject_unknown({"name", "data_dir", "train", "dev", "label"});
    TaskSpec ts;
    ts.name = m.get_string("name", "");
    ts.data_dir = m.get_string("data_dir", "");
    ts.train = m.get_string("train", "");
    ts.dev = m.get_string("dev", "");
    ts.label = m.get_string("label", ts.name);
    if (ts.name == "custom") {
      MCD_CHECK(!ts.train.empty() && !ts.dev.empty(), where, ": a custom task needs 'train' and 'dev' (JSONL files)");
      MCD_CHECK(m.has("label"), where, ": a custom task needs a 'label' (its name in the report)");
    } else {
      MCD_CHECK(kGlueTasks.count(ts.name), where, ": unknown task '", ts.name,
                "' (GLUE: cola sst2 mrpc stsb qqp mnli qnli rte wnli, or custom)");
      MCD_CHECK(!ts.data_dir.empty(), where, ": a GLUE task needs 'data_dir'");
    }
    MCD_CHECK(labels.insert(ts.label).second, where, ": the task label '", ts.label, "' appears twice");
    e.tasks.push_back(ts);
  }

  if (e.vocab["restrict"].get<bool>()) {  // `data vocab` takes one GLUE folder
    std::string glue_dir;
    for (const auto& t : e.tasks) {
      if (t.name == "custom") continue;
      MCD_CHECK(glue_dir.empty() || glue_dir == t.data_dir, path,
                ": with vocab.restrict every GLUE task must have the same data_dir ('", glue_dir, "' and '",
                t.data_dir, "')");
      glue_dir = t.data_dir;
    }
  }

  const YAML::Node seeds = root["seeds"];
  MCD_CHECK(seeds && seeds.IsSequence() && seeds.size() > 0, path, ": 'seeds' must be a non-empty list of integers");
  for (const auto& s : read_value(seeds, nlohmann::json::array({int64_t(0)}), path + ": 'seeds'")) {
    MCD_CHECK(std::find(e.seeds.begin(), e.seeds.end(), s.get<int64_t>()) == e.seeds.end(), path, ": seed ", s,
              " appears twice");
    e.seeds.push_back(s.get<int64_t>());
  }

  const YAML::Node variants = root["variants"];
  if (!variants) {
    e.variants = all_variants();
  } else {
    MCD_CHECK(variants.IsSequence() && variants.size() > 0, path, ": 'variants' must be a non-empty list");
    for (size_t i = 0; i < variants.size(); ++i) {
      const std::string name = variants[i].as<std::string>();
      Variant v;
      try {
        v = parse_variant(name);
      } catch (const Error& err) {
        fail(path + ": variants[" + std::to_string(i) + "]: " + err.what());
      }
      MCD_CHECK(std::find(e.variants.begin(), e.variants.end(), v) == e.variants.end(), path, ": variant '", name,
                "' appears twice");
      e.variants.push_back(v);
    }
  }
  return e;
}

std::vector<PlannedStage> plan_stages(const Experiment& e) {
  std::vector<PlannedStage> out;
  std::set<std::string> added;
  auto add = [&](PlannedStage s) {
    if (added.insert(s.name).second) out.push_back(std::move(s));
  };
  // Cost estimates for the ETA: relative units scaled by the pre-training's tokens (a step of
  // fine-tuning or profiling is much cheaper than one of pre-training). The run corrects them by
  // the measured speed as stages finish.
  const double tokens = double(e.pretrain["steps"].get<int64_t>() * e.pretrain["batch_size"].get<int64_t>() *
                               e.pretrain["seq_len"].get<int64_t>());
  const double pretrain_s = tokens / 2e3;

  const nlohmann::json dense_settings = {{"corpus", e.corpus}, {"model", e.model}, {"pretrain", e.pretrain}};
  nlohmann::json sdm_settings = dense_settings;
  sdm_settings["sdm"] = e.sdm;
  // A restricted vocabulary is built once, from the corpus and the tasks' training data; the
  // pre-trainings need it (their keys then follow its settings). Without it the keys are as before.
  std::vector<std::string> pretrain_needs;
  if (e.vocab["restrict"].get<bool>()) {
    nlohmann::json tasks = nlohmann::json::array();
    for (const auto& t : e.tasks)
      tasks.push_back({{"name", t.name}, {"data_dir", t.data_dir}, {"train", t.train}});
    add({"vocab", "vocab", {}, {{"corpus", e.corpus}, {"tasks", tasks}, {"vocab", e.vocab}}, 5});
    pretrain_needs = {"vocab"};
  }
  auto pretrain_dense = [&] { add({"pretrain/dense", "pretrain", pretrain_needs, dense_settings, pretrain_s}); };
  auto pretrain_sdm = [&] { add({"pretrain/sdm", "pretrain", pretrain_needs, sdm_settings, pretrain_s * 1.2}); };
  // Each pruning stage records its own unit; "prune" holds only what they share (the rounding).
  const nlohmann::json rounding = {{"round_to", e.prune["round_to"]}};
  auto gate_pruning = [&](const nlohmann::json& granularity) {
    return nlohmann::json{{"source", "gates"}, {"prune", rounding}, {"granularity", granularity}};
  };
  auto prune_sdm = [&] {
    pretrain_sdm();
    add({"prune/sdm", "prune", {"pretrain/sdm"}, gate_pruning(e.prune["granularity"]), 5});
  };
  auto csp_of = [&](const std::string& which) {
    which == "dense" ? pretrain_dense() : pretrain_sdm();
    add({"csp/" + which, "csp", {"pretrain/" + which}, {{"csp", e.csp}, {"corpus", e.corpus}}, 20});
  };

  // The model each variant fine-tunes and deploys, and what the fine-tuning needs besides it.
  struct Chain {
    std::string model_stage, method, importance_stage;
  };
  auto chain = [&](Variant v) -> Chain {
    switch (v) {
      case Variant::kBase: pretrain_dense(); return {"pretrain/dense", "full", ""};
      case Variant::kCsp: csp_of("dense"); return {"csp/dense", "full", ""};
      case Variant::kSdm: prune_sdm(); return {"prune/sdm", "full", ""};
      case Variant::kSgh:
        pretrain_dense();
        add({"importance/dense", "importance", {"pretrain/dense"}, {{"source", "magnitude_proxy"}}, 2});
        return {"pretrain/dense", "sgh", "importance/dense"};
      case Variant::kSdmSgh: prune_sdm(); return {"prune/sdm", "sgh", "prune/sdm"};
      case Variant::kFull:
        csp_of("sdm");
        add({"prune/csp-sdm", "prune", {"csp/sdm"}, gate_pruning(e.sdm["granularity"]), 5});
        // Where CSP's order can matter (METHOD §3): the same blocks without it, measured, not deployed.
        if (e.sdm["granularity"] != e.prune["granularity"]) {
          pretrain_sdm();
          add({"prune/sdm-blocks", "prune", {"pretrain/sdm"}, gate_pruning(e.sdm["granularity"]), 5});
        }
        return {"prune/csp-sdm", "sgh", "prune/csp-sdm"};
      case Variant::kChallenge:
        pretrain_dense();
        prune_sdm();
        add({"prune/challenge", "prune", {"pretrain/dense", "prune/sdm"}, {{"source", "magnitude_widths"}, {"prune", rounding}}, 5});
        return {"prune/challenge", "lora", ""};
      case Variant::kLoraAll: pretrain_dense(); return {"pretrain/dense", "lora", ""};
      case Variant::kIa3All: pretrain_dense(); return {"pretrain/dense", "ia3", ""};
    }
    fail("unknown variant");
  };

  std::vector<std::string> report_needs;
  std::vector<std::pair<Variant, Chain>> chains;
  for (const Variant v : e.variants) chains.push_back({v, chain(v)});
  // The report compares the block pruning with and without CSP's order.
  if (added.count("prune/sdm-blocks")) report_needs = {"prune/sdm-blocks", "prune/csp-sdm"};
  // One profile stage times every deployed model in one process, so latencies compare as ratios
  // of medians measured side by side (METHOD §5); the first model is the baseline (M_base's if
  // present). Merged adapters cost nothing at inference (METHOD §4): a model is profiled once.
  std::vector<std::string> models;
  for (const auto& [v, c] : chains)
    if (std::find(models.begin(), models.end(), c.model_stage) == models.end()) models.push_back(c.model_stage);
  // It runs alone (exclusive) when stages run concurrently, so other stages do not disturb the timings.
  add({"profile", "profile", models, {{"profile", e.profile}}, 10.0 * double(models.size()), true});
  report_needs.push_back("profile");
  // Fine-tuning, seeds outermost so that a partial run covers every variant with the first seeds.
  for (const int64_t seed : e.seeds)
    for (const auto& task : e.tasks)
      for (const auto& [v, c] : chains) {
        const bool peft = c.method != "full";
        nlohmann::json settings = {{"task", {{"name", task.name}, {"data_dir", task.data_dir}, {"train", task.train},
                                             {"dev", task.dev}}},
                                   {"method", c.method},
                                   {"seed", seed},
                                   {"finetune", e.finetune}};
        if (peft) settings["peft"] = e.peft;
        std::vector<std::string> needs = {c.model_stage};
        if (!c.importance_stage.empty() && c.importance_stage != c.model_stage) needs.push_back(c.importance_stage);
        const std::string name =
            std::string("finetune/") + info(v).slug + "/" + task.label + "/seed" + std::to_string(seed);
        add({name, "finetune", needs, settings, pretrain_s / 10});
        report_needs.push_back(name);
      }
  nlohmann::json variant_names = nlohmann::json::array();
  for (const Variant v : e.variants) variant_names.push_back(variant_name(v));
  add({"report", "report", report_needs, {{"variants", variant_names}, {"name", e.name}}, 5});
  return out;
}

}  // namespace mcd::pipeline
