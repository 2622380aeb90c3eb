// Chunked LM-head cross-entropy against the plain logits → cross_entropy path: value and both
// gradients in float64, chunk sizes that do not divide T, and input checks.
#include <gtest/gtest.h>

#include "ops/chunked_cross_entropy.h"
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

TEST(ChunkedCrossEntropy, Float32AndBadInputs) {
  torch::manual_seed(22);
  const at::Tensor h = torch::randn({40, 8}), w = torch::randn({30, 8});
  const at::Tensor t = torch::randint(0, 30, {40}, torch::kLong);
  const at::Tensor ref = torch::nn::functional::cross_entropy(at::matmul(h.to(at::kDouble), w.to(at::kDouble).t()), t);
  EXPECT_LT(test::rel_err(ops::chunked_cross_entropy(h, w, t, 9).reshape({1}), ref.reshape({1})), 1e-6);
  EXPECT_THROW(ops::chunked_cross_entropy(h, torch::randn({30, 7}), t), Error);
  EXPECT_THROW(ops::chunked_cross_entropy(h, w, t.narrow(0, 0, 39)), Error);
}

}  // namespace
}  // namespace mcd
