// The model's hyper-parameters (METHOD.md §1 dimension names) and their three sources:
// our strict YAML files (configs/models/*.yaml), a model folder's `config.json` (Hugging Face's keys, or
// mamba-ssm's own), and named presets.
// Pruned models carry one inner width per layer (`d_inner_per_layer`).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace mcd {

struct ModelConfig {
  int64_t d_model = 768;        // D
  int64_t n_layer = 24;
  int64_t vocab_size = 50280;   // V: embedding rows (YAML may round it up, pad_vocab_multiple)
  int64_t tokenizer_vocab_size = 0;  // ids the tokenizer produces; 0 = vocab_size. Rows past it
                                     // are padding, never produced and never sampled.
  int64_t d_state = 16;         // N
  int64_t expand = 2;           // E = expand·D unless d_inner / d_inner_per_layer say otherwise
  int64_t d_inner = 0;          // 0 = expand·D
  std::vector<int64_t> d_inner_per_layer;  // empty = uniform; else one width per layer (pruned)
  int64_t d_conv = 4;           // K
  int64_t dt_rank = 0;          // R; 0 = ceil(D/16)
  double norm_eps = 1e-5;
  bool use_bias = false;        // in_proj / out_proj bias
  bool use_conv_bias = true;
  bool residual_in_fp32 = true;
  bool tie_embeddings = true;
  int64_t bos_token_id = 0, eos_token_id = 0, pad_token_id = 0;
  // Initialisation (the reference implementation's).
  double initializer_range = 0.02;  // embedding std
  double dt_min = 1e-3, dt_max = 0.1, dt_init_floor = 1e-4, dt_scale = 1.0;
  std::string dt_init = "random";   // "random" (uniform ±R^-1/2·scale) or "constant"
  bool rescale_prenorm_residual = true;  // out_proj /= sqrt(n_layer)
  // SDM channel gates (METHOD.md §2): "" = none, "hard_concrete" or "gumbel"; one gate per block
  // of gate_block adjacent channels; gate logits start at gate_init (gates open).
  std::string gate_type;
  int64_t gate_block = 1;
  double gate_init = 3.0;

  int64_t inner_width(int64_t layer) const;   // E of layer `layer`
  int64_t unpruned_width() const;              // E before any pruning: d_inner or expand·D
  // This shape with `source`'s per-layer inner widths carried over as fractions of source's
  // unpruned E: layer l of this config takes source layer floor(l · L_source / L), each width
  // rounded to a multiple of round_to (at least round_to, at most this E). For timing a pruned
  // model's widths at another scale (e.g. mamba-130m) with random weights.
  ModelConfig with_width_fractions_of(const ModelConfig& source, int64_t round_to) const;
  // This shape with a fraction `sparsity` (in [0, 1)) of every layer's inner channels removed:
  // each width (1 − sparsity)·E rounded to a multiple of round_to (at least round_to). For timing
  // uniformly pruned models with random weights (the pruned-latency curves of PERF_NOTES).
  ModelConfig with_uniform_sparsity(double sparsity, int64_t round_to) const;
  int64_t resolved_dt_rank() const;
  int64_t real_vocab_size() const;             // tokenizer_vocab_size or vocab_size
  bool uniform_inner() const;
  int64_t num_parameters() const;              // analytic, tied head counted once
  void validate(const std::string& where) const;  // throws mcd::Error naming `where`

  nlohmann::json to_hf_json() const;
  static ModelConfig from_hf_json(const nlohmann::json& j, const std::string& where);
  // mamba-ssm's own config.json (MambaConfig: d_model, n_layer, ssm_cfg, ...), Mamba-1 layers only.
  static ModelConfig from_mamba_ssm_json(const nlohmann::json& j, const std::string& where);
  // This model as mamba-ssm's MambaConfig (Mamba-1 layers, fused add-norm). Refused, naming `where`, for
  // what mamba-ssm cannot express: SDM gates, per-layer widths, E != expand·D, an epsilon other than 1e-5.
  nlohmann::json to_mamba_ssm_json(const std::string& where) const;
  static bool is_mamba_ssm_json(const nlohmann::json& j);  // d_model and n_layer, no hidden_size
  // A model folder's config.json in either format (from_mamba_ssm_json when is_mamba_ssm_json).
  static ModelConfig from_json(const nlohmann::json& j, const std::string& where);
  static ModelConfig from_json_file(const std::string& path);
  static ModelConfig from_yaml_file(const std::string& path);
};

// Named presets from configs/models/<name>.yaml (searched in MCD_CONFIG_DIR, next to the
// executable, and in the source tree). Throws listing the available names.
ModelConfig model_preset(const std::string& name);
std::vector<std::string> preset_names();
std::string config_dir();

}  // namespace mcd
