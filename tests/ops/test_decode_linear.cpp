// ops::decode_linear off CUDA: torch's linear itself (bit for bit), gradients kept when wanted, and a
// clear error for mismatched shapes. The CUDA kernel is checked against float64 in
// tests/gpu/test_gpu_kernels.cpp (GpuDecodeLinear).
#include <gtest/gtest.h>

#include "ops/decode_linear.h"
#include "test_support.h"

namespace mcd {
namespace {

TEST(DecodeLinear, OnTheCpuIsTorchsLinear) {
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({3, 10}), w = torch::randn({7, 10}), b = torch::randn({7});
  EXPECT_TRUE(torch::equal(ops::decode_linear(x, w, b), at::linear(x, w, b)));
  EXPECT_TRUE(torch::equal(ops::decode_linear(x, w), at::linear(x, w)));
}

TEST(DecodeLinear, GradientsFlowWhenWanted) {
  torch::manual_seed(4);
  const at::Tensor x = torch::randn({2, 5}, torch::requires_grad()), w = torch::randn({4, 5}, torch::requires_grad());
  ops::decode_linear(x, w).sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_TRUE(torch::allclose(w.grad(), x.detach().sum(0).unsqueeze(0).expand({4, 5})));
}

TEST(DecodeLinear, MismatchedShapesAreRefusedWithBoth) {
  try {
    ops::decode_linear(torch::zeros({2, 5}), torch::zeros({4, 6}));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("decode_linear"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 6]"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace mcd
