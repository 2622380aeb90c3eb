// Strict parsing of training YAML files with --set overrides (see train_config.h): each section's
// keys are read and range-checked by its own parse(), so the message names file, key and value.
#include "train/train_config.h"

#include <cmath>

#include "model/channel_gate.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::train {
namespace {

// "<file> [section]: key=value must be …" — every range error reads the same.
template <typename T>
void require(bool ok, const config::StrictYamlMap& m, const char* key, const T& value, const char* rule) {
  MCD_CHECK(ok, m.where(), ": ", key, "=", value, " ", rule);
}

// The corpus formats of data/corpus.h, as data.format and eval.corpus_format take them.
bool is_corpus_format(const std::string& f) {
  return f == "auto" || f == "wikitext" || f == "wikiextractor" || f == "text";
}

bool valid_device(const std::string& d) {
  if (d == "auto" || d == "cpu" || d == "cuda") return true;
  if (d.rfind("cuda:", 0) != 0 || d.size() == 5 || d.size() > 9) return false;
  for (size_t i = 5; i < d.size(); ++i)
    if (d[i] < '0' || d[i] > '9') return false;
  return true;
}

}  // namespace

void ModelSection::parse(const config::StrictYamlMap& m) {
  m.reject_unknown({"preset", "config", "init_from"});
  preset = m.get_string("preset", "");
  config_file = m.get_string("config", "");
  init_from = m.get_string("init_from", "");
  MCD_CHECK(!preset.empty() + !config_file.empty() + !init_from.empty() == 1, m.where(),
            ": needs exactly one of preset, config, init_from");
}

void DataSection::parse(const config::StrictYamlMap& m) {
  m.reject_unknown({"format", "paths", "cache_dir", "val_fraction", "split_seed", "max_documents", "vocab_map"});
  format = m.get_string("format", format);
  require(is_corpus_format(format), m, "format", format, "must be auto, wikitext, wikiextractor or text");
  const YAML::Node p = m.raw("paths");
  MCD_CHECK(p && p.IsSequence() && p.size() > 0, m.where(), ": paths must be a non-empty list of files or folders");
  for (const auto& item : p) paths.push_back(item.as<std::string>());
  cache_dir = m.get_string("cache_dir", cache_dir);
  val_fraction = m.get_double("val_fraction", val_fraction);
  require(val_fraction > 0 && val_fraction < 1, m, "val_fraction", val_fraction, "must be in (0, 1)");
  split_seed = uint64_t(m.get_int("split_seed", 0));
  max_documents = m.get_int("max_documents", max_documents);
  require(max_documents == -1 || max_documents >= 1, m, "max_documents", max_documents, "must be -1 (all) or >= 1");
  vocab_map = m.get_string("vocab_map", vocab_map);
}

void OptimSection::parse(const config::StrictYamlMap& m) {
  m.reject_unknown({"seq_len", "batch_size", "grad_accum", "steps", "lr", "min_lr_ratio", "warmup_steps",
                    "weight_decay", "beta1", "beta2", "eps", "grad_clip", "precision", "seed", "cuda_graphs"});
  seq_len = m.get_int("seq_len", seq_len);
  require(seq_len >= 1, m, "seq_len", seq_len, "must be >= 1");
  batch_size = m.get_int("batch_size", batch_size);
  require(batch_size >= 1, m, "batch_size", batch_size, "must be >= 1");
  grad_accum = m.get_int("grad_accum", grad_accum);
  require(grad_accum >= 1, m, "grad_accum", grad_accum, "must be >= 1");
  steps = m.get_int("steps", steps);
  require(steps >= 0, m, "steps", steps, "must be >= 0");
  lr = m.get_double("lr", lr);
  require(std::isfinite(lr) && lr > 0, m, "lr", lr, "must be > 0");
  min_lr_ratio = m.get_double("min_lr_ratio", min_lr_ratio);
  require(min_lr_ratio >= 0 && min_lr_ratio <= 1, m, "min_lr_ratio", min_lr_ratio, "must be in [0, 1]");
  warmup_steps = m.get_int("warmup_steps", warmup_steps);
  require(warmup_steps >= 0, m, "warmup_steps", warmup_steps, "must be >= 0");
  weight_decay = m.get_double("weight_decay", weight_decay);
  require(weight_decay >= 0 && std::isfinite(weight_decay), m, "weight_decay", weight_decay, "must be >= 0");
  // β = 1 makes AdamW's bias correction divide by zero; β < 0 is meaningless.
  beta1 = m.get_double("beta1", beta1);
  require(beta1 >= 0 && beta1 < 1, m, "beta1", beta1, "must be in [0, 1)");
  beta2 = m.get_double("beta2", beta2);
  require(beta2 >= 0 && beta2 < 1, m, "beta2", beta2, "must be in [0, 1)");
  eps = m.get_double("eps", eps);
  require(eps > 0 && std::isfinite(eps), m, "eps", eps, "must be > 0");
  // A clip of 0 would scale every gradient to zero and a negative one would reverse them.
  grad_clip = m.get_double("grad_clip", grad_clip);
  require(grad_clip >= 0 && std::isfinite(grad_clip), m, "grad_clip", grad_clip, "must be > 0, or 0 for no clipping");
  precision = m.get_string("precision", precision);
  require(precision == "fp32" || precision == "bf16", m, "precision", precision, "must be fp32 or bf16");
  seed = uint64_t(m.get_int("seed", 0));
  cuda_graphs = m.get_bool("cuda_graphs", cuda_graphs);
}

void EvalSection::parse(const config::StrictYamlMap& m) {
  m.reject_unknown({"interval", "windows", "batch_size", "corpus", "corpus_format"});
  interval = m.get_int("interval", interval);
  require(interval >= 0, m, "interval", interval, "must be >= 0 (0: only at the end)");
  windows = m.get_int("windows", windows);
  require(windows >= 0, m, "windows", windows, "must be >= 0 (0: all)");
  batch_size = m.get_int("batch_size", batch_size);
  require(batch_size >= 1, m, "batch_size", batch_size, "must be >= 1");
  if (const YAML::Node c = m.raw("corpus")) {
    MCD_CHECK(c.IsSequence() && c.size() > 0, m.where(), ": corpus must be a non-empty list of files or folders");
    for (const auto& item : c) corpus.push_back(item.as<std::string>());
  }
  corpus_format = m.get_string("corpus_format", corpus_format);
  require(is_corpus_format(corpus_format), m, "corpus_format", corpus_format,
          "must be auto, wikitext, wikiextractor or text");
}

void CheckpointSection::parse(const config::StrictYamlMap& m) {
  m.reject_unknown({"interval", "keep_last"});
  interval = m.get_int("interval", interval);
  require(interval >= 0, m, "interval", interval, "must be >= 0 (0: only at the end)");
  keep_last = m.get_int("keep_last", keep_last);
  require(keep_last >= 1, m, "keep_last", keep_last, "must be >= 1");
}

void RunSection::parse(const config::StrictYamlMap& m) {
  m.reject_unknown({"out_dir", "device", "threads", "log_interval", "max_minutes"});
  out_dir = m.get_string("out_dir", out_dir);
  require(!out_dir.empty(), m, "out_dir", "''", "must name a folder");
  device = m.get_string("device", device);
  require(valid_device(device), m, "device", device, "must be auto, cpu, cuda or cuda:N");
  threads = m.get_int("threads", threads);
  require(threads >= 0, m, "threads", threads, "must be >= 0 (0: the CLI's --threads)");
  log_interval = m.get_int("log_interval", log_interval);
  require(log_interval >= 1, m, "log_interval", log_interval, "must be >= 1");
  max_minutes = m.get_double("max_minutes", max_minutes);
  require(max_minutes >= 0, m, "max_minutes", max_minutes, "must be >= 0 (0: no limit)");
}

void SdmSection::parse(const config::StrictYamlMap& m) {
  m.reject_unknown({"enabled", "gate_type", "gate_block", "gate_init", "gate_lr", "target_sparsity",
                    "warmup_fraction", "control", "penalty_weight", "lambda_lr", "lambda2_init", "lambda_signal",
                    "tau0", "tau1"});
  enabled = m.get_bool("enabled", enabled);
  gate_type_set = m.has("gate_type");
  gate_block_set = m.has("gate_block");
  gate_init_set = m.has("gate_init");
  gate_type = m.get_string("gate_type", gate_type);
  try {
    parse_gate_type(gate_type);
  } catch (const Error& e) {
    fail(cat(m.where(), ": gate_type: ", e.what()));
  }
  gate_block = m.get_int("gate_block", gate_block);
  require(gate_block >= 1, m, "gate_block", gate_block, "must be >= 1");
  gate_init = m.get_double("gate_init", gate_init);
  require(std::isfinite(gate_init), m, "gate_init", gate_init, "must be finite");
  gate_lr = m.get_double("gate_lr", gate_lr);
  require(gate_lr > 0 && std::isfinite(gate_lr), m, "gate_lr", gate_lr, "must be > 0");
  auto& c = control;
  c.target = m.get_double("target_sparsity", c.target);
  require(c.target >= 0 && c.target < 1, m, "target_sparsity", c.target, "must be in [0, 1)");
  c.warmup_fraction = m.get_double("warmup_fraction", c.warmup_fraction);
  require(c.warmup_fraction >= 0 && c.warmup_fraction <= 1, m, "warmup_fraction", c.warmup_fraction,
          "must be in [0, 1]");
  c.control = m.get_string("control", c.control);
  require(c.control == "lagrangian" || c.control == "penalty", m, "control", c.control,
          "must be lagrangian or penalty");
  c.penalty_weight = m.get_double("penalty_weight", c.penalty_weight);
  require(c.penalty_weight >= 0 && std::isfinite(c.penalty_weight), m, "penalty_weight", c.penalty_weight,
          "must be >= 0");
  c.lambda_lr = m.get_double("lambda_lr", c.lambda_lr);
  require(c.lambda_lr > 0 && std::isfinite(c.lambda_lr), m, "lambda_lr", c.lambda_lr, "must be > 0");
  c.lambda2_init = m.get_double("lambda2_init", c.lambda2_init);
  require(c.lambda2_init >= 0 && std::isfinite(c.lambda2_init), m, "lambda2_init", c.lambda2_init, "must be >= 0");
  c.lambda_signal = m.get_string("lambda_signal", c.lambda_signal);
  require(c.lambda_signal == "deterministic" || c.lambda_signal == "expected", m, "lambda_signal", c.lambda_signal,
          "must be deterministic or expected");
  // The Gumbel temperature divides the logits: τ ≤ 0 gives inf/NaN gates.
  c.tau0 = m.get_double("tau0", c.tau0);
  require(c.tau0 > 0 && std::isfinite(c.tau0), m, "tau0", c.tau0, "must be > 0");
  c.tau1 = m.get_double("tau1", c.tau1);
  require(c.tau1 > 0 && std::isfinite(c.tau1), m, "tau1", c.tau1, "must be > 0");
}

void OpsSection::parse(const config::StrictYamlMap& m) {
  const auto& keys = ops::ops_option_keys();
  m.reject_unknown(std::set<std::string>(keys.begin(), keys.end()));
  for (const auto& key : keys) {
    if (!m.has(key)) continue;
    const std::string value = m.get_string(key, "");
    try {
      ops::parse_ops_option(ops::OpsOptions{}, key, value);  // checked now, applied when the run starts
    } catch (const Error& e) {
      fail(cat(m.where(), ": ", e.what()));
    }
    settings.emplace_back(key, value);
  }
}

ops::OpsOptions OpsSection::apply(ops::OpsOptions base) const {
  for (const auto& [key, value] : settings) base = ops::parse_ops_option(base, key, value);
  return base;
}

ModelConfig TrainConfig::model_config() const {
  ModelConfig c = !model.preset.empty()        ? mcd::model_preset(model.preset)
                  : !model.config_file.empty() ? ModelConfig::from_yaml_file(model.config_file)
                                               : ModelConfig::from_json_file(fs::join(model.init_from, "config.json"));
  if (!sdm.enabled) return c;
  if (c.gate_type.empty()) {  // gates are added to a gate-less model
    c.gate_type = sdm.gate_type;
    c.gate_block = sdm.gate_block;
    c.gate_init = sdm.gate_init;
    c.validate(source + " [sdm]");
    return c;
  }
  // An already gated model keeps its gates: a gate setting that disagrees would be ignored, so refuse.
  auto agree = [&](bool set, bool same, const char* key, const std::string& ours, const std::string& theirs) {
    MCD_CHECK(!set || same, source, " [sdm]: ", key, "=", ours, " but model.init_from ", model.init_from,
              " already has gates with ", key, "=", theirs, "; remove the key or start from a gate-less model");
  };
  agree(sdm.gate_type_set, sdm.gate_type == c.gate_type, "gate_type", sdm.gate_type, c.gate_type);
  agree(sdm.gate_block_set, sdm.gate_block == c.gate_block, "gate_block", std::to_string(sdm.gate_block),
        std::to_string(c.gate_block));
  agree(sdm.gate_init_set, sdm.gate_init == c.gate_init, "gate_init", std::to_string(sdm.gate_init),
        std::to_string(c.gate_init));
  return c;
}

namespace {

void apply_override(YAML::Node root, const std::string& item, const std::string& where) {
  const auto eq = item.find('=');
  MCD_CHECK(eq != std::string::npos && eq > 0, "--set '", item, "': expected section.key=value");
  const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
  const auto dot = key.find('.');
  MCD_CHECK(dot != std::string::npos && dot > 0 && dot + 1 < key.size(), "--set '", item,
            "': the key must be section.key (e.g. train.lr=1e-3)");
  const std::string section = key.substr(0, dot), name = key.substr(dot + 1);
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    fail(cat("--set '", item, "': invalid value: ", e.msg));
  }
  if (!root[section]) root[section] = YAML::Node(YAML::NodeType::Map);
  MCD_CHECK(root[section].IsMap(), where, ": section '", section, "' is not a mapping");
  root[section][name] = parsed;
}

}  // namespace

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = config::load_yaml_file(path);
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  for (const auto& o : overrides) apply_override(root, o, path);
  config::StrictYamlMap top(root, path);
  top.reject_unknown({"model", "data", "train", "eval", "checkpoint", "run", "sdm", "ops", "description"});
  auto section = [&](const char* name) {
    YAML::Node n = root[name];
    if (!n) n = YAML::Node(YAML::NodeType::Map);
    MCD_CHECK(n.IsMap(), path, ": section '", name, "' must be a mapping");
    return config::StrictYamlMap(n, path + " [" + name + "]");
  };
  TrainConfig c;
  c.source = path;
  c.model.parse(section("model"));
  c.data.parse(section("data"));
  c.train.parse(section("train"));
  c.eval.parse(section("eval"));
  c.checkpoint.parse(section("checkpoint"));
  c.run.parse(section("run"));
  c.sdm.parse(section("sdm"));
  c.ops.parse(section("ops"));
  MCD_CHECK(!c.train.cuda_graphs || (c.train.grad_accum == 1 && !c.sdm.enabled), path,
            " [train]: cuda_graphs needs grad_accum 1 and sdm.enabled false (a graph step is one micro-batch with no "
            "gates being learned), got grad_accum ", c.train.grad_accum, " and sdm.enabled ",
            c.sdm.enabled ? "true" : "false");
  return c;
}

}  // namespace mcd::train
