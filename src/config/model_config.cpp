// ModelConfig: validation, parameter count, and reading/writing YAML and HF config.json
// (see model_config.h). HF files carry many keys: we read those that define the model, check
// their types and ignore the rest; our YAML files are strict.
#include "config/model_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "config/strict_yaml.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd {
using nlohmann::json;

int64_t ModelConfig::inner_width(int64_t layer) const {
  if (!d_inner_per_layer.empty()) return d_inner_per_layer.at(layer);
  return d_inner > 0 ? d_inner : expand * d_model;
}

int64_t ModelConfig::unpruned_width() const { return d_inner > 0 ? d_inner : expand * d_model; }

ModelConfig ModelConfig::with_width_fractions_of(const ModelConfig& source, int64_t round_to) const {
  MCD_CHECK(round_to >= 1, "width transfer: round_to must be >= 1, got ", round_to);
  MCD_CHECK(source.n_layer >= 1 && n_layer >= 1, "width transfer: both configurations need layers");
  ModelConfig out = *this;
  const int64_t full = unpruned_width(), source_full = source.unpruned_width();
  out.d_inner_per_layer.clear();
  bool uniform = true;
  std::vector<int64_t> widths;
  for (int64_t l = 0; l < n_layer; ++l) {
    const int64_t from = l * source.n_layer / n_layer;
    const double fraction = double(source.inner_width(from)) / double(source_full);
    int64_t w = int64_t(std::llround(fraction * double(full) / double(round_to))) * round_to;
    w = std::min(full, std::max(round_to, w));
    uniform = uniform && w == full;
    widths.push_back(w);
  }
  if (!uniform) out.d_inner_per_layer = widths;
  return out;
}

ModelConfig ModelConfig::with_uniform_sparsity(double sparsity, int64_t round_to) const {
  MCD_CHECK(round_to >= 1, "uniform sparsity: round_to must be >= 1, got ", round_to);
  MCD_CHECK(sparsity >= 0.0 && sparsity < 1.0, "uniform sparsity must be in [0, 1), got ", sparsity);
  ModelConfig out = *this;
  out.d_inner_per_layer.clear();
  if (sparsity == 0.0) return out;
  for (int64_t l = 0; l < n_layer; ++l) {
    const int64_t kept = int64_t(std::llround((1.0 - sparsity) * double(inner_width(l)) / double(round_to))) * round_to;
    out.d_inner_per_layer.push_back(std::max(round_to, std::min(inner_width(l), kept)));
  }
  return out;
}

int64_t ModelConfig::resolved_dt_rank() const {
  return dt_rank > 0 ? dt_rank : (d_model + 15) / 16;
}

int64_t ModelConfig::real_vocab_size() const {
  return tokenizer_vocab_size > 0 ? tokenizer_vocab_size : vocab_size;
}

bool ModelConfig::uniform_inner() const {
  for (int64_t l = 1; l < n_layer; ++l)
    if (inner_width(l) != inner_width(0)) return false;
  return true;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t D = d_model, N = d_state, K = d_conv, R = resolved_dt_rank();
  int64_t total = vocab_size * D + D;  // embedding (tied head) + norm_f
  if (!tie_embeddings) total += vocab_size * D;
  for (int64_t l = 0; l < n_layer; ++l) {
    const int64_t E = inner_width(l);
    total += D;                                        // norm
    total += 2 * E * D + (use_bias ? 2 * E : 0);       // in_proj
    total += E * K + (use_conv_bias ? E : 0);          // conv1d
    total += (R + 2 * N) * E;                          // x_proj
    total += R * E + E;                                // dt_proj
    total += E * N + E;                                // A_log, D
    total += D * E + (use_bias ? D : 0);               // out_proj
  }
  return total;
}

void ModelConfig::validate(const std::string& where) const {
  MCD_CHECK(d_model > 0, where, ": d_model must be positive, got ", d_model);
  MCD_CHECK(n_layer > 0, where, ": n_layer must be positive, got ", n_layer);
  MCD_CHECK(vocab_size > 0, where, ": vocab_size must be positive, got ", vocab_size);
  MCD_CHECK(tokenizer_vocab_size >= 0 && tokenizer_vocab_size <= vocab_size, where,
            ": tokenizer_vocab_size ", tokenizer_vocab_size, " must be in [0, vocab_size=",
            vocab_size, "]");
  MCD_CHECK(d_state > 0, where, ": d_state must be positive, got ", d_state);
  MCD_CHECK(d_conv >= 1, where, ": d_conv must be at least 1, got ", d_conv);
  MCD_CHECK(expand > 0 || d_inner > 0, where, ": expand or d_inner must be positive");
  MCD_CHECK(dt_rank >= 0, where, ": dt_rank must be positive (or auto), got ", dt_rank);
  MCD_CHECK(norm_eps > 0, where, ": norm_eps must be positive, got ", norm_eps);
  MCD_CHECK(d_inner_per_layer.empty() || int64_t(d_inner_per_layer.size()) == n_layer, where,
            ": d_inner_per_layer has ", d_inner_per_layer.size(), " entries for ", n_layer,
            " layers");
  for (size_t l = 0; l < d_inner_per_layer.size(); ++l)
    MCD_CHECK(d_inner_per_layer[l] >= 1, where, ": layer ", l, " has inner width ",
              d_inner_per_layer[l], "; a layer needs at least one channel");
  MCD_CHECK(dt_min > 0 && dt_max >= dt_min, where, ": need 0 < dt_min <= dt_max");
  MCD_CHECK(dt_init == "random" || dt_init == "constant", where, ": dt_init must be 'random' or "
            "'constant', got '", dt_init, "'");
  MCD_CHECK(gate_type.empty() || gate_type == "hard_concrete" || gate_type == "gumbel", where,
            ": gate_type must be '', 'hard_concrete' or 'gumbel', got '", gate_type, "'");
  MCD_CHECK(gate_block >= 1, where, ": gate_block must be >= 1");
  if (!gate_type.empty())
    for (int64_t l = 0; l < n_layer; ++l)
      MCD_CHECK(inner_width(l) % gate_block == 0, where, ": gate_block ", gate_block,
                " does not divide layer ", l, "'s width ", inner_width(l));
}

// ---------------------------------------------------------------------------------- HF JSON

namespace {

template <typename T>
T json_get(const json& j, const char* key, const T& fallback, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  bool ok = false;
  if constexpr (std::is_same_v<T, bool>) ok = it->is_boolean();
  else if constexpr (std::is_integral_v<T>) ok = it->is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) ok = it->is_number();
  else ok = it->is_string();
  MCD_CHECK(ok, where, ": key '", key, "' has the wrong type (", it->type_name(), ")");
  return it->get<T>();
}

int64_t json_required_int(const json& j, const char* key, const std::string& where) {
  MCD_CHECK(j.contains(key), where, ": required key '", key, "' is missing");
  return json_get<int64_t>(j, key, 0, where);
}

}  // namespace

json ModelConfig::to_hf_json() const {
  json j;
  j["architectures"] = {"MambaForCausalLM"};
  j["model_type"] = "mamba";
  j["hidden_size"] = d_model;
  j["num_hidden_layers"] = n_layer;
  j["vocab_size"] = vocab_size;
  if (tokenizer_vocab_size > 0 && tokenizer_vocab_size != vocab_size)
    j["tokenizer_vocab_size"] = tokenizer_vocab_size;
  j["state_size"] = d_state;
  j["expand"] = expand;
  j["intermediate_size"] = inner_width(0);
  if (!uniform_inner()) j["intermediate_sizes"] = d_inner_per_layer;
  j["conv_kernel"] = d_conv;
  j["time_step_rank"] = resolved_dt_rank();
  j["layer_norm_epsilon"] = norm_eps;
  j["use_bias"] = use_bias;
  j["use_conv_bias"] = use_conv_bias;
  j["residual_in_fp32"] = residual_in_fp32;
  j["tie_word_embeddings"] = tie_embeddings;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["pad_token_id"] = pad_token_id;
  j["hidden_act"] = "silu";
  j["initializer_range"] = initializer_range;
  j["time_step_min"] = dt_min;
  j["time_step_max"] = dt_max;
  j["time_step_floor"] = dt_init_floor;
  j["time_step_scale"] = dt_scale;
  j["time_step_init_scheme"] = dt_init;
  j["rescale_prenorm_residual"] = rescale_prenorm_residual;
  j["torch_dtype"] = "float32";
  if (!gate_type.empty()) {
    j["sdm_gate_type"] = gate_type;
    j["sdm_gate_block"] = gate_block;
    j["sdm_gate_init"] = gate_init;
  }
  return j;
}

ModelConfig ModelConfig::from_hf_json(const json& j, const std::string& where) {
  MCD_CHECK(j.is_object(), where, ": expected a JSON object");
  if (j.contains("model_type"))
    MCD_CHECK(j["model_type"] == "mamba", where, ": model_type is ", j["model_type"].dump(),
              ", only 'mamba' (Mamba-1) is supported");
  ModelConfig c;
  c.d_model = json_required_int(j, "hidden_size", where);
  c.n_layer = json_required_int(j, "num_hidden_layers", where);
  c.vocab_size = json_required_int(j, "vocab_size", where);
  c.tokenizer_vocab_size = json_get<int64_t>(j, "tokenizer_vocab_size", 0, where);
  c.d_state = json_get<int64_t>(j, "state_size", 16, where);
  c.expand = json_get<int64_t>(j, "expand", 2, where);
  c.d_inner = json_get<int64_t>(j, "intermediate_size", 0, where);
  if (j.contains("intermediate_sizes")) {
    MCD_CHECK(j["intermediate_sizes"].is_array(), where, ": key 'intermediate_sizes' must be a list");
    for (const auto& v : j["intermediate_sizes"]) {
      MCD_CHECK(v.is_number_integer(), where, ": 'intermediate_sizes' must hold integers");
      c.d_inner_per_layer.push_back(v.get<int64_t>());
    }
  }
  c.d_conv = json_get<int64_t>(j, "conv_kernel", 4, where);
  // The block's conv and gate activation: SiLU here (HF's ACT2FN spells it "silu" or "swish").
  const std::string act = json_get<std::string>(j, "hidden_act", "silu", where);
  MCD_CHECK(act == "silu" || act == "swish", where, ": hidden_act is '", act,
            "', but this Mamba block uses SiLU (silu/swish) only");
  if (j.contains("time_step_rank") && j["time_step_rank"].is_string()) {
    MCD_CHECK(j["time_step_rank"] == "auto", where, ": time_step_rank must be an integer or 'auto'");
  } else {
    c.dt_rank = json_get<int64_t>(j, "time_step_rank", 0, where);
  }
  c.norm_eps = json_get<double>(j, "layer_norm_epsilon", 1e-5, where);
  c.use_bias = json_get<bool>(j, "use_bias", false, where);
  c.use_conv_bias = json_get<bool>(j, "use_conv_bias", true, where);
  c.residual_in_fp32 = json_get<bool>(j, "residual_in_fp32", true, where);
  c.tie_embeddings = json_get<bool>(j, "tie_word_embeddings", true, where);
  c.bos_token_id = json_get<int64_t>(j, "bos_token_id", 0, where);
  c.eos_token_id = json_get<int64_t>(j, "eos_token_id", 0, where);
  c.pad_token_id = json_get<int64_t>(j, "pad_token_id", 0, where);
  c.initializer_range = json_get<double>(j, "initializer_range", 0.02, where);
  c.dt_min = json_get<double>(j, "time_step_min", 1e-3, where);
  c.dt_max = json_get<double>(j, "time_step_max", 0.1, where);
  c.dt_init_floor = json_get<double>(j, "time_step_floor", 1e-4, where);
  c.dt_scale = json_get<double>(j, "time_step_scale", 1.0, where);
  c.dt_init = json_get<std::string>(j, "time_step_init_scheme", "random", where);
  c.rescale_prenorm_residual = json_get<bool>(j, "rescale_prenorm_residual", true, where);
  c.gate_type = json_get<std::string>(j, "sdm_gate_type", "", where);
  c.gate_block = json_get<int64_t>(j, "sdm_gate_block", 1, where);
  c.gate_init = json_get<double>(j, "sdm_gate_init", 3.0, where);
  c.validate(where);
  return c;
}

bool ModelConfig::is_mamba_ssm_json(const json& j) {
  return j.is_object() && !j.contains("hidden_size") && j.contains("d_model") && j.contains("n_layer");
}

// mamba-ssm's MambaConfig (mamba_ssm/models/config_mamba.py), as its save_pretrained writes it. Every key
// is read or refused: a hybrid or Mamba-2 model must not load as a Mamba-1 one.
ModelConfig ModelConfig::from_mamba_ssm_json(const json& j, const std::string& where) {
  MCD_CHECK(j.is_object(), where, ": expected a JSON object");
  const std::string kind = "mamba-ssm config";
  for (const auto& [key, value] : j.items())
    MCD_CHECK(key == "d_model" || key == "d_intermediate" || key == "n_layer" || key == "vocab_size" ||
                  key == "ssm_cfg" || key == "attn_layer_idx" || key == "attn_cfg" || key == "rms_norm" ||
                  key == "residual_in_fp32" || key == "fused_add_norm" || key == "pad_vocab_size_multiple" ||
                  key == "tie_embeddings",
              where, ": unknown ", kind, " key '", key, "'");
  ModelConfig c;
  c.d_model = json_required_int(j, "d_model", where);
  c.n_layer = json_required_int(j, "n_layer", where);
  // mamba-ssm pads the embedding to a multiple (MambaLMHeadModel.__init__); the checkpoint holds the padded rows.
  const int64_t vocab = json_required_int(j, "vocab_size", where);
  const int64_t multiple = json_get<int64_t>(j, "pad_vocab_size_multiple", 8, where);
  MCD_CHECK(vocab >= 1 && multiple >= 1, where, ": vocab_size and pad_vocab_size_multiple must be positive");
  c.vocab_size = (vocab + multiple - 1) / multiple * multiple;
  if (c.vocab_size != vocab) c.tokenizer_vocab_size = vocab;  // the padding rows are never produced nor sampled
  MCD_CHECK(json_get<int64_t>(j, "d_intermediate", 0, where) == 0, where,
            ": d_intermediate > 0 adds MLP blocks, which this Mamba-1 model does not have");
  const bool no_attention = !j.contains("attn_layer_idx") || j["attn_layer_idx"].is_null() ||
                            (j["attn_layer_idx"].is_array() && j["attn_layer_idx"].empty());
  MCD_CHECK(no_attention, where, ": attn_layer_idx names attention layers (a hybrid model); only Mamba-1 layers are supported");
  MCD_CHECK(json_get<bool>(j, "rms_norm", true, where), where,
            ": rms_norm is false (LayerNorm blocks); this model uses RMSNorm only");
  c.residual_in_fp32 = json_get<bool>(j, "residual_in_fp32", true, where);
  c.tie_embeddings = json_get<bool>(j, "tie_embeddings", true, where);
  c.norm_eps = 1e-5;  // MixerModel's norm_epsilon, which MambaConfig does not carry
  // (fused_add_norm chooses mamba-ssm's kernels, not the arithmetic.)
  if (j.contains("ssm_cfg") && !j["ssm_cfg"].is_null()) {
    const json& s = j["ssm_cfg"];
    const std::string at = where + ": ssm_cfg";
    MCD_CHECK(s.is_object(), at, " must be an object");
    for (const auto& [key, value] : s.items())
      MCD_CHECK(key == "layer" || key == "d_state" || key == "d_conv" || key == "expand" || key == "dt_rank" ||
                    key == "dt_min" || key == "dt_max" || key == "dt_init" || key == "dt_scale" ||
                    key == "dt_init_floor" || key == "conv_bias" || key == "bias" || key == "use_fast_path",
                at, ": unknown key '", key, "' (Mamba-1's are layer, d_state, d_conv, expand, dt_rank, dt_min, dt_max, "
                "dt_init, dt_scale, dt_init_floor, conv_bias, bias, use_fast_path)");
    const std::string layer = json_get<std::string>(s, "layer", "Mamba1", at);
    MCD_CHECK(layer == "Mamba1", at, ": layer is '", layer, "'; only Mamba1 is supported");
    c.d_state = json_get<int64_t>(s, "d_state", 16, at);
    c.d_conv = json_get<int64_t>(s, "d_conv", 4, at);
    c.expand = json_get<int64_t>(s, "expand", 2, at);
    if (s.contains("dt_rank") && s["dt_rank"].is_string())
      MCD_CHECK(s["dt_rank"] == "auto", at, ": dt_rank must be an integer or 'auto'");
    else
      c.dt_rank = json_get<int64_t>(s, "dt_rank", 0, at);
    c.dt_min = json_get<double>(s, "dt_min", 1e-3, at);
    c.dt_max = json_get<double>(s, "dt_max", 0.1, at);
    c.dt_init = json_get<std::string>(s, "dt_init", "random", at);
    c.dt_scale = json_get<double>(s, "dt_scale", 1.0, at);
    c.dt_init_floor = json_get<double>(s, "dt_init_floor", 1e-4, at);
    c.use_conv_bias = json_get<bool>(s, "conv_bias", true, at);
    c.use_bias = json_get<bool>(s, "bias", false, at);
  }
  c.validate(where);
  return c;
}

json ModelConfig::to_mamba_ssm_json(const std::string& where) const {
  MCD_CHECK(gate_type.empty(), where, ": a model with SDM gates has no mamba-ssm form (prune it first)");
  MCD_CHECK(uniform_inner(), where, ": a model with per-layer inner widths (pruned) has no mamba-ssm form: its ",
            "layers share one expand");
  MCD_CHECK(inner_width(0) == expand * d_model, where, ": inner width ", inner_width(0), " is not expand·d_model = ",
            expand * d_model, " (mamba-ssm has no other way to say it)");
  MCD_CHECK(norm_eps == 1e-5, where, ": RMSNorm epsilon ", norm_eps, "; mamba-ssm's is fixed at 1e-5");
  json j;
  j["d_model"] = d_model;
  j["d_intermediate"] = 0;
  j["n_layer"] = n_layer;
  // mamba-ssm pads vocab_size up to pad_vocab_size_multiple.
  // The smallest of 8, 16, ..., 128 that pads the tokenizer's size to exactly the rows; else the rows with 1.
  const int64_t real = real_vocab_size();
  int64_t multiple = 1;
  for (int64_t m = 8; m <= 128 && multiple == 1; m *= 2)
    if ((real + m - 1) / m * m == vocab_size) multiple = m;
  j["vocab_size"] = multiple > 1 ? real : vocab_size;
  j["pad_vocab_size_multiple"] = multiple;
  j["ssm_cfg"] = {{"layer", "Mamba1"},   {"d_state", d_state},  {"d_conv", d_conv},     {"expand", expand},
                  {"dt_rank", resolved_dt_rank()}, {"dt_min", dt_min}, {"dt_max", dt_max}, {"dt_init", dt_init},
                  {"dt_scale", dt_scale}, {"dt_init_floor", dt_init_floor}, {"conv_bias", use_conv_bias},
                  {"bias", use_bias}};
  j["attn_layer_idx"] = json::array();
  j["attn_cfg"] = json::object();
  j["rms_norm"] = true;
  j["residual_in_fp32"] = residual_in_fp32;
  j["fused_add_norm"] = true;
  j["tie_embeddings"] = tie_embeddings;
  return j;
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& where) {
  return is_mamba_ssm_json(j) ? from_mamba_ssm_json(j, where) : from_hf_json(j, where);
}

ModelConfig ModelConfig::from_json_file(const std::string& path) {
  std::ifstream f(path);
  MCD_CHECK(f.good(), path, ": cannot open model config");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    fail(cat(path, ": invalid JSON: ", e.what()));
  }
  return from_json(j, path);
}

// ------------------------------------------------------------------------------------- YAML

ModelConfig ModelConfig::from_yaml_file(const std::string& path) {
  config::StrictYamlMap m(config::load_yaml_file(path), path);
  m.reject_unknown({"d_model", "n_layer", "vocab_size", "pad_vocab_multiple", "d_state", "expand",
                    "d_inner", "d_inner_per_layer", "d_conv", "dt_rank", "norm_eps", "use_bias",
                    "use_conv_bias", "residual_in_fp32", "tie_embeddings", "bos_token_id",
                    "eos_token_id", "pad_token_id", "initializer_range", "dt_min", "dt_max",
                    "dt_init_floor", "dt_scale", "dt_init", "rescale_prenorm_residual",
                    "gate_type", "gate_block", "gate_init", "description"});
  ModelConfig c;
  c.d_model = m.get_int("d_model", c.d_model);
  c.n_layer = m.get_int("n_layer", c.n_layer);
  const int64_t vocab = m.get_int("vocab_size", c.vocab_size);
  const int64_t multiple = m.get_int("pad_vocab_multiple", 1);
  MCD_CHECK(multiple >= 1, path, ": pad_vocab_multiple must be at least 1");
  c.vocab_size = (vocab + multiple - 1) / multiple * multiple;
  if (c.vocab_size != vocab) c.tokenizer_vocab_size = vocab;  // the padding rows are never produced nor sampled
  c.tokenizer_vocab_size = c.vocab_size == vocab ? 0 : vocab;
  c.d_state = m.get_int("d_state", c.d_state);
  c.expand = m.get_int("expand", c.expand);
  c.d_inner = m.get_int("d_inner", 0);
  c.d_inner_per_layer = m.get_int_list("d_inner_per_layer");
  c.d_conv = m.get_int("d_conv", c.d_conv);
  if (m.has("dt_rank") && m.raw("dt_rank").IsScalar() && m.raw("dt_rank").Scalar() == "auto") {
    c.dt_rank = 0;
  } else {
    c.dt_rank = m.get_int("dt_rank", 0);
  }
  c.norm_eps = m.get_double("norm_eps", c.norm_eps);
  c.use_bias = m.get_bool("use_bias", c.use_bias);
  c.use_conv_bias = m.get_bool("use_conv_bias", c.use_conv_bias);
  c.residual_in_fp32 = m.get_bool("residual_in_fp32", c.residual_in_fp32);
  c.tie_embeddings = m.get_bool("tie_embeddings", c.tie_embeddings);
  c.bos_token_id = m.get_int("bos_token_id", c.bos_token_id);
  c.eos_token_id = m.get_int("eos_token_id", c.eos_token_id);
  c.pad_token_id = m.get_int("pad_token_id", c.pad_token_id);
  c.initializer_range = m.get_double("initializer_range", c.initializer_range);
  c.dt_min = m.get_double("dt_min", c.dt_min);
  c.dt_max = m.get_double("dt_max", c.dt_max);
  c.dt_init_floor = m.get_double("dt_init_floor", c.dt_init_floor);
  c.dt_scale = m.get_double("dt_scale", c.dt_scale);
  c.dt_init = m.get_string("dt_init", c.dt_init);
  c.rescale_prenorm_residual = m.get_bool("rescale_prenorm_residual", c.rescale_prenorm_residual);
  c.gate_type = m.get_string("gate_type", c.gate_type);
  c.gate_block = m.get_int("gate_block", c.gate_block);
  c.gate_init = m.get_double("gate_init", c.gate_init);
  c.validate(path);
  return c;
}

// ---------------------------------------------------------------------------------- presets

std::string config_dir() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MCD_CONFIG_DIR"); env && *env) candidates.emplace_back(env);
  const std::string exe = fs::executable_path();
  if (!exe.empty()) {
    const std::string dir = fs::parent_path(exe);
    candidates.push_back(fs::join(dir, "configs"));
    candidates.push_back(fs::join(fs::parent_path(dir), "configs"));
  }
#ifdef MCD_SOURCE_DIR
  candidates.push_back(fs::join(MCD_SOURCE_DIR, "configs"));
#endif
  for (const auto& c : candidates)
    if (fs::is_directory(fs::join(c, "models"))) return c;
  fail("cannot find the configs/ folder (set MCD_CONFIG_DIR to the repository's configs/)");
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& n : fs::list_dir(fs::join(config_dir(), "models")))
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".yaml") == 0) names.push_back(n.substr(0, n.size() - 5));
  return names;
}

ModelConfig model_preset(const std::string& name) {
  const std::string path = fs::join(fs::join(config_dir(), "models"), name + ".yaml");
  if (!fs::exists(path)) {
    std::string list;
    for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    fail(cat("unknown model preset '", name, "' (available: ", list, ")"));
  }
  return ModelConfig::from_yaml_file(path);
}

}  // namespace mcd
