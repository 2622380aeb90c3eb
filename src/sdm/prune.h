// Physical pruning (METHOD.md §2): decide which inner channels of each layer to keep (a
// KeepPlan: from SDM gates by threshold or exact top-k, or by weight magnitude for gate-less
// baselines) and slice a model down to a new dense, gate-less model with per-layer widths.
// importance.h exports the same decision for later stages; flops.h counts what was saved.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "model/mamba.h"

namespace mcd::sdm {

// How a plan is rounded and protected. The pruning unit is u = lcm(granularity, gate_block):
// units of u adjacent channels are kept or removed together, and every layer width must be a
// multiple of u.
struct PlanOptions {
  int64_t granularity = 1;   // g: prune groups of g adjacent channels
  int64_t round_to = 1;      // m: round each layer's kept width UP to a multiple of m (or to E)
  int64_t min_channels = 0;  // keep at least this many channels per layer (0: refuse empty layers)
};

// Which channels survive, per layer, and the gate value folded into each survivor's weights.
struct KeepPlan {
  std::vector<std::vector<int64_t>> kept;  // per layer, sorted channel indices
  std::vector<at::Tensor> scale;           // per layer (kept_l) float32: deterministic gate
                                           // value of each kept channel; ones without gates
  // How the plan was made (for the importance file and the CLI's report).
  std::string method;  // threshold | topk | magnitude_global | magnitude_per_layer | magnitude_widths
  double requested_sparsity = std::numeric_limits<double>::quiet_NaN();  // NaN: not requested
  PlanOptions options;
  int64_t unit = 1;  // channels per pruning unit

  std::vector<int64_t> widths() const;  // kept_l.size() per layer
  int64_t total_kept() const;
};

enum class MagnitudeScope { kGlobal, kPerLayer };
MagnitudeScope parse_magnitude_scope(const std::string& name);  // "global" | "per_layer"

// (a) Deterministic gates: a channel survives where its gate z (U = 0.5) is > 0. With a unit
// larger than the gate block, a unit survives when any of its channels does. Every removed
// channel then has z = 0, so the pruned model equals the masked model.
KeepPlan plan_threshold(MambaLMImpl& model, const PlanOptions& options = {});

// (b) Exactly the top-k units by gate logit α (mean α over a unit's gates), ranked over all
// layers, k = round(total·(1 − sparsity) / u). Rounding and min_channels may add units.
KeepPlan plan_topk(MambaLMImpl& model, double sparsity, const PlanOptions& options = {});

// (c) Magnitude baseline for gate-less models. Channel score (see magnitude_scores) averaged
// over a unit; `kGlobal`: one ranking over all layers keeping round(total·(1 − s) / u) units;
// `kPerLayer`: round(E_l·(1 − s) / u) units in every layer.
KeepPlan plan_magnitude(MambaLMImpl& model, double sparsity, MagnitudeScope scope,
                        const PlanOptions& options = {});
// Magnitude ranking with given kept widths per layer (e.g. SDM's, to build the "same kept
// widths" challenge model). Widths are rounded up to the unit; `where` names their source.
KeepPlan plan_magnitude_widths(MambaLMImpl& model, const std::vector<int64_t>& widths,
                               const PlanOptions& options = {}, const std::string& where = "widths");

// Per layer (E_l) float64: s_c = ‖in_proj[c,:]‖₂ · ‖in_proj[E+c,:]‖₂ · ‖out_proj[:,c]‖₂, the
// product of the weight norms along channel c's path (x input, z gate input, output).
std::vector<at::Tensor> magnitude_scores(MambaLMImpl& model);

// A new dense model without gates whose layer l has plan.kept[l].size() channels, sliced from
// `model` (METHOD.md §2) with each kept channel's gate value folded into its x_proj and out_proj
// columns. Same device and dtype as `model`, in eval mode. In eval mode its logits equal those of
// `model` whenever every removed channel has gate value 0 (always for plan_threshold).
MambaLM apply_plan(MambaLMImpl& model, const KeepPlan& plan);

}  // namespace mcd::sdm
