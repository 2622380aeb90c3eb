// SDM gates and sparsity control: hard-concrete sampling statistics against the closed-form
// P(z > 0) (the expected-L0 term), deterministic eval gates, counter-based noise, the Lagrangian
// controller's λ updates (expected and deterministic λ1 signal) and target ramp, the penalty
// control, the Gumbel temperature schedule, and the gated mixer (a closed gate zeroes its channel).
#include <gtest/gtest.h>

#include <cmath>

#include "model/mamba.h"
#include "model/channel_gate.h"
#include "sdm/sparsity_control.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd::sdm {
namespace {

TEST(ChannelGate, HardConcreteSamplingMatchesExpectedL0) {
  ChannelGate g(5, 1, GateType::kHardConcrete, 0.0);
  {
    torch::NoGradGuard no_grad;
    g->log_alpha.copy_(torch::tensor({-3.0f, -1.0f, 0.0f, 1.0f, 3.0f}));
  }
  g->train();
  const int n = 4000;
  at::Tensor open = torch::zeros({5}), one = torch::zeros({5}), mean = torch::zeros({5});
  for (int step = 0; step < n; ++step) {
    g->resample(7, step, 0);
    const at::Tensor z = g->forward().detach();
    EXPECT_TRUE((z >= 0).all().item<bool>() && (z <= 1).all().item<bool>());
    open += (z > 0).to(at::kFloat);
    one += (z == 1).to(at::kFloat);
    mean += z;
  }
  // The noise is counter-based (seed 7, steps 0..3999), so these frequencies are fixed numbers,
  // not a flaky sample. The tolerance 0.03 is still the sampling bound it should be: a binomial
  // frequency over n = 4000 draws has σ ≤ √(0.25/4000) ≈ 0.0079, so 0.03 ≈ 3.8σ; a wrong closed
  // form moves P(z > 0) further at α = 0 (0.83 → 0.92 with β = 1, → 1 without the stretch).
  const at::Tensor p_open = g->prob_open().detach();
  // Closed form: P(z > 0) = σ(α − β·log(−γ/ζ)).
  for (int i = 0; i < 5; ++i) {
    const double alpha = g->log_alpha[i].item<double>();
    EXPECT_NEAR(p_open[i].item<double>(), 1.0 / (1.0 + std::exp(-(alpha - kBeta * std::log(-kGamma / kZeta)))), 1e-6);
    EXPECT_NEAR(open[i].item<double>() / n, p_open[i].item<double>(), 0.03) << "gate " << i;
    // P(z = 1) = σ(β·log((1−γ)/(ζ−1)) ... ) = 1 − σ(β·log((1−γ)/(ζ−1)) − α) .
    const double p_one = 1.0 - 1.0 / (1.0 + std::exp(-(kBeta * std::log((1 - kGamma) / (kZeta - 1)) - alpha)));
    EXPECT_NEAR(one[i].item<double>() / n, p_one, 0.03) << "gate " << i;
  }
  // Noise is counter-based: the same (seed, step, layer) gives the same gate.
  g->resample(7, 11, 0);
  const at::Tensor a = g->forward().detach();
  g->resample(8, 11, 0);
  const at::Tensor b = g->forward().detach();
  g->resample(7, 11, 0);
  EXPECT_TRUE(torch::equal(a, g->forward().detach()));
  EXPECT_FALSE(torch::equal(a, b));
  // Eval: deterministic, z at U = 0.5; closed where α < −β·logit(−γ/(ζ−γ)).
  g->eval();
  const at::Tensor det = g->forward();
  EXPECT_EQ(det[0].item<float>(), 0.0f);
  EXPECT_GT(det[2].item<float>(), 0.0f);
  EXPECT_EQ(det[4].item<float>(), 1.0f);
}

TEST(ChannelGate, BlocksAndGumbel) {
  ChannelGate g(12, 4, GateType::kGumbelSigmoid, 0.0);
  {
    torch::NoGradGuard no_grad;
    g->log_alpha.copy_(torch::tensor({-2.0f, 0.5f, 3.0f}));
  }
  g->eval();
  const at::Tensor m = g->forward();
  ASSERT_EQ(m.size(0), 12);
  EXPECT_TRUE(torch::equal(m, torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f})));
  g->train();
  g->set_temperature(0.05);
  g->resample(1, 0, 0);
  const at::Tensor s = g->forward();
  EXPECT_TRUE(((s < 0.01) | (s > 0.99)).all().item<bool>()) << "a low temperature gives nearly binary gates";
  EXPECT_THROW(ChannelGate(10, 4, GateType::kHardConcrete, 0.0), Error);
}

// resample_gates (all layers at once, what the trainer calls) draws for layer l exactly the noise
// resample(seed, step, l) draws: the masks agree bit for bit, per layer, for both gate forms and
// blocked gates; and the layers' noise differs.
TEST(ChannelGate, ResamplingAllLayersAtOnceEqualsEachLayersOwnDraw) {
  for (const GateType type : {GateType::kHardConcrete, GateType::kGumbelSigmoid}) {
    std::vector<ChannelGate> together, alone;
    for (int l = 0; l < 3; ++l) {
      const int64_t block = l == 1 ? 2 : 1;
      together.push_back(ChannelGate(10, block, type, 0.5));
      alone.push_back(ChannelGate(10, block, type, 0.5));
      together.back()->train();
      alone.back()->train();
    }
    resample_gates(together, 9, 4);
    for (int l = 0; l < 3; ++l) {
      alone[l]->resample(9, 4, l);
      EXPECT_TRUE(torch::equal(together[l]->forward(), alone[l]->forward())) << gate_type_name(type) << " layer " << l;
    }
    // Layers draw different noise (a shared generator or layer index would repeat it).
    EXPECT_FALSE(torch::equal(together[0]->forward(), together[2]->forward()));
  }
}

TEST(SparsityController, LagrangianRampAndAscent) {
  std::vector<ChannelGate> gates{ChannelGate(8, 1, GateType::kHardConcrete, 3.0),
                                 ChannelGate(4, 2, GateType::kHardConcrete, 3.0)};
  SparsitySettings s;
  s.target = 0.5;
  s.warmup_fraction = 0.5;
  SparsityController c(gates, s, 100);
  EXPECT_DOUBLE_EQ(c.target_at(0), 0.0);
  EXPECT_DOUBLE_EQ(c.target_at(25), 0.25);
  EXPECT_DOUBLE_EQ(c.target_at(50), 0.5);
  EXPECT_DOUBLE_EQ(c.target_at(90), 0.5);
  // Normalised expected L0 over 12 channels (gate 2 counts each block twice).
  const double p = 1.0 / (1.0 + std::exp(-(3.0 - kBeta * std::log(-kGamma / kZeta))));
  EXPECT_NEAR(c.expected_sparsity().item<double>(), 1.0 - p, 1e-6);
  // Far below target: λ1 goes negative, and the regulariser's gradient opens... closes gates.
  c.begin_step(0, 60);
  c.regularizer(60);
  c.end_step(60);
  const auto st = c.state();
  // One ascent step from (λ1, λ2) = (0, 20) with the expected signal: λ1 += lr·(ŝ − t),
  // λ2 += lr·(ŝ − t)². ŝ and t are recomputed here by the same float ops, so the doubles match.
  const double gap = c.expected_sparsity().item<double>() - c.target_at(60);
  EXPECT_LT(gap, -0.4);
  EXPECT_DOUBLE_EQ(st["lambda1"].get<double>(), s.lambda_lr * gap);
  EXPECT_DOUBLE_EQ(st["lambda2"].get<double>(), s.lambda2_init + s.lambda_lr * gap * gap);
  const at::Tensor reg = c.regularizer(61);
  reg.backward();
  EXPECT_TRUE((gates[0]->log_alpha.grad() > 0).all().item<bool>()) << "descent lowers α: sparsity rises";
  SparsityController restored(gates, s, 100);
  restored.load_state(st);
  EXPECT_EQ(restored.state(), st);
}

// Two layers whose first quarter of gates is firmly closed (α = −10: the deterministic gate is 0)
// and the rest open (α = 3): deterministic sparsity 0.25 exactly, ŝ a little above it.
std::vector<ChannelGate> quarter_closed_gates(GateType type = GateType::kHardConcrete) {
  std::vector<ChannelGate> gates{ChannelGate(8, 1, type, 3.0), ChannelGate(8, 2, type, 3.0)};
  torch::NoGradGuard no_grad;
  gates[0]->log_alpha.narrow(0, 0, 2).fill_(-10.0);
  gates[1]->log_alpha.narrow(0, 0, 1).fill_(-10.0);
  return gates;
}

TEST(SparsityController, DeterministicSignalDrivesLambda1) {
  // The trainer's default (train_config.h): λ1 integrates the eval mask's sparsity − t, λ2 still
  // the expected gap squared.
  auto gates = quarter_closed_gates();
  SparsitySettings s;
  s.target = 0.5;
  s.warmup_fraction = 0.5;
  s.lambda_signal = "deterministic";
  SparsityController c(gates, s, 100);
  EXPECT_DOUBLE_EQ(c.deterministic_sparsity(), 0.25);
  const double s_hat = c.expected_sparsity().item<double>();
  ASSERT_GT(s_hat - 0.25, 1e-3) << "the two signals must differ for this test to tell them apart";
  c.begin_step(0, 80);
  c.regularizer(80);
  c.end_step(80);
  EXPECT_DOUBLE_EQ(c.state()["lambda1"].get<double>(), s.lambda_lr * (0.25 - 0.5));
  EXPECT_DOUBLE_EQ(c.state()["lambda2"].get<double>(), s.lambda2_init + s.lambda_lr * (s_hat - 0.5) * (s_hat - 0.5));
  c.end_step(80);  // a second step integrates again
  EXPECT_DOUBLE_EQ(c.state()["lambda1"].get<double>(), 2 * s.lambda_lr * (0.25 - 0.5));
  EXPECT_EQ(c.metrics(80)["deterministic_sparsity"].get<double>(), 0.25);
  s.lambda_signal = "integral";
  EXPECT_THROW(SparsityController(gates, s, 100), Error);
}

TEST(SparsityController, PenaltyIsWeightTimesExpectedOpenFraction) {
  // control = penalty (METHOD.md §2, "a plain penalty weight"): the regulariser is
  // weight·(1 − ŝ), the expected fraction of open channels; no λ, no target.
  auto gates = quarter_closed_gates();
  SparsitySettings s;
  s.control = "penalty";
  s.penalty_weight = 3.0;
  SparsityController c(gates, s, 100);
  const double s_hat = c.expected_sparsity().item<double>();
  c.begin_step(0, 10);
  const at::Tensor reg = c.regularizer(10);
  EXPECT_NEAR(reg.item<double>(), 3.0 * (1.0 - s_hat), 1e-6);  // float32 ŝ: a few ulps of 1
  EXPECT_EQ(c.regularizer(90).item<double>(), reg.item<double>()) << "independent of the step/target";
  reg.backward();
  // ∂/∂α_i of weight·(1 − ŝ) = weight·block_i·σ'(…)/channels > 0: descent closes every gate.
  for (const auto& g : gates) EXPECT_TRUE((g->log_alpha.grad() > 0).all().item<bool>());
  c.end_step(10);
  EXPECT_EQ(c.state()["lambda1"].get<double>(), 0.0);
  EXPECT_EQ(c.state()["lambda2"].get<double>(), s.lambda2_init);
}

TEST(SparsityController, GumbelTemperatureAnnealsExponentially) {
  // 64 gates at α = 0: σ(g/τ) stays far from saturation at these temperatures, so a different τ
  // gives a different gate.
  std::vector<ChannelGate> gates{ChannelGate(64, 1, GateType::kGumbelSigmoid, 0.0)};
  SparsitySettings s;
  s.tau0 = 2.0;
  s.tau1 = 0.5;
  SparsityController c(gates, s, 100);
  // τ0·(τ1/τ0)^(step/100): 2 at the start, the geometric mean 1 halfway, 0.5 at the end.
  EXPECT_DOUBLE_EQ(c.temperature_at(0), 2.0);
  EXPECT_DOUBLE_EQ(c.temperature_at(25), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(c.temperature_at(50), 1.0);
  EXPECT_DOUBLE_EQ(c.temperature_at(100), 0.5);
  EXPECT_DOUBLE_EQ(c.temperature_at(150), 0.5);  // held at τ1 past the end
  for (int64_t step = 1; step <= 100; ++step) EXPECT_LT(c.temperature_at(step), c.temperature_at(step - 1));
  // begin_step gives the gates exactly that temperature: setting it again by hand changes nothing.
  auto& g = gates[0];
  g->train();
  for (int64_t step : {0, 50, 99}) {
    c.begin_step(3, step);
    const at::Tensor z = g->forward().detach();
    g->set_temperature(c.temperature_at(step));
    EXPECT_TRUE(torch::equal(z, g->forward().detach())) << "step " << step;
    g->set_temperature(c.temperature_at(step) * 1.5);
    EXPECT_FALSE(torch::equal(z, g->forward().detach())) << "step " << step;
  }
  s.tau1 = 0;
  EXPECT_THROW(SparsityController(gates, s, 100), Error);
}

TEST(GatedMixer, ClosedGateZeroesItsChannel) {
  ModelConfig c = model_preset("mamba-tiny");
  c.gate_type = "hard_concrete";
  MambaLM m(c);
  init_reference(*m, 1);
  m->eval();
  const at::Tensor ids = torch::randint(0, 512, {2, 7}, torch::kLong);
  torch::NoGradGuard no_grad;
  const at::Tensor before = m->forward(ids);
  // Closing a gate must equal zeroing that channel's out_proj column (its output is exactly 0).
  MambaLM ref(c);
  init_reference(*ref, 1);
  ref->eval();
  m->backbone->blocks[0]->mixer->gate->log_alpha[5] = -20.0f;
  ref->backbone->blocks[0]->mixer->out_proj->weight.select(1, 5).zero_();
  ref->backbone->blocks[0]->mixer->x_proj->weight.select(1, 5).zero_();
  EXPECT_LT(test::rel_err(m->forward(ids), ref->forward(ids)), 1e-6);
  EXPECT_GT(test::rel_err(m->forward(ids), before), 1e-6);
}

}  // namespace
}  // namespace mcd::sdm
