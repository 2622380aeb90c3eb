// ops::decode_linear off CUDA: torch's linear itself (bit for bit), gradients kept when wanted, and a
// clear error for mismatched shapes; the norm + in_proj with its conv step, against the ops it fuses.
// The CUDA kernels are checked in tests/gpu/test_gpu_kernels.cpp (GpuDecodeLinear, GpuDecodeStep).
#include <gtest/gtest.h>

#include "ops/causal_conv1d.h"
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

// add_rms_norm_decode_linear_conv_step is the fused norm + product, then the conv step of the
// product's first E columns: u is that step's output, the other columns and the residual are the
// plain op's, and the conv state advances by x — for every conv width, with and without a conv bias.
TEST(NormConvStep, IsTheNormedProductWithTheConvStepOnItsXColumns) {
  const int64_t rows = 3, D = 10, E = 6;
  for (int64_t K : {1, 2, 4}) {
    for (bool with_bias : {true, false}) {
      torch::manual_seed(30 + K + 10 * with_bias);
      const at::Tensor res = torch::randn({rows, D}), prev = torch::randn({rows, D}), nw = torch::rand({D}) + 0.5;
      const at::Tensor W = torch::randn({2 * E, D}), cw = torch::randn({E, K});
      const at::Tensor cb = with_bias ? torch::randn({E}) : at::Tensor();
      at::Tensor state = torch::randn({rows, E, K - 1}), ref_state = state.clone();
      const ops::NormConvOut r = ops::add_rms_norm_decode_linear_conv_step(res, prev, nw, 1e-5, W, {}, state, cw, cb, true);
      const ops::NormLinearOut plain = ops::add_rms_norm_decode_linear(res, prev, nw, 1e-5, W);
      const at::Tensor u = ops::causal_conv1d_step(ref_state, plain.out.narrow(1, 0, E), cw, cb, true);
      const std::string what = "K " + std::to_string(K) + (with_bias ? " bias" : " no bias");
      EXPECT_TRUE(torch::equal(r.u, u)) << what;
      EXPECT_TRUE(torch::equal(r.rest, plain.out.narrow(1, E, E))) << what;
      EXPECT_TRUE(torch::equal(r.residual, plain.residual)) << what;
      EXPECT_TRUE(torch::equal(state, ref_state)) << what;
      if (K >= 2) EXPECT_TRUE(torch::equal(state.select(2, K - 2), plain.out.narrow(1, 0, E))) << what;
    }
  }
}

TEST(NormConvStep, AConvStateWiderThanTheProductIsRefusedWithItsShape) {
  at::Tensor state = torch::zeros({2, 9, 3});
  try {
    ops::add_rms_norm_decode_linear_conv_step(torch::zeros({2, 4}), {}, torch::ones({4}), 1e-5, torch::zeros({8, 4}), {},
                                             state, torch::zeros({9, 4}), {}, true);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("conv_step"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 9, 3]"), std::string::npos) << msg;
  }
}

// add_rms_norm_decode_linear_argmax off CUDA is its composition: logits are the fused norm + product
// widened, tokens the first column of each row's maximum among the first argmax_columns — checked with
// tied maxima (identical weight rows) and a larger value in an excluded column; the workspace is
// left as it was.
TEST(NormArgmaxHead, IsTheNormedProductThenTheFirstMaximumOverTheLeadingColumns) {
  torch::manual_seed(41);
  const int64_t rows = 4, D = 12, V = 30, cols = 27;
  const at::Tensor res = torch::randn({rows, D}), prev = torch::randn({rows, D}), nw = torch::rand({D}) + 0.5;
  at::Tensor W = torch::randn({V, D}) * 0.1;
  // Rows 3 and 11 (and 4 and 12) are the same large vector with opposite signs: one pair holds every
  // row's maximum, tied, so the first column of the pair must win; column 28 would beat both.
  const at::Tensor big = torch::randn({D}) * 10;
  W[3] = big;  W[11] = big;  W[4] = -big;  W[12] = -big;  W[28] = 3 * big;
  at::Tensor logits = torch::full({rows, V}, NAN), tokens = torch::full({rows}, -1, at::kLong);
  at::Tensor workspace = torch::zeros({rows + 1}, at::kLong);
  ops::add_rms_norm_decode_linear_argmax(res, prev, nw, 1e-5, W, cols, logits, tokens, workspace);
  const ops::NormLinearOut plain = ops::add_rms_norm_decode_linear(res, prev, nw, 1e-5, W);
  EXPECT_TRUE(torch::equal(logits, plain.out));
  for (int64_t r = 0; r < rows; ++r) {
    const bool positive = logits[r][3].item<float>() > 0;
    EXPECT_EQ(tokens[r].item<int64_t>(), positive ? 3 : 4) << "row " << r;
    EXPECT_EQ(logits[r][positive ? 3 : 4].item<float>(), logits[r][positive ? 11 : 12].item<float>());
  }
  EXPECT_EQ(workspace.abs().sum().item<int64_t>(), 0);
  at::Tensor short_tokens = torch::zeros({rows - 1}, at::kLong);
  EXPECT_NE(test::error_of([&] {
              ops::add_rms_norm_decode_linear_argmax(res, prev, nw, 1e-5, W, cols, logits, short_tokens, workspace);
            }).find("tokens (rows) int64"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              ops::add_rms_norm_decode_linear_argmax(res, prev, nw, 1e-5, W, V + 1, logits, tokens, workspace);
            }).find("argmax_columns must be in [1, 30]"),
            std::string::npos);
}

// widen_argmax off CUDA is its two lines: logits the values widened (into an fp32 or fp64 buffer), tokens
// the first column of each row's maximum among the first argmax_columns (a tie: the first; NaN: the
// maximum; a larger value past argmax_columns: ignored); the workspace is left as it was; wrong shapes are
// refused with them.
TEST(WidenArgmax, IsTheWidenedValuesThenTheFirstMaximumOverTheLeadingColumns) {
  torch::manual_seed(43);
  const int64_t rows = 3, V = 20, cols = 18;
  for (at::ScalarType logits_dtype : {at::kFloat, at::kDouble}) {
    at::Tensor v = torch::randn({rows, V});
    v[0][4] = 50;  v[0][9] = 50;  v[0][19] = 60;  // tie: 4; column 19 excluded
    v[1][6] = NAN;  v[1][2] = 50;                 // NaN is the maximum
    v[2].fill_(-1);                               // all equal: column 0
    const at::Tensor values = v.to(at::kBFloat16);
    at::Tensor logits = torch::full({rows, V}, NAN, logits_dtype), tokens = torch::full({rows}, -1, at::kLong);
    at::Tensor workspace = torch::full({rows + 1}, 7, at::kLong);
    ops::widen_argmax(values, cols, logits, tokens, workspace);
    const at::Tensor want = values.to(logits_dtype);
    EXPECT_TRUE(torch::equal(logits.isnan(), want.isnan()) && torch::equal(logits.nan_to_num(0), want.nan_to_num(0)));
    EXPECT_EQ(tokens[0].item<int64_t>(), 4);
    EXPECT_EQ(tokens[1].item<int64_t>(), 6);
    EXPECT_EQ(tokens[2].item<int64_t>(), 0);
    EXPECT_TRUE(torch::equal(workspace, torch::full({rows + 1}, 7, at::kLong)));
  }
  at::Tensor logits = torch::empty({rows, V}), tokens = torch::empty({rows}, at::kLong);
  at::Tensor workspace = torch::zeros({rows + 1}, at::kLong), short_logits = torch::empty({rows, V - 1});
  EXPECT_NE(test::error_of([&] {
              ops::widen_argmax(torch::zeros({rows, V}), cols, short_logits, tokens, workspace);
            }).find("logits (rows, V)"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { ops::widen_argmax(torch::zeros({rows, V}), 0, logits, tokens, workspace); })
                .find("argmax_columns must be in [1, 20]"),
            std::string::npos);
}

}  // namespace
}  // namespace mcd
