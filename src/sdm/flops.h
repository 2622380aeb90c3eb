// Analytic forward FLOPs per token and parameter counts of a Mamba-1 LM from its actual
// (possibly per-layer, pruned) widths: METHOD.md §5 compares models on these numbers.
// Every term is listed in flops.cpp and docs/sdm.md; prune.h makes the widths these count.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "config/model_config.h"

namespace mcd::sdm {

// Convention: a multiply, add, divide, exp or log is 1 FLOP, a multiply-add 2. O(1)-per-token
// work (RMSNorm's mean division, eps and rsqrt) is ignored. Training FLOPs = 3 × forward matmul
// FLOPs (forward + 2× backward; = 6 × matmul parameters per token, the spec's PERF.md convention);
// conv and elementwise work is reported but left out of the training figure.
struct LayerFlops {
  int64_t d_inner = 0;
  // Per token, forward.
  int64_t in_proj = 0, x_proj = 0, dt_proj = 0, out_proj = 0;  // matmuls: 2·in·out
  int64_t conv = 0;                                            // 2·E·K
  std::vector<std::pair<std::string, int64_t>> elementwise;    // named terms, data-flow order
  int64_t parameters = 0;                                      // this block's, gates included

  int64_t matmul() const { return in_proj + x_proj + dt_proj + out_proj; }
  int64_t elementwise_total() const;
  int64_t total() const { return matmul() + conv + elementwise_total(); }
};

struct FlopCount {
  std::vector<LayerFlops> layers;
  int64_t head = 0;        // 2·D·V (tied or not)
  int64_t final_norm = 0;  // 4·D
  int64_t forward_matmul = 0, forward_conv = 0, forward_elementwise = 0, forward_total = 0;
  int64_t training = 0;         // 3 × forward_matmul
  int64_t parameters = 0;       // every module parameter, gates included (= the module's numel sum)
  int64_t gate_parameters = 0;  // SDM gate logits (E/g per layer); 0 without gates
  int64_t matmul_parameters = 0;  // in/x/dt/out_proj weights and the head (tied head counted)
};

FlopCount count_flops(const ModelConfig& config);

// The breakdown as JSON: config summary, per-token totals, per-sequence totals for `seq_len`
// tokens (Mamba's cost is linear in L), parameters, and every layer's terms.
nlohmann::json flops_json(const ModelConfig& config, int64_t seq_len = 1);

// Dense vs pruned: forward/training FLOPs per token and parameters of both, and pruned/dense ratios.
nlohmann::json compare_flops(const ModelConfig& dense, const ModelConfig& pruned);

}  // namespace mcd::sdm
