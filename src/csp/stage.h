// The CSP stage (METHOD.md §3) from a calibration to a Permutation: per layer, weights |corr|, the
// identity / random / greedy / final orders and their objectives. Layers are ordered in parallel
// (each is independent). With SDM gate blocks (gate_block > 1) whole blocks are ordered, by the
// mean |corr| between two blocks' channels, so every gate keeps its channels together.
#pragma once

#include <functional>
#include <string>

#include "csp/correlation.h"
#include "csp/ordering.h"
#include "csp/permutation.h"

namespace mcd::csp {

struct OrderingOptions {
  LocalSearchOptions search;  // per layer
  uint64_t seed = 0;          // the random order's seed (reported only)
  int threads = 0;            // layers ordered at once; 0: hardware concurrency
  std::function<void(int64_t layer, const LayerPermutation&)> on_layer;  // progress (serialised)
};

// One layer: corr (E, E) float64 → its permutation, moving units of `unit` channels.
LayerPermutation order_layer(const at::Tensor& corr, int64_t unit, const LocalSearchOptions& search,
                             uint64_t random_seed);

// Every layer of a calibrated model (unit = the model's SDM gate block, else 1).
Permutation find_permutation(const ModelConfig& config, const Calibration& calibration,
                             const OrderingOptions& options);

}  // namespace mcd::csp
