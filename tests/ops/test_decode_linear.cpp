// ops::decode_linear off CUDA: torch's linear itself (bit for bit), gradients kept when wanted, and a
// clear error for mismatched shapes; the conv step folded into it (conv_step_decode_linear) and the
// conv-state shift it defers to the scan step, against the conv step they split. The CUDA kernel is checked against float64 in
// tests/gpu/test_gpu_kernels.cpp (GpuDecodeLinear).
#include <gtest/gtest.h>

#include "ops/causal_conv1d.h"
#include "ops/decode_linear.h"
#include "ops/selective_scan.h"
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

// The conv step split in two (its output, then the shift) is the conv step, bit for bit, for every
// width; the state shift alone moves each column one left and appends x.
TEST(ConvStepSplit, OutputThenShiftIsTheStep) {
  for (int64_t K : {1, 2, 3, 4}) {
    torch::manual_seed(10 + K);
    const at::Tensor x = torch::randn({3, 5}, torch::kDouble), w = torch::randn({5, K}, torch::kDouble);
    const at::Tensor b = torch::randn({5}, torch::kDouble);
    at::Tensor s1 = torch::randn({3, 5, K - 1}, torch::kDouble), s2 = s1.clone();
    const at::Tensor before = s1.clone();
    const at::Tensor step = ops::causal_conv1d_step(s1, x, w, b, true);
    const at::Tensor out = ops::causal_conv1d_step_output(s2, x, w, b, true);
    EXPECT_TRUE(torch::equal(s2, before)) << "K " << K << ": the output alone must not touch the state";
    ops::causal_conv1d_shift(s2, x);
    EXPECT_TRUE(torch::equal(out, step)) << "K " << K;
    EXPECT_TRUE(torch::equal(s2, s1)) << "K " << K;
    if (K >= 2) EXPECT_TRUE(torch::equal(s2.select(2, K - 2), x)) << "K " << K;
    if (K >= 3) EXPECT_TRUE(torch::equal(s2.narrow(2, 0, K - 2), before.narrow(2, 1, K - 2))) << "K " << K;
  }
}

// Off CUDA the folded op is its composite: u the conv step's output with the state untouched, out
// the product of u; the scan step's conv_shift then leaves the state where the conv step would.
TEST(ConvStepDecodeLinear, IsTheConvStepThenTheProductAndTheScanStepShifts) {
  torch::manual_seed(21);
  const int64_t B = 2, E = 6, K = 4, N = 3, R = 2;
  const at::Tensor x = torch::randn({B, E}), cw = torch::randn({E, K}), cb = torch::randn({E});
  const at::Tensor W = torch::randn({R + 2 * N, E});
  at::Tensor state = torch::randn({B, E, K - 1});
  const at::Tensor before = state.clone();
  EXPECT_FALSE(ops::conv_step_decode_linear_is_fused(state, x, cw, cb, W));  // CPU: the composite
  const ops::ConvLinearOut r = ops::conv_step_decode_linear(state, x, cw, cb, true, W);
  EXPECT_TRUE(torch::equal(state, before));
  at::Tensor ref_state = before.clone();
  const at::Tensor u = ops::causal_conv1d_step(ref_state, x, cw, cb, true);
  EXPECT_TRUE(torch::equal(r.u, u));
  EXPECT_TRUE(torch::equal(r.out, at::linear(u, W)));
  // The scan step with the deferred shift against the plain step and the conv step's own update.
  const at::Tensor A = -torch::rand({E, N}) - 0.5, D = torch::randn({E}), z = torch::randn({B, E});
  const at::Tensor dproj = torch::randn({E, R}), dbias = torch::randn({E});
  at::Tensor h1 = torch::randn({B, E, N}), h2 = h1.clone();
  const at::Tensor low = r.out.narrow(1, 0, R), Bm = r.out.narrow(1, R, N), Cm = r.out.narrow(1, R + N, N);
  const at::Tensor y1 = ops::selective_scan_step(h1, r.u, low, A, Bm, Cm, D, z, dbias, true, false, dproj);
  const at::Tensor y2 = ops::selective_scan_step(h2, r.u, low, A, Bm, Cm, D, z, dbias, true, false, dproj, &state, x);
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(h1, h2));
  EXPECT_TRUE(torch::equal(state, ref_state));
}

TEST(ConvStepDecodeLinear, MismatchedStateIsRefusedWithTheShapes) {
  at::Tensor state = torch::zeros({2, 6, 2});
  try {
    ops::conv_step_decode_linear(state, torch::zeros({2, 6}), torch::zeros({6, 4}), {}, true, torch::zeros({5, 6}));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("conv_step_decode_linear"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 6, 2]"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace mcd
