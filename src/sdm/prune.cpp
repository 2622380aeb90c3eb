// Keep plans and physical pruning (see prune.h). Every plan is built the same way: score the
// pruning units of each layer, select some by the plan's rule, then top up each layer (min
// channels, round-to) with its next best units and read the gate value of each survivor.
#include "sdm/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/channel_surgery.h"
#include "util/error.h"

namespace mcd::sdm {
namespace {

// One layer's units: their scores (higher = more worth keeping) and which are selected.
struct LayerUnits {
  std::vector<double> score;
  std::vector<char> selected;
  int64_t count() const { return std::count(selected.begin(), selected.end(), char(1)); }
};

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(torch::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

int64_t gate_block_of(const MambaLMImpl& model) {
  return model.config().gate_type.empty() ? 1 : model.config().gate_block;
}

// Checks the options and every layer width against the pruning unit; returns the unit.
int64_t pruning_unit(const MambaLMImpl& model, const PlanOptions& o) {
  MCD_CHECK(o.granularity >= 1, "prune: granularity must be >= 1, got ", o.granularity);
  MCD_CHECK(o.round_to >= 1, "prune: round-to must be >= 1, got ", o.round_to);
  MCD_CHECK(o.min_channels >= 0, "prune: min-channels must be >= 0, got ", o.min_channels);
  const int64_t block = gate_block_of(model);
  const int64_t unit = std::lcm(o.granularity, block);
  MCD_CHECK(o.round_to % unit == 0 || unit % o.round_to == 0, "prune: round-to ", o.round_to,
            " must be a multiple or a divisor of the pruning unit ", unit, " (granularity ",
            o.granularity, ", gate block ", block, ")");
  const ModelConfig& c = model.config();
  for (int64_t l = 0; l < c.n_layer; ++l)
    MCD_CHECK(c.inner_width(l) % unit == 0, "prune: layer ", l, " has width ", c.inner_width(l),
              ", not a multiple of the pruning unit ", unit, " (granularity ", o.granularity,
              ", gate block ", block, ")");
  return unit;
}

// (E) per-channel values → (E/u) unit means.
std::vector<double> unit_means(const at::Tensor& per_channel, int64_t unit) {
  const at::Tensor t = per_channel.detach().to(torch::kCPU, at::kDouble);
  return to_vector(t.view({-1, unit}).mean(1));
}

ChannelGateImpl& gate_of(MambaLMImpl& model, int64_t layer) {
  std::vector<ChannelGate> gates = model.backbone->gates();
  MCD_CHECK(int64_t(gates.size()) == model.config().n_layer, "prune: layer ", layer,
            " has no SDM gate (the model config has no gate_type)");
  return *gates[size_t(layer)];
}

// Per-unit gate logits: mean α over the unit's channels (a unit covers whole gate blocks).
std::vector<LayerUnits> gate_units(MambaLMImpl& model, int64_t unit) {
  MCD_CHECK(!model.config().gate_type.empty(),
            "prune: the model has no SDM gates (config has no sdm_gate_type); use a magnitude plan");
  std::vector<LayerUnits> layers;
  for (int64_t l = 0; l < model.config().n_layer; ++l) {
    auto& gate = gate_of(model, l);
    LayerUnits lu;
    lu.score = unit_means(gate.expand(gate.log_alpha.detach()), unit);
    lu.selected.assign(lu.score.size(), 0);
    layers.push_back(std::move(lu));
  }
  return layers;
}

std::vector<LayerUnits> magnitude_units(MambaLMImpl& model, int64_t unit) {
  std::vector<LayerUnits> layers;
  for (const at::Tensor& s : magnitude_scores(model)) {
    LayerUnits lu;
    lu.score = unit_means(s, unit);
    lu.selected.assign(lu.score.size(), 0);
    layers.push_back(std::move(lu));
  }
  return layers;
}

// Unit indices of one layer, best first (score descending, then index ascending).
std::vector<int64_t> ranking(const LayerUnits& lu) {
  std::vector<int64_t> order(lu.score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return lu.score[a] > lu.score[b]; });
  return order;
}

// Selects the best `k` units over all layers (score descending; ties: lower layer, lower index).
void select_global_topk(std::vector<LayerUnits>& layers, int64_t k) {
  std::vector<std::pair<int64_t, int64_t>> all;  // (layer, unit)
  for (size_t l = 0; l < layers.size(); ++l)
    for (size_t i = 0; i < layers[l].score.size(); ++i) all.emplace_back(l, i);
  std::stable_sort(all.begin(), all.end(), [&](const auto& a, const auto& b) {
    return layers[a.first].score[a.second] > layers[b.first].score[b.second];
  });
  k = std::clamp<int64_t>(k, 0, all.size());
  for (int64_t i = 0; i < k; ++i) layers[all[i].first].selected[all[i].second] = 1;
}

void select_layer_topk(LayerUnits& lu, int64_t k) {
  const std::vector<int64_t> order = ranking(lu);
  k = std::clamp<int64_t>(k, 0, order.size());
  for (int64_t i = 0; i < k; ++i) lu.selected[order[i]] = 1;
}

void check_sparsity(double s) {
  MCD_CHECK(std::isfinite(s) && s >= 0.0 && s <= 1.0, "prune: sparsity must be in [0, 1], got ", s);
}

// Tops up each layer (min_channels, then round-to) with its next best units, refuses empty
// layers, and reads each survivor's gate value.
KeepPlan finish(MambaLMImpl& model, std::vector<LayerUnits>& layers, const PlanOptions& o, int64_t unit,
                const std::string& method, double sparsity, const std::string& why_empty) {
  KeepPlan plan;
  plan.method = method;
  plan.requested_sparsity = sparsity;
  plan.options = o;
  plan.unit = unit;
  const bool gated = !model.config().gate_type.empty();
  for (size_t l = 0; l < layers.size(); ++l) {
    LayerUnits& lu = layers[l];
    const int64_t E = int64_t(lu.score.size()) * unit;
    const std::vector<int64_t> order = ranking(lu);
    auto grow_to = [&](int64_t target) {
      target = std::min(target, E);
      for (int64_t idx : order) {
        if (lu.count() * unit >= target) break;
        lu.selected[idx] = 1;
      }
    };
    grow_to(o.min_channels);
    MCD_CHECK(lu.count() > 0, "prune: layer ", l, " would keep 0 of its ", E, " channels (", why_empty,
              "); a layer needs at least one channel. Pass --min-channels 1 (PlanOptions::min_channels) "
              "to keep its best ", unit == 1 ? "channel" : "block", " anyway. That layer of the pruned model "
              "then differs from the masked model: it keeps a channel the mask removed",
              gated ? " (its gate value is folded into the weights, so a closed gate still contributes "
                      "nothing, but the layer is no longer the mask's exact channel set)"
                    : ", and that channel's contribution is not zeroed");
    const int64_t width = lu.count() * unit;
    grow_to((width + o.round_to - 1) / o.round_to * o.round_to);
    std::vector<int64_t> kept;
    for (size_t i = 0; i < lu.selected.size(); ++i)
      if (lu.selected[i])
        for (int64_t c = 0; c < unit; ++c) kept.push_back(int64_t(i) * unit + c);
    const at::Tensor idx = torch::tensor(kept, torch::kLong);
    at::Tensor scale = torch::ones({int64_t(kept.size())}, torch::kFloat);
    if (gated) {
      auto& gate = gate_of(model, l);
      scale = gate.expand(gate.deterministic_gates()).to(torch::kCPU, torch::kFloat).index_select(0, idx);
    }
    plan.kept.push_back(std::move(kept));
    plan.scale.push_back(scale);
  }
  return plan;
}

}  // namespace

std::vector<int64_t> KeepPlan::widths() const {
  std::vector<int64_t> w;
  for (const auto& k : kept) w.push_back(int64_t(k.size()));
  return w;
}

int64_t KeepPlan::total_kept() const {
  int64_t n = 0;
  for (const auto& k : kept) n += int64_t(k.size());
  return n;
}

MagnitudeScope parse_magnitude_scope(const std::string& name) {
  if (name == "global") return MagnitudeScope::kGlobal;
  if (name == "per_layer") return MagnitudeScope::kPerLayer;
  fail(cat("unknown magnitude scope '", name, "' (valid: global, per_layer)"));
}

std::vector<at::Tensor> magnitude_scores(MambaLMImpl& model) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> scores;
  for (auto& block : model.backbone->blocks) {
    auto& m = *block->mixer;
    const int64_t E = m.d_inner;
    const at::Tensor w_in = m.in_proj->weight.detach().to(torch::kCPU, at::kDouble);    // (2E, D)
    const at::Tensor w_out = m.out_proj->weight.detach().to(torch::kCPU, at::kDouble);  // (D, E)
    const at::Tensor x_norm = w_in.narrow(0, 0, E).norm(2, {1});  // (E)
    const at::Tensor z_norm = w_in.narrow(0, E, E).norm(2, {1});  // (E)
    const at::Tensor o_norm = w_out.norm(2, {0});                 // (E)
    scores.push_back(x_norm * z_norm * o_norm);
  }
  return scores;
}

KeepPlan plan_threshold(MambaLMImpl& model, const PlanOptions& options) {
  const int64_t unit = pruning_unit(model, options);
  std::vector<LayerUnits> layers = gate_units(model, unit);
  for (size_t l = 0; l < layers.size(); ++l) {
    auto& gate = gate_of(model, l);
    const at::Tensor z = gate.expand(gate.deterministic_gates()).to(torch::kCPU);  // (E)
    const std::vector<double> open = to_vector((z > 0).to(at::kDouble).view({-1, unit}).amax(1));
    for (size_t i = 0; i < open.size(); ++i) layers[l].selected[i] = open[i] > 0;
  }
  return finish(model, layers, options, unit, "threshold", std::numeric_limits<double>::quiet_NaN(),
                "all its gates are closed: z = 0 at U = 0.5");
}

KeepPlan plan_topk(MambaLMImpl& model, double sparsity, const PlanOptions& options) {
  check_sparsity(sparsity);
  const int64_t unit = pruning_unit(model, options);
  std::vector<LayerUnits> layers = gate_units(model, unit);
  int64_t total = 0;
  for (const auto& lu : layers) total += int64_t(lu.score.size()) * unit;
  select_global_topk(layers, std::llround(double(total) * (1.0 - sparsity) / double(unit)));
  return finish(model, layers, options, unit, "topk", sparsity,
                "none of its gates ranks in the global top-k by alpha");
}

KeepPlan plan_magnitude(MambaLMImpl& model, double sparsity, MagnitudeScope scope, const PlanOptions& options) {
  check_sparsity(sparsity);
  const int64_t unit = pruning_unit(model, options);
  std::vector<LayerUnits> layers = magnitude_units(model, unit);
  if (scope == MagnitudeScope::kGlobal) {
    int64_t total = 0;
    for (const auto& lu : layers) total += int64_t(lu.score.size()) * unit;
    select_global_topk(layers, std::llround(double(total) * (1.0 - sparsity) / double(unit)));
  } else {
    for (auto& lu : layers)
      select_layer_topk(lu, std::llround(double(lu.score.size()) * (1.0 - sparsity)));
  }
  return finish(model, layers, options, unit,
                scope == MagnitudeScope::kGlobal ? "magnitude_global" : "magnitude_per_layer", sparsity,
                scope == MagnitudeScope::kGlobal ? "none of its channels ranks in the global top-k by magnitude"
                                                 : "the sparsity leaves no channel in the layer");
}

KeepPlan plan_magnitude_widths(MambaLMImpl& model, const std::vector<int64_t>& widths,
                               const PlanOptions& options, const std::string& where) {
  const int64_t unit = pruning_unit(model, options);
  const ModelConfig& c = model.config();
  MCD_CHECK(int64_t(widths.size()) == c.n_layer, where, ": has ", widths.size(), " layer widths, the model ",
            c.n_layer, " layers");
  std::vector<LayerUnits> layers = magnitude_units(model, unit);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    MCD_CHECK(widths[l] >= 0 && widths[l] <= c.inner_width(l), where, ": layer ", l, " width ", widths[l],
              " is outside [0, ", c.inner_width(l), "]");
    select_layer_topk(layers[l], (widths[l] + unit - 1) / unit);
  }
  return finish(model, layers, options, unit, "magnitude_widths", std::numeric_limits<double>::quiet_NaN(),
                cat("its target width from ", where, " is 0"));
}

// Slicing (METHOD.md §2). Why folding the gate value g_c into x_proj and out_proj is exact: the
// masked mixer feeds u'_c = g_c·u_c to everything after the conv. x_proj(u') = x_proj·diag(g)·u,
// so scaling x_proj's column c by g_c gives the same δ, B, C, hence the same Δ. Given Δ, B, C the
// scan is linear in each channel's own input: h_c,t = exp(Δ_c,t·A_c)⊙h_c,t−1 + Δ_c,t·B_t·u'_c,t and
// y_c,t = C_t·h_c,t + D_c·u'_c,t, so y_c(u') = g_c·y_c(u) — the scan and the D skip scale together.
// The SiLU(z) gate multiplies y_c elementwise, so g_c moves on to out_proj's column c. The pruned
// mixer therefore computes the masked one's output with ungated u, channel by channel.
MambaLM apply_plan(MambaLMImpl& model, const KeepPlan& plan) {
  const ModelConfig& src = model.config();
  MCD_CHECK(int64_t(plan.kept.size()) == src.n_layer && plan.scale.size() == plan.kept.size(),
            "apply_plan: the plan has ", plan.kept.size(), " layers (", plan.scale.size(),
            " scales), the model ", src.n_layer);
  for (int64_t l = 0; l < src.n_layer; ++l) {
    const auto& k = plan.kept[l];
    const int64_t E = src.inner_width(l);
    MCD_CHECK(!k.empty(), "apply_plan: layer ", l, " keeps no channel (a layer needs at least one)");
    for (size_t i = 0; i < k.size(); ++i)
      MCD_CHECK(k[i] >= 0 && k[i] < E && (i == 0 || k[i] > k[i - 1]), "apply_plan: layer ", l,
                "'s kept indices must be sorted, unique and in [0, ", E, "); entry ", i, " is ", k[i]);
    MCD_CHECK(plan.scale[l].defined() && plan.scale[l].numel() == int64_t(k.size()), "apply_plan: layer ",
              l, "'s scale must have one value per kept channel (", k.size(), ")");
  }
  ModelConfig config = src;
  config.gate_type.clear();
  config.gate_block = 1;
  config.d_inner_per_layer = plan.widths();
  const at::Tensor& ref = model.backbone->embeddings->weight;
  MambaLM out(config);
  out->to(ref.device(), ref.scalar_type());
  out->eval();

  torch::NoGradGuard no_grad;
  auto copy = [](at::Tensor& dst, const at::Tensor& value) { dst.copy_(value.detach()); };
  copy(out->backbone->embeddings->weight, model.backbone->embeddings->weight);
  copy(out->backbone->norm_f->weight, model.backbone->norm_f->weight);
  if (model.lm_head) copy(out->lm_head->weight, model.lm_head->weight);
  for (int64_t l = 0; l < src.n_layer; ++l) {
    auto& a = *model.backbone->blocks[l]->mixer;
    auto& b = *out->backbone->blocks[l]->mixer;
    copy(out->backbone->blocks[l]->norm->weight, model.backbone->blocks[l]->norm->weight);
    // Every channel-indexed tensor through channel surgery; the gate's values fold into the weights.
    const at::Tensor idx = torch::tensor(plan.kept[l], torch::kLong);  // (E')
    std::map<std::string, at::Tensor> gathered = gather_channels(a, idx);
    gathered.erase("gate.log_alpha");
    for (ChannelSlot& slot : b.channel_slots()) {
      const auto it = gathered.find(slot.name);
      MCD_CHECK(it != gathered.end(), "apply_plan: layer ", l, " has no source for ", slot.name);
      copy(slot.tensor, it->second);
      gathered.erase(it);
    }
    MCD_CHECK(gathered.empty(), "apply_plan: layer ", l, " has channel tensors the pruned model cannot hold (",
              gathered.begin()->first, "); merge or remove adapters before pruning");
    const at::Tensor scale = plan.scale[l].to(ref.device(), a.x_proj->weight.scalar_type()).unsqueeze(0);  // (1, E')
    b.x_proj->weight.mul_(scale);    // (R + 2N, E')
    b.out_proj->weight.mul_(scale);  // (D, E')
    if (a.out_proj->options.bias()) copy(b.out_proj->bias, a.out_proj->bias);
  }
  return out;
}

}  // namespace mcd::sdm
