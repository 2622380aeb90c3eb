// The SDM importance file (METHOD.md §2 "importance export"): per layer and per channel, how
// much the gates want to keep, and what a KeepPlan (prune.h) kept. Written by `prune`, read by
// SGH-PEFT (layers[i].mean_keep_prob is its layer importance) and by `prune --widths-from`.
// Format: docs/sdm.md. Gate-less models export a labelled magnitude proxy instead of gates.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sdm/prune.h"

namespace mcd::sdm {

constexpr const char* kImportanceFormat = "mcd-sdm-importance";
constexpr int kImportanceVersion = 1;

struct LayerImportance {
  int64_t width = 0;          // E of the unpruned layer
  int64_t kept_count = 0;     // kept channels whose gate value is non-zero (they carry signal)
  int64_t kept_width = 0;     // the pruned layer's width (kept.size(); includes topped-up channels)
  double mean_keep_prob = 0;  // mean P(gate open) over the layer's gates, or of keep_prob (proxy)
  std::vector<double> alpha;      // (E) gate logit of each channel's gate; empty for the proxy
  std::vector<double> keep_prob;  // (E) P(gate open), or the normalised magnitude score
  std::vector<int64_t> kept;      // sorted kept channel indices (unpruned numbering)
};

struct Importance {
  std::string source;      // "sdm_gates" or "magnitude_proxy"
  std::string gate_type;   // hard_concrete | gumbel; empty for the proxy
  int64_t gate_block = 1;  // channels per gate
  nlohmann::json plan;     // how the kept sets were chosen (method, sparsity, options)
  std::vector<LayerImportance> layers;

  int64_t total_width() const;
  int64_t total_kept_width() const;
  double sparsity() const;  // 1 − total_kept_width / total_width
};

// The plan's description: method, requested sparsity (null if none), granularity, round_to,
// min_channels, unit.
nlohmann::json plan_json(const KeepPlan& plan);

// Importance of `model` (unpruned, as the plan was made from it) together with `plan`. Gated
// models: α and prob_open per channel. Gate-less: keep_prob = magnitude score / the largest score
// over all layers, labelled "magnitude_proxy".
Importance compute_importance(MambaLMImpl& model, const KeepPlan& plan);

nlohmann::json importance_to_json(const Importance& importance);
// Validates everything (types, lengths, ranges, totals); errors name `where` and the key.
Importance importance_from_json(const nlohmann::json& j, const std::string& where);

void write_importance(const std::string& path, const Importance& importance);  // atomic
Importance read_importance(const std::string& path);

}  // namespace mcd::sdm
