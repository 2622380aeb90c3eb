// CSP (src/csp): the streamed correlation equals a direct float64 computation; calibration through
// the model sees exactly u; the permuted model computes the same function (dense, gated, pruned) and
// its gates prune the same channels; permutation files round-trip and a mismatched one is refused.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "csp/correlation.h"
#include "csp/permutation.h"
#include "csp/stage.h"
#include "model/generation.h"
#include "sdm/prune.h"
#include "../sdm/prune_test_util.h"
#include "test_support.h"

namespace mcd::csp {
namespace {

using sdm::test_util::random_model;
using sdm::test_util::tiny_config;
using sdm::test_util::tokens;

// Direct Pearson correlation of x (N, E) in float64: centred columns, then cov / (sd·sd).
at::Tensor direct_corr(const at::Tensor& x) {
  const at::Tensor c = x.to(at::kDouble) - x.to(at::kDouble).mean(0, true);
  const at::Tensor cov = c.t().mm(c);
  const at::Tensor sd = cov.diagonal().sqrt();
  return cov / sd.unsqueeze(0) / sd.unsqueeze(1);
}

// (B, E, L) → (B·L, E) observations.
at::Tensor observations(const at::Tensor& u) { return u.transpose(1, 2).reshape({-1, u.size(1)}); }

TEST(CspCorrelation, StreamedSumsEqualTheDirectComputation) {
  // Correlated channels (a random mixing of 6 sources) with a large common offset, fed in uneven
  // chunks. Both sides are float64; the streamed form subtracts Σx·Σy/n from Σxy, which loses
  // ~log2(offset²/var) ≈ 14 bits to cancellation here: errors ~1e-16·2^14 ≈ 2e-12, hence 1e-10.
  at::Generator gen = make_cpu_generator(3);
  const int64_t E = 20;
  const at::Tensor mixing = torch::randn({6, E}, gen, at::kDouble);
  std::vector<at::Tensor> chunks;
  CorrelationAccumulator acc(E, torch::kCPU);
  for (int64_t len : {17, 1, 40, 5}) {
    const at::Tensor src = torch::randn({2 * len, 6}, gen, at::kDouble);
    const at::Tensor x = (src.mm(mixing) + 100.0).view({2, len, E}).transpose(1, 2).contiguous();  // (2, E, len)
    acc.add(x.to(at::kFloat).to(at::kDouble));  // values exactly representable in float32 too
    chunks.push_back(observations(x.to(at::kFloat).to(at::kDouble)));
  }
  const at::Tensor all = torch::cat(chunks);
  EXPECT_EQ(acc.count(), all.size(0));
  const at::Tensor got = acc.correlation(), ref = direct_corr(all);
  EXPECT_LT((got - ref).abs().max().item<double>(), 1e-10);
  EXPECT_LT((got.diagonal() - 1).abs().max().item<double>(), 1e-15);
}

TEST(CspCorrelation, ConstantChannelsAreUncorrelated) {
  at::Generator gen = make_cpu_generator(4);
  at::Tensor u = torch::randn({3, 5, 11}, gen, at::kDouble);
  u.select(1, 2).fill_(0.0);   // a channel closed by its SDM gate
  u.select(1, 4).fill_(0.25);  // any constant
  CorrelationAccumulator acc(5, torch::kCPU);
  acc.add(u);
  const at::Tensor c = acc.correlation();
  EXPECT_TRUE(torch::isfinite(c).all().item<bool>());
  for (int64_t k : {2, 4}) {
    EXPECT_EQ(c[k][k].item<double>(), 1.0);
    EXPECT_EQ(c[k].abs().sum().item<double>(), 1.0) << "channel " << k;
  }
  EXPECT_NE(test::error_of([&] { acc.add(torch::zeros({1, 4, 3})); }).find("u must be (B, 5, L)"), std::string::npos);
}

TEST(CspCalibration, AccumulatesExactlyTheUTheScanSees) {
  // Calibration in batches of 2 against u captured from one forward over all sequences, both in
  // float64 on the CPU reference ops: per-sequence computations do not depend on the batch, so the
  // only difference is the order of float64 sums (≤ 1e-10, see above).
  MambaLM model = random_model(tiny_config("hard_concrete"), 5);
  model->to(at::kDouble);
  const at::Tensor ids = tokens(5, 12, 512, 6);
  std::vector<at::Tensor> captured(3);
  model->backbone->set_u_observer([&](int64_t l, const at::Tensor& u) { captured[size_t(l)] = u.clone(); });
  {
    torch::NoGradGuard no_grad;
    model->backbone->forward(ids);
  }
  model->backbone->set_u_observer({});
  CalibrationOptions o;
  o.batch_size = 2;
  int64_t calls = 0;
  o.progress = [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, 5);
  };
  const Calibration cal = calibrate(*model, ids, o);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(cal.tokens(), 60);
  ASSERT_EQ(cal.correlation.size(), 3u);
  for (size_t l = 0; l < 3; ++l) {
    CorrelationAccumulator ref(128, torch::kCPU);
    ref.add(captured[l]);
    EXPECT_LT((cal.correlation[l] - ref.correlation()).abs().max().item<double>(), 1e-10) << "layer " << l;
  }
  // The observers are cleared: the fused path is allowed again.
  for (const auto& b : model->backbone->blocks) EXPECT_FALSE(b->mixer->u_observer);
  EXPECT_NE(test::error_of([&] { calibrate(*model, torch::full({1, 4}, 512, torch::kLong)); }).find("[0, 512)"),
            std::string::npos);
}

TEST(CspCalibration, OpenGatesSeeTheWeightsCorrelationsAndAreRestored) {
  // Gate logits in [−6, 6]: some gates closed, whose channels are constant (r = 0 with all others)
  // as trained; held open, every channel varies, and the result equals calibrating a copy whose
  // gates were opened by hand (same computation, so exactly equal). The logits come back unchanged.
  MambaLM m = random_model(tiny_config("hard_concrete"), 8);
  const at::Tensor ids = tokens(4, 16, 512, 9);
  const at::Tensor alpha = m->backbone->gates()[0]->log_alpha.detach().clone();
  ASSERT_GT((alpha < -2.0).sum().item<int64_t>(), 0) << "the test needs closed gates";
  CalibrationOptions open;
  open.open_gates = true;
  const Calibration as_trained = calibrate(*m, ids), opened = calibrate(*m, ids, open);
  EXPECT_TRUE(torch::equal(m->backbone->gates()[0]->log_alpha, alpha));
  auto constant_channels = [](const at::Tensor& c) { return (c.abs().sum(1) == 1.0).sum().item<int64_t>(); };
  EXPECT_GT(constant_channels(as_trained.correlation[0]), 0);
  EXPECT_EQ(constant_channels(opened.correlation[0]), 0);
  {
    torch::NoGradGuard no_grad;
    for (const auto& g : m->backbone->gates()) g->log_alpha.fill_(30.0);
  }
  const Calibration by_hand = calibrate(*m, ids);
  for (size_t l = 0; l < 3; ++l) EXPECT_TRUE(torch::equal(opened.correlation[l], by_hand.correlation[l])) << l;
}

// Calibrates and permutes `model` in place; returns the permutation.
Permutation run_csp(MambaLMImpl& model, uint64_t seed) {
  const Calibration cal = calibrate(model, tokens(6, 16, model.config().vocab_size, seed));
  OrderingOptions o;
  o.search.time_limit_s = 10;
  o.threads = 2;
  Permutation p = find_permutation(model.config(), cal, o);
  apply_permutation(model, p);
  return p;
}

// The greedy continuation of `prompt` (float64 model, CPU).
at::Tensor greedy_tokens(MambaLMImpl& model, const at::Tensor& prompt) {
  GenerationOptions g;
  g.greedy = true;
  g.max_new_tokens = 12;
  g.stop_at_eos = false;
  return generate(model, prompt, g);
}

// fp32 logits before vs after CSP: reordering sums over E = 128 channels in x_proj and out_proj
// changes each float32 dot product by ≲ √E·2⁻²⁴ ≈ 7e-7 relative; through 3 layers (+ norms and the
// scan) that grows to ~1e-6, so 1e-5 (METHOD's bound) holds with margin, while a channel moved in
// one tensor but not another changes the logits at O(1) (tests/model/test_seams.cpp shows it).
void expect_same_function(MambaLM model, const std::string& what) {
  const at::Tensor ids = tokens(2, 14, model->config().vocab_size, 77);
  const at::Tensor before = sdm::test_util::logits(*model, ids);
  MambaLM f64 = random_model(model->config(), 0);  // same architecture, overwritten below
  f64->to(at::kDouble);
  {
    torch::NoGradGuard no_grad;
    auto src = model->named_parameters();
    for (auto& p : f64->named_parameters()) p.value().copy_(src[p.key()]);
  }
  const at::Tensor prompt = ids.slice(1, 0, 6);
  const at::Tensor greedy_before = greedy_tokens(*f64, prompt);

  const Permutation p = run_csp(*model, 11);
  int64_t moved = 0;
  for (const auto& lp : p.layers)
    for (int64_t c = 0; c < lp.width; ++c) moved += lp.order[size_t(c)] != c;
  EXPECT_GT(moved, 0) << what << ": the permutation is the identity";
  EXPECT_LT(test::rel_err(sdm::test_util::logits(*model, ids), before), 1e-5) << what;

  // Float64: the same greedy tokens (logit changes ~1e-14 cannot flip an argmax unless two logits
  // tie to that precision, which random weights make vanishingly unlikely).
  apply_permutation(*f64, p);
  EXPECT_TRUE(torch::equal(greedy_tokens(*f64, prompt), greedy_before)) << what;
}

TEST(CspApply, PermutedModelsComputeTheSameFunction) {
  expect_same_function(random_model(tiny_config(""), 21), "dense");
  expect_same_function(random_model(tiny_config("hard_concrete"), 22), "gated");
  expect_same_function(random_model(tiny_config("hard_concrete", 4), 23), "gated, gate blocks of 4");
  // Pruned: per-layer widths from a top-k plan of a gated model.
  MambaLM gated = random_model(tiny_config("hard_concrete"), 24);
  MambaLM pruned = sdm::apply_plan(*gated, sdm::plan_topk(*gated, 0.4));
  ASSERT_NE(pruned->config().inner_width(0), pruned->config().inner_width(1));
  expect_same_function(pruned, "pruned");
}

TEST(CspApply, ObjectivesAreOrderedAndReported) {
  MambaLM model = random_model(tiny_config(""), 31);
  const Permutation p = run_csp(*model, 12);
  for (const auto& lp : p.layers) {
    EXPECT_GE(lp.objective.final, lp.objective.greedy);
    EXPECT_GT(lp.objective.final, lp.objective.identity);
    EXPECT_GT(lp.objective.final, lp.objective.random);
    EXPECT_TRUE(lp.converged);
  }
  EXPECT_EQ(p.calibration["tokens"], 96);
}

TEST(CspApply, PerChannelGatesPruneTheSameChannelsAfterPermutation) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 41);
  const sdm::KeepPlan before = sdm::plan_topk(*model, 0.5);
  const Permutation p = run_csp(*model, 13);
  const sdm::KeepPlan after = sdm::plan_topk(*model, 0.5);
  for (size_t l = 0; l < p.layers.size(); ++l) {
    // Channel c after CSP is channel order[c] before: the kept sets correspond through the order.
    std::set<int64_t> mapped;
    for (int64_t c : after.kept[l]) mapped.insert(p.layers[l].order[size_t(c)]);
    EXPECT_EQ(mapped, std::set<int64_t>(before.kept[l].begin(), before.kept[l].end())) << "layer " << l;
  }
}

TEST(CspFile, RoundTripsAndRefusesAMismatchedModel) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config("hard_concrete", 4), 51);
  const Permutation p = run_csp(*model, 14);
  write_permutation(tmp.file("p.json"), p);
  const Permutation back = read_permutation(tmp.file("p.json"));
  ASSERT_EQ(back.layers.size(), p.layers.size());
  for (size_t l = 0; l < p.layers.size(); ++l) {
    EXPECT_EQ(back.layers[l].order, p.layers[l].order);
    EXPECT_EQ(back.layers[l].objective.final, p.layers[l].objective.final);
    EXPECT_EQ(back.layers[l].unit, 4);
  }
  const std::string f = tmp.file("p.json");
  // Another layer count, another width, units that split a gate block, not a permutation.
  MambaLM two_layers = random_model(tiny_config("hard_concrete", 4, 2), 1);
  EXPECT_NE(test::error_of([&] { apply_permutation(*two_layers, back, f); }).find("has 3 layers, the model has 2"),
            std::string::npos);
  MambaLM pruned = sdm::apply_plan(*model, sdm::plan_topk(*model, 0.5));
  EXPECT_NE(test::error_of([&] { apply_permutation(*pruned, back, f); }).find("is for width 128"), std::string::npos);
  Permutation split = back;
  split.layers[0].unit = 1;
  std::swap(split.layers[0].order[0], split.layers[0].order[1]);
  EXPECT_NE(test::error_of([&] { apply_permutation(*model, split, f); }).find("blocks of 4"), std::string::npos);
  Permutation dup = back;
  dup.layers[1].order[0] = dup.layers[1].order[4];
  EXPECT_NE(test::error_of([&] { apply_permutation(*model, dup, f); }).find("not a permutation"), std::string::npos);
  {
    std::ofstream(tmp.file("bad.json")) << "{\"format\": \"something else\"}";
    std::ofstream(tmp.file("trunc.json")) << "{\"format\": \"mamba-codesign/csp-perm";
  }
  EXPECT_NE(test::error_of([&] { read_permutation(tmp.file("bad.json")); }).find("not a CSP permutation file"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { read_permutation(tmp.file("trunc.json")); }).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { read_permutation(tmp.file("missing.json")); }).find("cannot open"),
            std::string::npos);
}

}  // namespace
}  // namespace mcd::csp
