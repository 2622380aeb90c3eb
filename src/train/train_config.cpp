// Strict parsing of pre-training YAML files with --set overrides (see train_config.h).
#include "train/train_config.h"

#include "config/strict_yaml.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::train {

ModelConfig TrainConfig::model_config() const {
  ModelConfig c = !model_preset.empty()        ? mcd::model_preset(model_preset)
                  : !model_config_file.empty() ? ModelConfig::from_yaml_file(model_config_file)
                                               : ModelConfig::from_hf_file(fs::join(init_from, "config.json"));
  if (sdm_enabled && c.gate_type.empty()) {  // gates are added to a gate-less model
    c.gate_type = sdm_gate_type;
    c.gate_block = sdm_gate_block;
    c.gate_init = sdm_gate_init;
    c.validate(source + " [sdm]");
  }
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
  top.reject_unknown({"model", "data", "train", "eval", "checkpoint", "run", "sdm", "description"});
  auto section = [&](const char* name) {
    YAML::Node n = root[name];
    if (!n) n = YAML::Node(YAML::NodeType::Map);
    return config::StrictYamlMap(n, path + " [" + name + "]");
  };
  TrainConfig c;
  c.source = path;

  auto model = section("model");
  model.reject_unknown({"preset", "config", "init_from"});
  c.model_preset = model.get_string("preset", "");
  c.model_config_file = model.get_string("config", "");
  c.init_from = model.get_string("init_from", "");
  const int sources = !c.model_preset.empty() + !c.model_config_file.empty() + !c.init_from.empty();
  MCD_CHECK(sources == 1, path, ": section 'model' needs exactly one of preset, config, init_from");

  auto data = section("data");
  data.reject_unknown({"format", "paths", "cache_dir", "val_fraction", "split_seed", "max_documents"});
  c.data_format = data.get_string("format", c.data_format);
  const YAML::Node paths = data.raw("paths");
  MCD_CHECK(paths && paths.IsSequence() && paths.size() > 0, path,
            ": data.paths must be a non-empty list of files or folders");
  for (const auto& p : paths) c.data_paths.push_back(p.as<std::string>());
  c.cache_dir = data.get_string("cache_dir", c.cache_dir);
  c.val_fraction = data.get_double("val_fraction", c.val_fraction);
  c.split_seed = uint64_t(data.get_int("split_seed", 0));
  c.max_documents = data.get_int("max_documents", c.max_documents);

  auto t = section("train");
  t.reject_unknown({"seq_len", "batch_size", "grad_accum", "steps", "lr", "min_lr_ratio",
                    "warmup_steps", "weight_decay", "beta1", "beta2", "eps", "grad_clip",
                    "precision", "seed"});
  c.seq_len = t.get_int("seq_len", c.seq_len);
  c.batch_size = t.get_int("batch_size", c.batch_size);
  c.grad_accum = t.get_int("grad_accum", c.grad_accum);
  c.steps = t.get_int("steps", c.steps);
  c.lr = t.get_double("lr", c.lr);
  c.min_lr_ratio = t.get_double("min_lr_ratio", c.min_lr_ratio);
  c.warmup_steps = t.get_int("warmup_steps", c.warmup_steps);
  c.weight_decay = t.get_double("weight_decay", c.weight_decay);
  c.beta1 = t.get_double("beta1", c.beta1);
  c.beta2 = t.get_double("beta2", c.beta2);
  c.eps = t.get_double("eps", c.eps);
  c.grad_clip = t.get_double("grad_clip", c.grad_clip);
  c.precision = t.get_string("precision", c.precision);
  c.seed = uint64_t(t.get_int("seed", 0));

  auto e = section("eval");
  e.reject_unknown({"interval", "windows", "batch_size"});
  c.eval_interval = e.get_int("interval", c.eval_interval);
  c.eval_windows = e.get_int("windows", c.eval_windows);
  c.eval_batch_size = e.get_int("batch_size", c.eval_batch_size);

  auto k = section("checkpoint");
  k.reject_unknown({"interval", "keep_last"});
  c.checkpoint_interval = k.get_int("interval", c.checkpoint_interval);
  c.keep_last = k.get_int("keep_last", c.keep_last);

  auto sdm = section("sdm");
  sdm.reject_unknown({"enabled", "gate_type", "gate_block", "gate_init", "gate_lr", "target_sparsity",
                      "warmup_fraction", "control", "penalty_weight", "lambda_lr", "lambda2_init", "lambda_signal", "tau0", "tau1"});
  c.sdm_enabled = sdm.get_bool("enabled", false);
  c.sdm_gate_type = sdm.get_string("gate_type", c.sdm_gate_type);
  c.sdm_gate_block = sdm.get_int("gate_block", c.sdm_gate_block);
  c.sdm_gate_init = sdm.get_double("gate_init", c.sdm_gate_init);
  c.sdm_gate_lr = sdm.get_double("gate_lr", c.sdm_gate_lr);
  c.sdm_target = sdm.get_double("target_sparsity", c.sdm_target);
  c.sdm_warmup_fraction = sdm.get_double("warmup_fraction", c.sdm_warmup_fraction);
  c.sdm_control = sdm.get_string("control", c.sdm_control);
  c.sdm_penalty_weight = sdm.get_double("penalty_weight", c.sdm_penalty_weight);
  c.sdm_lambda_lr = sdm.get_double("lambda_lr", c.sdm_lambda_lr);
  c.sdm_lambda2_init = sdm.get_double("lambda2_init", c.sdm_lambda2_init);
  c.sdm_lambda_signal = sdm.get_string("lambda_signal", c.sdm_lambda_signal);
  c.sdm_tau0 = sdm.get_double("tau0", c.sdm_tau0);
  c.sdm_tau1 = sdm.get_double("tau1", c.sdm_tau1);
  MCD_CHECK(c.sdm_target >= 0 && c.sdm_target < 1, path, ": sdm.target_sparsity must be in [0, 1)");
  MCD_CHECK(c.sdm_control == "lagrangian" || c.sdm_control == "penalty", path,
            ": sdm.control must be lagrangian or penalty, got '", c.sdm_control, "'");

  auto r = section("run");
  r.reject_unknown({"out_dir", "device", "threads", "log_interval", "max_minutes"});
  c.out_dir = r.get_string("out_dir", c.out_dir);
  c.device = r.get_string("device", c.device);
  c.threads = r.get_int("threads", c.threads);
  c.log_interval = r.get_int("log_interval", c.log_interval);
  c.max_minutes = r.get_double("max_minutes", c.max_minutes);

  MCD_CHECK(c.seq_len >= 1, path, ": train.seq_len must be >= 1");
  MCD_CHECK(c.batch_size >= 1 && c.grad_accum >= 1, path, ": train.batch_size and grad_accum must be >= 1");
  MCD_CHECK(c.steps >= 0, path, ": train.steps must be >= 0");
  MCD_CHECK(c.lr > 0 && c.min_lr_ratio >= 0 && c.min_lr_ratio <= 1, path, ": need lr > 0 and 0 <= min_lr_ratio <= 1");
  MCD_CHECK(c.precision == "fp32" || c.precision == "bf16", path, ": train.precision must be fp32 or bf16, got '",
            c.precision, "'");
  MCD_CHECK(c.val_fraction > 0 && c.val_fraction < 1, path, ": data.val_fraction must be in (0, 1)");
  MCD_CHECK(c.keep_last >= 1, path, ": checkpoint.keep_last must be >= 1");
  MCD_CHECK(c.eval_batch_size >= 1 && c.eval_windows >= 0, path, ": bad eval settings");
  return c;
}

}  // namespace mcd::train
