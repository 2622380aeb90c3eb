// Chunked LM-head cross-entropy against the plain logits → cross_entropy path: value and both
// gradients in float64, chunk sizes that do not divide T, the gradient formed in the forward only
// when one is wanted, the row-wise step (composite and CPU) against autograd, and input checks.
#include <gtest/gtest.h>

#include "ops/chunked_cross_entropy.h"
#include "ops/cpu/cross_entropy_cpu.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

TEST(ChunkedCrossEntropy, MatchesFullLogitsValueAndGradients) {
  torch::manual_seed(21);
  for (int64_t chunk : {1, 7, 64, 1000}) {
    const auto o = torch::TensorOptions().dtype(at::kDouble);
    at::Tensor h1 = torch::randn({53, 12}, o).requires_grad_(true), w1 = torch::randn({37, 12}, o).requires_grad_(true);
    at::Tensor h2 = h1.detach().clone().requires_grad_(true), w2 = w1.detach().clone().requires_grad_(true);
    const at::Tensor t = torch::randint(0, 37, {53}, torch::kLong);
    const at::Tensor got = ops::chunked_cross_entropy(h1, w1, t, chunk);
    const at::Tensor ref = torch::nn::functional::cross_entropy(at::matmul(h2, w2.t()), t);
    EXPECT_LT(test::rel_err(got.reshape({1}), ref.reshape({1})), 1e-14) << chunk;
    (got * 1.7).backward();
    (ref * 1.7).backward();
    EXPECT_LT(test::rel_err(h1.grad(), h2.grad()), 1e-12) << chunk;
    EXPECT_LT(test::rel_err(w1.grad(), w2.grad()), 1e-12) << chunk;
  }
}

// The row-wise step (loss and the in-place gradient) against log-softmax and its autograd
// gradient, float64, with an odd vocabulary and targets at both ends.
// A bf16 hidden state (what the final norm hands the head under CUDA autocast) gets its gradient in
// bf16: the fp32 gradient of the same values, scaled and rounded once.
TEST(ChunkedCrossEntropy, LowPrecisionHiddenGetsTheFloat32GradientRoundedOnce) {
  torch::manual_seed(5);
  const at::Tensor h_bf16 = torch::randn({9, 8}).to(at::kBFloat16).requires_grad_(true);
  const at::Tensor h_f32 = h_bf16.detach().to(at::kFloat).requires_grad_(true);
  const at::Tensor w = torch::randn({13, 8});
  const at::Tensor t = torch::randint(0, 13, {9}, torch::kLong);
  (ops::chunked_cross_entropy(h_bf16, w, t, 4) * 3.0).backward();
  (ops::chunked_cross_entropy(h_f32, w, t, 4) * 3.0).backward();
  EXPECT_EQ(h_bf16.grad().scalar_type(), at::kBFloat16);
  EXPECT_TRUE(h_bf16.grad().equal(h_f32.grad().to(at::kBFloat16)));
}

TEST(ChunkedCrossEntropy, RowStepMatchesLogSoftmaxAndItsGradient) {
  torch::manual_seed(23);
  const auto o = torch::TensorOptions().dtype(at::kDouble);
  const at::Tensor x = torch::randn({6, 37}, o) * 3;
  const at::Tensor t = torch::tensor({0, 36, 5, 5, 17, 36}, torch::kLong);
  const at::Tensor xr = x.clone().requires_grad_(true);
  const at::Tensor ref = -torch::log_softmax(xr, 1).gather(1, t.unsqueeze(1)).squeeze(1);
  (ref.sum() * 0.25).backward();
  at::Tensor g = x.clone();
  const at::Tensor loss = ops::cross_entropy_rows_composite(g, t, 0.25, /*write_grad=*/true);
  EXPECT_LT(test::rel_err(loss, ref.detach()), 1e-14);
  EXPECT_LT(test::rel_err(g, xr.grad()), 1e-14);
  at::Tensor untouched = x.clone();
  EXPECT_LT(test::rel_err(ops::cross_entropy_rows(untouched, t, 1.0, false), ref.detach()), 1e-14);
  EXPECT_TRUE(untouched.equal(x));  // loss only: the logits stay
}

// Without GradMode (evaluation) the forward forms no gradient; the value is the same.
TEST(ChunkedCrossEntropy, NoGradForwardGivesTheSameLossAndNoGraph) {
  torch::manual_seed(24);
  const at::Tensor h = torch::randn({20, 8}).requires_grad_(true), w = torch::randn({11, 8});
  const at::Tensor t = torch::randint(0, 11, {20}, torch::kLong);
  const at::Tensor with_grad = ops::chunked_cross_entropy(h, w, t, 6);
  at::Tensor no_grad;
  {
    torch::NoGradGuard guard;
    no_grad = ops::chunked_cross_entropy(h, w, t, 6);
  }
  EXPECT_FALSE(no_grad.requires_grad());
  EXPECT_LT(test::rel_err(no_grad.reshape({1}), with_grad.detach().reshape({1})), 1e-7);
}

TEST(ChunkedCrossEntropy, Float32AndBadInputs) {
  torch::manual_seed(22);
  const at::Tensor h = torch::randn({40, 8}), w = torch::randn({30, 8});
  const at::Tensor t = torch::randint(0, 30, {40}, torch::kLong);
  const at::Tensor ref = torch::nn::functional::cross_entropy(at::matmul(h.to(at::kDouble), w.to(at::kDouble).t()), t);
  EXPECT_LT(test::rel_err(ops::chunked_cross_entropy(h, w, t, 9).reshape({1}), ref.reshape({1})), 1e-6);
  EXPECT_THROW(ops::chunked_cross_entropy(h, torch::randn({30, 7}), t), Error);
  EXPECT_THROW(ops::chunked_cross_entropy(h, w, t.narrow(0, 0, 39)), Error);
  EXPECT_THROW(ops::chunked_cross_entropy(h, w, t, -1), Error);
  at::Tensor x = torch::randn({4, 5});
  EXPECT_THROW(ops::cross_entropy_rows(x, torch::zeros({3}, torch::kLong), 1.0, false), Error);
}

// The CPU row step (blocks of 4 rows, in place) against log-softmax and its autograd gradient:
// 9 rows (a partial last block), an odd vocabulary, targets at both ends. float64 within a few
// units of rounding (1e-14); float32 against the float64 reference within 2e-6 relative: each
// gradient element is exp (≤ 1 ulp), a product and a sum of 1,037 terms (vectorised pairs of
// partial sums: ≲ (log2 1,037 + 3) · 6e-8 ≈ 8e-7 relative), the loss log(Σ) − (x_t − m) with
// |x| ≲ 20 (≲ 20 · 6e-8 absolute against losses of a few units).
TEST(CrossEntropyRowsCpu, MatchesLogSoftmaxInFloat64AndFloat32) {
  torch::manual_seed(25);
  const int64_t rows = 9, vocab = 1037;
  const at::Tensor x = torch::randn({rows, vocab}, torch::kDouble) * 4;
  const at::Tensor t = torch::tensor({0, 1036, 5, 5, 17, 1036, 400, 0, 999}, torch::kLong);
  const at::Tensor xr = x.clone().requires_grad_(true);
  const at::Tensor ref = -torch::log_softmax(xr, 1).gather(1, t.unsqueeze(1)).squeeze(1);
  (ref.sum() * 0.25).backward();
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    const double tol = dtype == at::kDouble ? 1e-14 : 2e-6;
    at::Tensor g = x.to(dtype).clone();  // .to(kDouble) alone would alias x
    ASSERT_TRUE(ops::cpu::cross_entropy_rows_supported(g));
    const at::Tensor loss = ops::cpu::cross_entropy_rows(g, t, 0.25, /*write_grad=*/true);
    EXPECT_EQ(loss.scalar_type(), dtype);
    EXPECT_LT(test::rel_err(loss, ref.detach()), tol) << dtype;
    EXPECT_LT(test::rel_err(g, xr.grad()), tol) << dtype;
    // Loss only: the logits stay, and the loss has the same bits as the gradient pass's.
    const at::Tensor x_dtype = x.to(dtype);
    at::Tensor untouched = x_dtype.clone();
    EXPECT_TRUE(ops::cpu::cross_entropy_rows(untouched, t, 0.25, false).equal(loss)) << dtype;
    EXPECT_TRUE(untouched.equal(x_dtype)) << dtype;
  }
}

// What the CPU step refuses, and that a refused call writes nothing.
TEST(CrossEntropyRowsCpu, BadTargetsAndLayoutsAreRefused) {
  const at::Tensor x = torch::randn({5, 7});
  at::Tensor y = x.clone();
  EXPECT_THROW(ops::cpu::cross_entropy_rows(y, torch::tensor({0, 1, 7, 2, 3}, torch::kLong), 1.0, true), Error);
  EXPECT_THROW(ops::cpu::cross_entropy_rows(y, torch::tensor({0, 1, -1, 2, 3}, torch::kLong), 1.0, true), Error);
  EXPECT_TRUE(y.equal(x));
  EXPECT_THROW(ops::cpu::cross_entropy_rows(y, torch::zeros({4}, torch::kLong), 1.0, false), Error);
  EXPECT_THROW(ops::cpu::cross_entropy_rows(y, torch::zeros({5}, torch::kInt), 1.0, false), Error);
  EXPECT_FALSE(ops::cpu::cross_entropy_rows_supported(x.t()));            // column stride ≠ 1
  EXPECT_FALSE(ops::cpu::cross_entropy_rows_supported(x.to(at::kHalf)));  // the composite's case
  EXPECT_EQ(ops::cpu::cross_entropy_rows(y.narrow(0, 0, 0), torch::zeros({0}, torch::kLong), 1.0, true).numel(), 0);
}

}  // namespace
}  // namespace mcd
