// Causal depthwise conv1d: CPU plain loops vs the LibTorch composite (forward and gradients),
// finite differences in float64, step mode and final state, for K = 1..4 and odd sizes.
#include <gtest/gtest.h>

#include "ops/backend.h"
#include "ops/options.h"
#include "ops/causal_conv1d.h"
#include "ops/cpu/causal_conv_cpu.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

struct ConvCase {
  int64_t b, e, l, k;
  bool bias, silu;
};

// The case in test names (gtest would otherwise print the struct's bytes, padding included, so the
// names ctest discovers would change from build to build).
void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << "B" << c.b << "_E" << c.e << "_L" << c.l << "_K" << c.k << (c.bias ? "_bias" : "") << (c.silu ? "_silu" : "");
}

// The current ops options with another backend (for ScopedOpsOptions).
ops::OpsOptions conv_with_backend(ops::Backend b) {
  ops::OpsOptions o = ops::ops_options();
  o.backend = b;
  return o;
}

class ConvCases : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvCases, CpuReferenceMatchesComposite) {
  const ConvCase c = GetParam();
  torch::manual_seed(11);
  const auto o = torch::TensorOptions().dtype(at::kDouble).requires_grad(true);
  at::Tensor x1 = torch::randn({c.b, c.e, c.l}, o), w1 = torch::randn({c.e, c.k}, o);
  at::Tensor b1 = c.bias ? torch::randn({c.e}, o) : at::Tensor();
  at::Tensor x2 = x1.detach().clone().requires_grad_(true), w2 = w1.detach().clone().requires_grad_(true);
  at::Tensor b2 = c.bias ? b1.detach().clone().requires_grad_(true) : at::Tensor();
  at::Tensor y1, y2;
  {
    const ops::ScopedOpsOptions scope(conv_with_backend(ops::Backend::kReference));
    y1 = ops::causal_conv1d(x1, w1, b1, c.silu);
  }
  {
    const ops::ScopedOpsOptions scope(conv_with_backend(ops::Backend::kComposite));
    y2 = ops::causal_conv1d(x2, w2, b2, c.silu);
  }
  EXPECT_LT(test::rel_err(y1, y2), 1e-13);
  const at::Tensor g = torch::randn(y1.sizes(), torch::kDouble);
  (y1 * g).sum().backward();
  (y2 * g).sum().backward();
  EXPECT_LT(test::rel_err(x1.grad(), x2.grad()), 1e-12);
  EXPECT_LT(test::rel_err(w1.grad(), w2.grad()), 1e-12);
  if (c.bias) EXPECT_LT(test::rel_err(b1.grad(), b2.grad()), 1e-12);
}

TEST_P(ConvCases, BackwardMatchesFiniteDifferences) {
  const ConvCase c = GetParam();
  torch::manual_seed(12);
  at::Tensor x = torch::randn({c.b, c.e, c.l}, torch::kDouble), w = torch::randn({c.e, c.k}, torch::kDouble);
  at::Tensor b = c.bias ? torch::randn({c.e}, torch::kDouble) : at::Tensor();
  const at::Tensor g = torch::randn({c.b, c.e, c.l}, torch::kDouble);
  auto loss = [&] { return (ops::cpu::causal_conv1d_forward(x, w, b, c.silu) * g).sum().item<double>(); };
  const auto grads = ops::cpu::causal_conv1d_backward(g, x, w, b, c.silu);
  std::vector<std::pair<at::Tensor*, at::Tensor>> pairs{{&x, grads.dx}, {&w, grads.dweight}};
  if (c.bias) pairs.emplace_back(&b, grads.dbias);
  for (auto& [input, analytic] : pairs) {
    at::Tensor flat = input->view({-1});
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 9)) {
      const double saved = flat[i].item<double>(), eps = 1e-6;
      flat[i] = saved + eps;
      const double up = loss();
      flat[i] = saved - eps;
      const double down = loss();
      flat[i] = saved;
      EXPECT_NEAR(analytic.reshape({-1})[i].item<double>(), (up - down) / (2 * eps), 1e-6);
    }
  }
}

TEST_P(ConvCases, StepModeAndFinalStateMatchFullConv) {
  const ConvCase c = GetParam();
  torch::manual_seed(13);
  const at::Tensor x = torch::randn({c.b, c.e, c.l}, torch::kDouble), w = torch::randn({c.e, c.k}, torch::kDouble);
  const at::Tensor b = c.bias ? torch::randn({c.e}, torch::kDouble) : at::Tensor();
  const at::Tensor full = ops::causal_conv1d(x, w, b, c.silu);
  at::Tensor state = torch::zeros({c.b, c.e, c.k - 1}, torch::kDouble);
  std::vector<at::Tensor> steps;
  for (int64_t t = 0; t < c.l; ++t) steps.push_back(ops::causal_conv1d_step(state, x.select(2, t), w, b, c.silu));
  if (c.l > 0) EXPECT_LT(test::rel_err(torch::stack(steps, -1), full), 1e-13);
  EXPECT_LT(test::rel_err(state, ops::causal_conv1d_final_state(x, c.k)), 1e-15);
  // The prefill's form: the same output, and the final state written into a given (strided) buffer.
  at::Tensor holder = torch::full({c.b, c.e, c.k + 1}, 7.0, torch::kDouble);
  at::Tensor into = holder.narrow(2, 1, c.k - 1);
  const at::Tensor out = ops::causal_conv1d_with_final_state(x, w, b, c.silu, into);
  EXPECT_TRUE(torch::equal(out, full));
  EXPECT_TRUE(torch::equal(into, ops::causal_conv1d_final_state(x, c.k)));
  EXPECT_EQ(holder.select(2, 0).eq(7.0).all().item<bool>(), true);  // nothing written outside the view
  at::Tensor wrong = torch::zeros({c.b, c.e, c.k}, torch::kDouble);
  EXPECT_THROW(ops::causal_conv1d_with_final_state(x, w, b, c.silu, wrong), std::exception);
}

INSTANTIATE_TEST_SUITE_P(OddSizes, ConvCases,
                         ::testing::Values(ConvCase{1, 1, 1, 4, true, true}, ConvCase{2, 5, 7, 4, true, true},
                                           ConvCase{2, 3, 2, 4, false, true}, ConvCase{3, 6, 13, 2, true, false},
                                           ConvCase{1, 4, 9, 3, false, false}, ConvCase{2, 3, 5, 1, true, true}));

TEST(CausalConv1d, WrongWeightShapeIsAClearError) {
  const at::Tensor x = torch::randn({2, 5, 7});
  try {
    ops::causal_conv1d(x, torch::randn({4, 4}), at::Tensor(), true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight must be (E, K)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mcd
