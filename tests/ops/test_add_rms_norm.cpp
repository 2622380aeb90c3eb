// ops::add_rms_norm_linear off CUDA: the op exists for training under CUDA autocast only (its point
// is the activation it does not keep there); elsewhere it must say so rather than run something else.
#include <gtest/gtest.h>

#include <string>

#include "ops/add_rms_norm.h"
#include "util/error.h"

namespace mcd {
namespace {

TEST(AddRmsNormLinear, OffCudaAutocastItDoesNotApplyAndSaysWhy) {
  const at::Tensor residual = torch::randn({2, 3, 8}), prev = torch::randn({2, 3, 8});
  const at::Tensor norm_w = torch::ones({8}), proj_w = torch::randn({5, 8});
  EXPECT_FALSE(ops::add_rms_norm_linear_applies(residual, prev, norm_w, proj_w, at::Tensor()));
  try {
    ops::add_rms_norm_linear(residual, prev, norm_w, 1e-5, proj_w, at::Tensor());
    FAIL() << "ran on the CPU";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("needs CUDA autocast"), std::string::npos) << m;
    EXPECT_NE(m.find("[5, 8]"), std::string::npos) << m;  // the weight's shape
  }
}

}  // namespace
}  // namespace mcd
