// The SDM channel gate's mask op (ops/channel_gate.h) on the CPU: its counter-based noise (util/
// counter_noise.h), the formula of METHOD.md §2 in float64 (each form, blocks of 1 and 3, an odd gate
// count), its gradient against central finite differences, the clamp's zero gradient where the
// hard-concrete gate is saturated, and bad inputs refused. The CUDA kernel against this float64
// path: tests/gpu (GpuChannelGate).
#include <gtest/gtest.h>

#include <cmath>

#include "ops/channel_gate.h"
#include "util/counter_noise.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(ChannelGateOp, CounterNoiseIsUniformReproducibleAndKeyed) {
  const int64_t n = 200000;
  const uint64_t key = noise_key(3, 17, 5);
  EXPECT_EQ(key, noise_key(3, 17, 5));
  EXPECT_NE(key, noise_key(3, 17, 6));
  EXPECT_NE(key, noise_key(3, 18, 5));
  EXPECT_NE(key, noise_key(4, 17, 5));
  double sum = 0, sum_sq = 0, below_tenth = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float u = noise_uniform(key, j);
    ASSERT_TRUE(u > 0.f && u < 1.f) << j;
    sum += u;
    sum_sq += double(u) * u;
    below_tenth += u < 0.1f;
  }
  // Fixed stream, so fixed numbers; the bounds are still 4σ of a uniform sample of n = 200,000:
  // mean σ = √(1/12/n) ≈ 6.5e-4, second moment σ = √(4/45/n) ≈ 6.7e-4, frequency σ = √(0.09/n)
  // ≈ 6.7e-4. A stream of wrong scale or a stuck bit moves them by 1e-2 or more.
  EXPECT_NEAR(sum / n, 0.5, 2.6e-3);
  EXPECT_NEAR(sum_sq / n, 1.0 / 3.0, 2.7e-3);
  EXPECT_NEAR(below_tenth / n, 0.1, 2.7e-3);
  // The op's noise tensor is the stream's logistic transform, zeros without a key.
  const at::Tensor noise = ops::channel_gate_noise(key, 9);
  for (int64_t j = 0; j < 9; ++j) {
    const double u = noise_uniform(key, j);
    EXPECT_NEAR(noise[j].item<float>(), std::log(u / (1 - u)), 1e-5);  // float logs of |n| ≤ 17
  }
  EXPECT_TRUE(ops::channel_gate_noise(std::nullopt, 4).equal(torch::zeros({4})));
}

TEST(ChannelGateOp, Float64MaskAndGradientMatchTheFormula) {
  const auto f64 = torch::TensorOptions().dtype(at::kDouble);
  for (const ops::GateType type : {ops::GateType::kHardConcrete, ops::GateType::kGumbelSigmoid}) {
    for (const int64_t block : {int64_t(1), int64_t(3)}) {
      torch::manual_seed(11 + block);
      const int64_t gates = 7;
      at::Tensor a = (torch::randn({gates}, f64) * 2.0).requires_grad_(true);
      const uint64_t key = noise_key(1, block, 2);
      const at::Tensor n = ops::channel_gate_noise(key, gates).to(at::kDouble);
      const double tau = 0.7;
      const at::Tensor z = ops::channel_gate(a, key, type, tau, block);
      ASSERT_EQ(z.sizes(), (std::vector<int64_t>{gates * block}));
      // The formula written out per channel.
      for (int64_t e = 0; e < gates * block; ++e) {
        const int64_t j = e / block;
        const double x = a[j].item<double>() + n[j].item<double>();
        const double want = type == ops::GateType::kGumbelSigmoid
                                ? sigmoid(x / tau)
                                : std::min(1.0, std::max(0.0, sigmoid(x / ops::kBeta) * (ops::kZeta - ops::kGamma) +
                                                                  ops::kGamma));
        EXPECT_NEAR(z[e].item<double>(), want, 1e-15) << "channel " << e;  // float64 rounding only
      }
      // Gradient of Σ w·z against central differences (step 1e-6: truncation O(h²) ≈ 1e-12,
      // rounding O(ε/h) ≈ 1e-10, so 1e-7 is far above both and far below a wrong factor).
      const at::Tensor w = torch::randn({gates * block}, f64);
      (z * w).sum().backward();
      const double h = 1e-6;
      for (int64_t j = 0; j < gates; ++j) {
        torch::NoGradGuard no_grad;
        at::Tensor plus = a.detach().clone(), minus = a.detach().clone();
        plus[j] += h;
        minus[j] -= h;
        const double fd = ((ops::channel_gate(plus, key, type, tau, block) * w).sum().item<double>() -
                           (ops::channel_gate(minus, key, type, tau, block) * w).sum().item<double>()) /
                          (2 * h);
        EXPECT_NEAR(a.grad()[j].item<double>(), fd, 1e-7) << (type == ops::GateType::kHardConcrete ? "hard_concrete" : "gumbel") << " gate " << j;
      }
    }
  }
}

TEST(ChannelGateOp, SaturatedHardConcreteGatesPassNoGradient) {
  // α = ∓10 with zero noise: σ(∓15) puts z_raw below 0 or above 1, so the clamp holds z at 0 or 1;
  // α = 0 leaves it at 0.5. Blocks of 2 channels.
  at::Tensor a = torch::tensor({-10.0, 10.0, 0.0}, torch::kDouble).requires_grad_(true);
  const at::Tensor z = ops::channel_gate(a, std::nullopt, ops::GateType::kHardConcrete, 1.0, 2);
  EXPECT_TRUE(z.slice(0, 0, 2).equal(torch::zeros({2}, torch::kDouble)));
  EXPECT_TRUE(z.slice(0, 2, 4).equal(torch::ones({2}, torch::kDouble)));
  EXPECT_LT((z.slice(0, 4, 6) - 0.5).abs().max().item<double>(), 1e-15);  // σ(0)·1.2 − 0.1, float64 rounding
  z.sum().backward();
  EXPECT_EQ(a.grad()[0].item<double>(), 0.0);
  EXPECT_EQ(a.grad()[1].item<double>(), 0.0);
  // Open and unsaturated: 2 channels · (ζ − γ)·σ'(0)/β = 2 · 1.2 · 0.25 · 1.5.
  EXPECT_NEAR(a.grad()[2].item<double>(), 2 * 1.2 * 0.25 * 1.5, 1e-12);
}

TEST(ChannelGateOp, BadInputsAreRefused) {
  const at::Tensor a = torch::zeros({4});
  EXPECT_THROW(ops::channel_gate(a, 1, ops::GateType::kHardConcrete, 1.0, 0), Error);     // block 0
  EXPECT_THROW(ops::channel_gate(a, 1, ops::GateType::kGumbelSigmoid, 0.0, 1), Error);    // τ = 0
  EXPECT_THROW(ops::channel_gate(torch::zeros({2, 2}), 1, ops::GateType::kHardConcrete, 1.0, 1), Error);
  EXPECT_THROW(ops::channel_gate(torch::zeros({4}, torch::kLong), 1, ops::GateType::kHardConcrete, 1.0, 1), Error);
}

}  // namespace
}  // namespace mcd
