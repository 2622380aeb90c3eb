// The token-embedding lookup with its own backward (ops/embedding.h): the forward is LibTorch's
// lookup, the table's gradient is the per-id sum of the output gradient's rows (repeated ids, ids
// that never occur, int32 ids), and bad inputs are refused. The CUDA kernel: tests/gpu (GpuEmbedding).
#include <gtest/gtest.h>

#include "ops/embedding.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

TEST(Embedding, LookupAndPerIdGradientSumsInFloat64) {
  torch::manual_seed(3);
  const int64_t V = 11, D = 5;
  const auto f64 = torch::TensorOptions().dtype(at::kDouble);
  for (at::ScalarType id_type : {at::kLong, at::kInt}) {
    at::Tensor w = torch::randn({V, D}, f64).requires_grad_(true);
    at::Tensor ids = torch::randint(0, V - 3, {3, 7}, torch::kLong);  // ids V-3 … V-2 never occur
    ids[0][0] = 0;
    ids[2][6] = V - 1;
    ids[1][3] = ids[0][1];  // a repeated id (randint repeats others too)
    ids = ids.to(id_type);
    const at::Tensor out = ops::embedding(w, ids);
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 7, D}));
    EXPECT_TRUE(out.equal(at::embedding(w.detach(), ids)));
    const at::Tensor g = torch::randn({3, 7, D}, f64);
    out.backward(g);
    // Reference: the sums written out one position at a time, in increasing position.
    at::Tensor ref = torch::zeros({V, D}, f64);
    const at::Tensor flat_ids = ids.reshape({-1}).to(at::kLong), flat_g = g.reshape({-1, D});
    for (int64_t i = 0; i < flat_ids.size(0); ++i) ref[flat_ids[i].item<int64_t>()] += flat_g[i];
    EXPECT_TRUE(w.grad().equal(ref)) << "ids " << id_type;  // same terms, same order: the same bits
    EXPECT_TRUE(w.grad()[V - 3].equal(torch::zeros({D}, f64)));
  }
}

TEST(Embedding, Float32GradientEqualsLibTorchsEmbeddingBackward) {
  torch::manual_seed(4);
  at::Tensor w1 = torch::randn({50, 16}).requires_grad_(true);
  at::Tensor w2 = w1.detach().clone().requires_grad_(true);
  const at::Tensor ids = torch::randint(0, 50, {4, 33}, torch::kLong);
  const at::Tensor g = torch::randn({4, 33, 16});
  ops::embedding(w1, ids).backward(g);
  at::embedding(w2, ids).backward(g);
  EXPECT_TRUE(w1.grad().equal(w2.grad()));
}

TEST(Embedding, BadShapesAndIdTypesAreRefused) {
  const at::Tensor w = torch::randn({5, 3});
  EXPECT_THROW(ops::embedding(torch::randn({5}), torch::zeros({2}, torch::kLong)), Error);
  EXPECT_THROW(ops::embedding(w, torch::zeros({2})), Error);  // float ids
}

}  // namespace
}  // namespace mcd
