// Physical pruning (sdm/prune.h): the pruned dense model gives the masked model's logits (fp32 and
// float64) for hard-concrete and Gumbel gates, tiny and empty layers, blocks and round-to; top-k
// and magnitude plans keep exactly what they promise; parameter counts match the real modules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "model/checkpoint.h"
#include "prune_test_util.h"
#include "sdm/flops.h"
#include "sdm/importance.h"
#include "sdm/prune.h"

namespace mcd::sdm {
namespace {
using namespace test_util;

// Pruned vs masked logits, both in eval mode, on fresh random tokens.
double pruned_vs_masked(MambaLMImpl& masked, MambaLMImpl& pruned, uint64_t seed = 5) {
  const at::Tensor ids = tokens(2, 24, masked.config().vocab_size, seed);
  return test::rel_err(logits(pruned, ids), logits(masked, ids));
}

std::vector<double> deterministic_z(MambaLMImpl& model, int64_t layer) {
  auto& g = *model.backbone->blocks[layer]->mixer->gate;
  const at::Tensor z = g.expand(g.deterministic_gates()).to(at::kDouble).contiguous();
  return std::vector<double>(z.data_ptr<double>(), z.data_ptr<double>() + z.numel());
}

TEST(PruneThreshold, HardConcretePrunedEqualsMaskedFp32) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 1);
  const KeepPlan plan = plan_threshold(*model);
  int64_t fractional = 0;
  for (int64_t l = 0; l < 3; ++l) {
    const auto z = deterministic_z(*model, l);
    std::vector<int64_t> open;
    for (size_t c = 0; c < z.size(); ++c) {
      if (z[c] > 0) open.push_back(c);
      fractional += z[c] > 0 && z[c] < 1;
    }
    EXPECT_EQ(plan.kept[l], open) << "layer " << l;
    EXPECT_LT(open.size(), 128u);
    EXPECT_GT(open.size(), 0u);
  }
  EXPECT_GT(fractional, 10) << "the test needs fractional gate values to check the folding";
  MambaLM pruned = apply_plan(*model, plan);
  EXPECT_TRUE(pruned->config().gate_type.empty());
  EXPECT_EQ(pruned->config().d_inner_per_layer, plan.widths());
  for (auto& block : pruned->backbone->blocks) EXPECT_FALSE(block->mixer->gate);
  EXPECT_LE(pruned_vs_masked(*model, *pruned), 1e-5);
  // Folding matters: without the gate values the logits differ.
  KeepPlan unscaled = plan;
  for (auto& s : unscaled.scale) s = torch::ones_like(s);
  MambaLM wrong = apply_plan(*model, unscaled);
  EXPECT_GT(pruned_vs_masked(*model, *wrong), 1e-4);
}

TEST(PruneThreshold, Float64PrunedEqualsMasked) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 2);
  model->to(at::kDouble);
  MambaLM pruned = apply_plan(*model, plan_threshold(*model));
  EXPECT_EQ(pruned->backbone->embeddings->weight.scalar_type(), at::kDouble);
  const at::Tensor ids = tokens(2, 20, 512, 9);
  const at::Tensor a = logits(*model, ids), b = logits(*pruned, ids);
  ASSERT_EQ(a.scalar_type(), at::kDouble);
  EXPECT_LE(test::rel_err(b, a), 1e-12);
}

TEST(PruneThreshold, LayersPrunedToOneAndTwoChannels) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 3);
  at::Tensor a0 = torch::full({128}, -8.0), a1 = torch::full({128}, -8.0);
  a0[77] = 0.3;                // one fractional channel
  a1[5] = 4.0, a1[127] = -0.5;  // one fully open, one fractional
  set_alpha(*model, 0, a0);
  set_alpha(*model, 1, a1);
  const KeepPlan plan = plan_threshold(*model);
  EXPECT_EQ(plan.kept[0], std::vector<int64_t>({77}));
  EXPECT_EQ(plan.kept[1], std::vector<int64_t>({5, 127}));
  MambaLM pruned = apply_plan(*model, plan);
  EXPECT_EQ(pruned->backbone->blocks[0]->mixer->in_proj->weight.size(0), 2);
  EXPECT_LE(pruned_vs_masked(*model, *pruned), 1e-5);
}

TEST(PruneThreshold, AllClosedLayerIsRefusedUnlessMinChannels) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 4);
  set_alpha(*model, 1, torch::full({128}, -9.0));
  try {
    plan_threshold(*model);
    FAIL() << "expected an error for the empty layer";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("layer 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--min-channels 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("differs from the masked model"), std::string::npos) << msg;
  }
  PlanOptions o;
  o.min_channels = 1;
  const KeepPlan plan = plan_threshold(*model, o);
  EXPECT_EQ(plan.kept[1].size(), 1u);
  EXPECT_EQ(plan.scale[1].item<float>(), 0.0f);  // a closed gate folded in: contributes nothing
  MambaLM pruned = apply_plan(*model, plan);
  EXPECT_LE(pruned_vs_masked(*model, *pruned), 1e-5);
}

TEST(PruneThreshold, GumbelGates) {
  MambaLM model = random_model(tiny_config("gumbel"), 5);
  const KeepPlan plan = plan_threshold(*model);
  for (int64_t l = 0; l < 3; ++l) {
    const at::Tensor alpha = model->backbone->blocks[l]->mixer->gate->log_alpha.detach();
    EXPECT_EQ(int64_t(plan.kept[l].size()), (alpha > 0).sum().item<int64_t>());
    EXPECT_TRUE(torch::equal(plan.scale[l], torch::ones_like(plan.scale[l])));
  }
  MambaLM pruned = apply_plan(*model, plan);
  EXPECT_LE(pruned_vs_masked(*model, *pruned), 1e-5);
}

TEST(PruneThreshold, BlockGranularityAndRoundTo) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 6);
  PlanOptions o;
  o.granularity = 4;
  o.round_to = 8;
  const KeepPlan plan = plan_threshold(*model, o);
  EXPECT_EQ(plan.unit, 4);
  for (int64_t l = 0; l < 3; ++l) {
    const auto& k = plan.kept[l];
    EXPECT_EQ(k.size() % 8, 0u) << "layer " << l;
    for (size_t i = 0; i < k.size(); i += 4) {  // whole, aligned blocks of 4
      EXPECT_EQ(k[i] % 4, 0);
      EXPECT_EQ(k[i + 3], k[i] + 3);
    }
    // Every open channel survives.
    const auto z = deterministic_z(*model, l);
    for (size_t c = 0; c < z.size(); ++c)
      if (z[c] > 0) EXPECT_TRUE(std::binary_search(k.begin(), k.end(), int64_t(c)));
  }
  MambaLM pruned = apply_plan(*model, plan);
  EXPECT_LE(pruned_vs_masked(*model, *pruned), 1e-5);

  // Gate blocks of 4 with round-to 8.
  MambaLM blocked = random_model(tiny_config("hard_concrete", 4), 7);
  PlanOptions r;
  r.round_to = 8;
  const KeepPlan bplan = plan_threshold(*blocked, r);
  for (const auto& k : bplan.kept) EXPECT_EQ(k.size() % 8, 0u);
  MambaLM bpruned = apply_plan(*blocked, bplan);
  EXPECT_LE(pruned_vs_masked(*blocked, *bpruned), 1e-5);

  PlanOptions bad;
  bad.round_to = 6;
  bad.granularity = 4;
  EXPECT_THROW(plan_threshold(*model, bad), Error);  // 6 is neither a multiple nor a divisor of 4
  bad.round_to = 1;
  bad.granularity = 3;
  EXPECT_THROW(plan_threshold(*model, bad), Error);  // 3 does not divide 128
}

TEST(PruneTopK, KeepsExactlyTheRequestedCountByAlpha) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 8);
  const double s = 0.37;
  const KeepPlan plan = plan_topk(*model, s);
  EXPECT_EQ(plan.total_kept(), std::llround(3 * 128 * (1 - s)));
  double min_kept = INFINITY, max_dropped = -INFINITY;
  for (int64_t l = 0; l < 3; ++l) {
    const at::Tensor alpha = model->backbone->blocks[l]->mixer->gate->log_alpha.detach();
    for (int64_t c = 0; c < 128; ++c) {
      const double a = alpha[c].item<double>();
      if (std::binary_search(plan.kept[l].begin(), plan.kept[l].end(), c)) min_kept = std::min(min_kept, a);
      else max_dropped = std::max(max_dropped, a);
    }
  }
  EXPECT_GE(min_kept, max_dropped);
  // The pruned model equals the masked model with the dropped gates shut.
  MambaLM pruned = apply_plan(*model, plan);
  for (int64_t l = 0; l < 3; ++l) {
    at::Tensor alpha = model->backbone->blocks[l]->mixer->gate->log_alpha.detach().clone();
    at::Tensor drop = torch::ones({128}, torch::kBool);
    drop.index_fill_(0, torch::tensor(plan.kept[l]), false);
    alpha.masked_fill_(drop, -100.0);
    set_alpha(*model, l, alpha);
  }
  EXPECT_LE(pruned_vs_masked(*model, *pruned), 1e-5);
  // Gate blocks are the unit: 4-channel blocks, count rounded to whole blocks.
  MambaLM blocked = random_model(tiny_config("hard_concrete", 4), 9);
  const KeepPlan bplan = plan_topk(*blocked, 0.5);
  EXPECT_EQ(bplan.total_kept(), 3 * 128 / 2);
  EXPECT_THROW(plan_topk(*model, 1.5), Error);
}

// Gate-less reference for magnitude plans: the dropped channels' u masked to zero, which is the
// same as zeroing their x_proj and out_proj columns.
MambaLM masked_copy(MambaLMImpl& model, const KeepPlan& plan) {
  MambaLM copy(model.config());
  torch::NoGradGuard no_grad;
  auto src = model.named_parameters(), dst = copy->named_parameters();
  for (const auto& item : src) dst[item.key()].copy_(item.value());
  for (int64_t l = 0; l < copy->config().n_layer; ++l) {
    auto& m = *copy->backbone->blocks[l]->mixer;
    at::Tensor keep = torch::zeros({m.d_inner});
    keep.index_fill_(0, torch::tensor(plan.kept[l]), 1.0);
    m.x_proj->weight.mul_(keep.unsqueeze(0));
    m.out_proj->weight.mul_(keep.unsqueeze(0));
  }
  copy->eval();
  return copy;
}

TEST(PruneMagnitude, GlobalAndPerLayer) {
  MambaLM model = random_model(tiny_config(""), 10);
  {  // make layers differ in scale so global and per-layer rankings differ
    torch::NoGradGuard no_grad;
    model->backbone->blocks[2]->mixer->out_proj->weight.mul_(3.0);
  }
  EXPECT_THROW(plan_threshold(*model), Error);  // no gates
  const std::vector<at::Tensor> scores = magnitude_scores(*model);
  const KeepPlan global = plan_magnitude(*model, 0.5, MagnitudeScope::kGlobal);
  EXPECT_EQ(global.method, "magnitude_global");
  EXPECT_EQ(global.total_kept(), 192);
  double min_kept = INFINITY, max_dropped = -INFINITY;
  for (int64_t l = 0; l < 3; ++l) {
    EXPECT_TRUE(torch::equal(global.scale[l], torch::ones_like(global.scale[l])));
    for (int64_t c = 0; c < 128; ++c) {
      const double v = scores[l][c].item<double>();
      if (std::binary_search(global.kept[l].begin(), global.kept[l].end(), c)) min_kept = std::min(min_kept, v);
      else max_dropped = std::max(max_dropped, v);
    }
  }
  EXPECT_GE(min_kept, max_dropped);
  EXPECT_GT(global.kept[2].size(), 64u);  // the scaled-up layer keeps more
  MambaLM gpruned = apply_plan(*model, global);
  MambaLM gmasked = masked_copy(*model, global);
  EXPECT_LE(pruned_vs_masked(*gmasked, *gpruned), 1e-5);

  PlanOptions o;
  o.granularity = 2;
  const KeepPlan per_layer = plan_magnitude(*model, 0.3, MagnitudeScope::kPerLayer, o);
  for (int64_t l = 0; l < 3; ++l) EXPECT_EQ(per_layer.kept[l].size(), size_t(2 * std::llround(64 * 0.7)));
  MambaLM ppruned = apply_plan(*model, per_layer);
  MambaLM pmasked = masked_copy(*model, per_layer);
  EXPECT_LE(pruned_vs_masked(*pmasked, *ppruned), 1e-5);
  EXPECT_THROW(parse_magnitude_scope("everywhere"), Error);
}

TEST(PruneMagnitude, SameKeptWidthsAsSdmFromImportanceFile) {
  test::TempDir tmp;
  MambaLM gated = random_model(tiny_config("hard_concrete"), 11);
  const KeepPlan sdm_plan = plan_threshold(*gated);
  write_importance(tmp.file("importance.json"), compute_importance(*gated, sdm_plan));
  const Importance imp = read_importance(tmp.file("importance.json"));
  std::vector<int64_t> widths;
  for (const auto& l : imp.layers) widths.push_back(l.kept_width);
  EXPECT_EQ(widths, sdm_plan.widths());
  MambaLM plain = random_model(tiny_config(""), 12);
  const KeepPlan plan = plan_magnitude_widths(*plain, widths, {}, tmp.file("importance.json"));
  EXPECT_EQ(plan.widths(), sdm_plan.widths());
  EXPECT_EQ(plan.method, "magnitude_widths");
  MambaLM pruned = apply_plan(*plain, plan);
  EXPECT_LE(pruned_vs_masked(*masked_copy(*plain, plan), *pruned), 1e-5);
  EXPECT_THROW(plan_magnitude_widths(*plain, {10, 20}), Error);       // wrong layer count
  EXPECT_THROW(plan_magnitude_widths(*plain, {10, 20, 300}), Error);  // wider than the layer
}

TEST(Prune, ParameterCountsMatchTheModules) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 13);
  EXPECT_EQ(numel_sum(*model), count_flops(model->config()).parameters);
  EXPECT_EQ(count_flops(model->config()).parameters - count_flops(model->config()).gate_parameters,
            model->config().num_parameters());
  MambaLM pruned = apply_plan(*model, plan_threshold(*model));
  EXPECT_EQ(numel_sum(*pruned), count_flops(pruned->config()).parameters);
  EXPECT_EQ(numel_sum(*pruned), pruned->config().num_parameters());
  EXPECT_LT(numel_sum(*pruned), model->config().num_parameters());
}

TEST(Prune, PrunedCheckpointRoundTrips) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config("hard_concrete"), 14);
  MambaLM pruned = apply_plan(*model, plan_threshold(*model));
  save_pretrained(*pruned, tmp.path);
  MambaLM loaded = load_pretrained(tmp.path);
  EXPECT_EQ(loaded->config().d_inner_per_layer, pruned->config().d_inner_per_layer);
  const at::Tensor ids = tokens(1, 16, 512, 3);
  EXPECT_EQ(test::rel_err(logits(*loaded, ids), logits(*pruned, ids)), 0.0);
  // The step mode of the pruned model agrees with its full forward.
  InferenceCache cache = pruned->new_cache(1);
  torch::NoGradGuard no_grad;
  const at::Tensor full = logits(*pruned, ids);
  pruned->prefill(ids.narrow(1, 0, 8), cache);
  at::Tensor last;
  for (int64_t t = 8; t < 16; ++t) last = pruned->step(ids.select(1, t), cache);
  EXPECT_LE(test::rel_err(last, full.select(1, 15)), 1e-5);
}

TEST(Prune, ApplyPlanRejectsBadPlans) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 15);
  KeepPlan plan = plan_threshold(*model);
  KeepPlan unsorted = plan;
  std::swap(unsorted.kept[0][0], unsorted.kept[0][1]);
  EXPECT_THROW(apply_plan(*model, unsorted), Error);
  KeepPlan short_plan = plan;
  short_plan.kept.pop_back();
  EXPECT_THROW(apply_plan(*model, short_plan), Error);
  KeepPlan bad_scale = plan;
  bad_scale.scale[1] = torch::ones({1});
  EXPECT_THROW(apply_plan(*model, bad_scale), Error);
}

}  // namespace
}  // namespace mcd::sdm
