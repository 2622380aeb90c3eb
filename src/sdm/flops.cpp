// FLOP and parameter counting (see flops.h): one function walks the mixer's data flow
// (model/mamba.cpp, METHOD.md §1) and names each term; the JSON views are built from it.
#include "sdm/flops.h"

#include "util/error.h"

namespace mcd::sdm {
using nlohmann::json;

int64_t LayerFlops::elementwise_total() const {
  int64_t n = 0;
  for (const auto& [name, value] : elementwise) n += value;
  return n;
}

FlopCount count_flops(const ModelConfig& c) {
  c.validate("flops");
  const int64_t D = c.d_model, N = c.d_state, K = c.d_conv, R = c.resolved_dt_rank(), V = c.vocab_size;
  const bool gated = !c.gate_type.empty();
  FlopCount f;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const int64_t E = c.inner_width(l);
    LayerFlops lf;
    lf.d_inner = E;
    lf.in_proj = 2 * D * 2 * E;          // (2E, D) · x
    lf.conv = 2 * E * K;                 // K multiply-adds per channel
    lf.x_proj = 2 * E * (R + 2 * N);     // (R + 2N, E) · u
    lf.dt_proj = 2 * R * E;              // (E, R) · δ
    lf.out_proj = 2 * E * D;             // (D, E) · y
    auto& t = lf.elementwise;
    t.emplace_back("norm", 4 * D);                         // square, sum, ·rsqrt, ·weight
    if (c.use_bias) t.emplace_back("in_proj_bias", 2 * E);
    if (c.use_conv_bias) t.emplace_back("conv_bias", E);
    t.emplace_back("silu_x", 3 * E);                       // x / (1 + exp(−x)): exp, add, divide
    if (gated) t.emplace_back("sdm_gate", E);              // u ⊙ gate
    t.emplace_back("dt_bias_softplus", 3 * E);             // + bias, softplus = log1p(exp(·))
    t.emplace_back("discretize", 3 * E * N + E);           // Δ·A, exp(Δ·A), Δ·u, (Δ·u)·B
    t.emplace_back("scan_recurrence", 2 * E * N);          // h = exp(ΔA)⊙h + ΔBu
    t.emplace_back("scan_output", 2 * E * N);              // y = C·h (N multiply-adds)
    t.emplace_back("d_skip", 2 * E);                       // y + D⊙u
    t.emplace_back("silu_z_gate", 4 * E);                  // SiLU(z) (3), y ⊙ SiLU(z) (1)
    if (c.use_bias) t.emplace_back("out_proj_bias", D);
    t.emplace_back("residual_add", D);
    lf.parameters = D                                        // norm
                    + 2 * E * D + (c.use_bias ? 2 * E : 0)   // in_proj
                    + E * K + (c.use_conv_bias ? E : 0)      // conv1d
                    + (R + 2 * N) * E                        // x_proj
                    + R * E + E                              // dt_proj
                    + E * N + E                              // A_log, D
                    + D * E + (c.use_bias ? D : 0);          // out_proj
    if (gated) {
      lf.parameters += E / c.gate_block;
      f.gate_parameters += E / c.gate_block;
    }
    f.matmul_parameters += 2 * E * D + (R + 2 * N) * E + R * E + D * E;
    f.forward_matmul += lf.matmul();
    f.forward_conv += lf.conv;
    f.forward_elementwise += lf.elementwise_total();
    f.parameters += lf.parameters;
    f.layers.push_back(std::move(lf));
  }
  f.head = 2 * D * V;
  f.final_norm = 4 * D;
  f.forward_matmul += f.head;
  f.forward_elementwise += f.final_norm;
  f.forward_total = f.forward_matmul + f.forward_conv + f.forward_elementwise;
  f.training = 3 * f.forward_matmul;
  f.matmul_parameters += D * V;
  f.parameters += V * D + D + (c.tie_embeddings ? 0 : V * D);  // embedding, norm_f, untied head
  return f;
}

json flops_json(const ModelConfig& c, int64_t seq_len) {
  MCD_CHECK(seq_len >= 1, "flops: seq_len must be >= 1, got ", seq_len);
  const FlopCount f = count_flops(c);
  json j;
  std::vector<int64_t> widths;
  for (const auto& l : f.layers) widths.push_back(l.d_inner);
  j["config"] = {{"d_model", c.d_model},      {"n_layer", c.n_layer},
                 {"d_state", c.d_state},      {"d_conv", c.d_conv},
                 {"dt_rank", c.resolved_dt_rank()}, {"vocab_size", c.vocab_size},
                 {"d_inner_per_layer", widths}, {"gate_type", c.gate_type}};
  j["convention"] =
      "forward FLOPs per token; multiply-add = 2, exp/log/divide = 1; training = 3 x forward matmul "
      "FLOPs (conv and elementwise excluded); see docs/sdm.md";
  j["per_token"] = {{"forward_total", f.forward_total},
                    {"forward_matmul", f.forward_matmul},
                    {"forward_conv", f.forward_conv},
                    {"forward_elementwise", f.forward_elementwise},
                    {"head", f.head},
                    {"final_norm", f.final_norm},
                    {"training", f.training}};
  j["seq_len"] = seq_len;
  j["per_sequence"] = {{"forward_total", f.forward_total * seq_len}, {"training", f.training * seq_len}};
  j["parameters"] = {{"total", f.parameters},
                     {"gates", f.gate_parameters},
                     {"without_gates", f.parameters - f.gate_parameters},
                     {"matmul", f.matmul_parameters},
                     {"embedding", c.vocab_size * c.d_model}};
  json layers = json::array();
  for (size_t i = 0; i < f.layers.size(); ++i) {
    const LayerFlops& l = f.layers[i];
    json terms = json::object();
    for (const auto& [name, value] : l.elementwise) terms[name] = value;
    layers.push_back({{"layer", int64_t(i)},
                      {"d_inner", l.d_inner},
                      {"in_proj", l.in_proj},
                      {"conv", l.conv},
                      {"x_proj", l.x_proj},
                      {"dt_proj", l.dt_proj},
                      {"out_proj", l.out_proj},
                      {"elementwise", terms},
                      {"matmul", l.matmul()},
                      {"total", l.total()},
                      {"parameters", l.parameters}});
  }
  j["layers"] = std::move(layers);
  return j;
}

json compare_flops(const ModelConfig& dense, const ModelConfig& pruned) {
  const FlopCount a = count_flops(dense), b = count_flops(pruned);
  auto side = [](const FlopCount& f) {
    return json{{"forward_flops_per_token", f.forward_total},
                {"forward_matmul_flops_per_token", f.forward_matmul},
                {"training_flops_per_token", f.training},
                {"parameters", f.parameters}};
  };
  return {{"dense", side(a)},
          {"pruned", side(b)},
          {"forward_flops_ratio", double(b.forward_total) / double(a.forward_total)},
          {"training_flops_ratio", double(b.training) / double(a.training)},
          {"parameters_ratio", double(b.parameters) / double(a.parameters)}};
}

}  // namespace mcd::sdm
