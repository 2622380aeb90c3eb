// The training loop's device-side pieces on CUDA (ctest label `gpu`; skipped without a device):
// the fused AdamW step and the foreach gradient clipping against LibTorch's reference versions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "test_support.h"
#include "train/optimizer.h"

namespace mcd {
namespace {

// Parameters of mixed shapes (odd sizes, a scalar-like vector) in two groups (decay and not),
// with the same fixed gradients fed to both optimizers at every step, so the comparison does not
// feed one optimizer's rounding back into the other's gradients.
struct Net : torch::nn::Module {
  at::Tensor w1, w2, b, d;
  explicit Net(uint64_t seed) {
    at::Generator g = make_cpu_generator(seed);
    w1 = register_parameter("in_proj_weight", torch::randn({37, 19}, g));
    w2 = register_parameter("out_proj_weight", torch::randn({5, 1031}, g));
    b = register_parameter("dt_proj_bias", torch::randn({37}, g));
    d = register_parameter("D", torch::randn({1}, g));
  }
};

TEST(GpuTrain, FusedAdamWMatchesTheReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  train::OptimizerSettings s;
  s.lr = 3e-3;
  s.weight_decay = 0.1;
  Net fused_net(1), ref_net(1);
  fused_net.to(torch::kCUDA);
  ref_net.to(torch::kCUDA);
  auto fused = train::make_adamw(fused_net, s);
  auto ref = train::make_adamw(ref_net, s);
  at::Generator g = make_cpu_generator(2);
  const int steps = 6;
  double max_update = 0;
  for (int k = 0; k < steps; ++k) {
    train::set_lr(*fused, s.lr * (1 + k) / steps);  // a schedule, as the loop sets it
    train::set_lr(*ref, s.lr * (1 + k) / steps);
    auto fp = fused_net.parameters(), rp = ref_net.parameters();
    for (size_t i = 0; i < fp.size(); ++i) {
      const at::Tensor grad = torch::randn(fp[i].sizes(), g).to(torch::kCUDA);
      fp[i].mutable_grad() = grad.clone();
      rp[i].mutable_grad() = grad.clone();
    }
    if (k == 0) ASSERT_TRUE(train::adamw_step_is_fused(*fused) || kTorchMajor < 2) << "LibTorch 2 on CUDA: fused path";
    const at::Tensor before = rp[1].detach().clone();
    train::adamw_step(*fused);
    ref->step();
    max_update = std::max(max_update, (rp[1] - before).abs().max().item<double>());
  }
  // Both evaluate the same fp32 formula per element (decay, two moments, bias corrections, the
  // update) in a different operation order: each step may differ by a few roundings of |p| and of
  // the update (≤ 8·2⁻²⁴ relative each, the formula has < 8 roundings), and the moments' own
  // differences (relative ~2⁻²⁴·8) feed later updates. Over `steps` steps:
  // |Δp| ≤ steps · 8·2⁻²⁴ · (max|p| + max update) · 4 (margin). A wrong bias correction or lr
  // would differ by a sizeable fraction of an update (≥ 1e-2 of it), far above this.
  const double eps32 = std::ldexp(1.0, -24);
  auto fp = fused_net.parameters(), rp = ref_net.parameters();
  auto& fstate = fused->state();
  auto& rstate = ref->state();
  for (size_t i = 0; i < fp.size(); ++i) {
    const double scale = rp[i].abs().max().item<double>() + max_update;
    const double bound = steps * 8 * eps32 * scale * 4;
    EXPECT_LE((fp[i] - rp[i]).abs().max().item<double>(), bound) << i;
    // The same state, in the same places: checkpoints read it by parameter.
    auto& fs = static_cast<torch::optim::AdamWParamState&>(*fstate.at(optimizer_state_key(fstate, fp[i])));
    auto& rs = static_cast<torch::optim::AdamWParamState&>(*rstate.at(optimizer_state_key(rstate, rp[i])));
    EXPECT_EQ(fs.step(), rs.step());
    EXPECT_LT(test::rel_err(fs.exp_avg(), rs.exp_avg()), 1e-5) << i;
    EXPECT_LT(test::rel_err(fs.exp_avg_sq(), rs.exp_avg_sq()), 1e-5) << i;
  }
  EXPECT_GT(max_update, 1e-4);  // the parameters really moved
}

TEST(GpuTrain, ClippingOnTheDeviceMatchesTheReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (const double max_norm : {0.5, 1e6, std::numeric_limits<double>::infinity()}) {
    Net a(3), b(3);
    a.to(torch::kCUDA);
    b.to(torch::kCUDA);
    at::Generator g = make_cpu_generator(4);
    auto ap = a.parameters(), bp = b.parameters();
    for (size_t i = 0; i < ap.size(); ++i) {
      const at::Tensor grad = torch::randn(ap[i].sizes(), g).to(torch::kCUDA);
      ap[i].mutable_grad() = grad.clone();
      bp[i].mutable_grad() = grad.clone();
    }
    const at::Tensor norm = train::clip_grad_norm(ap, max_norm);
    const double ref_norm = torch::nn::utils::clip_grad_norm_(bp, max_norm);
    // A 2-norm of ~6000 fp32 squares, summed in different orders: ≤ ~1e-6 relative; 1e-5 leaves margin.
    EXPECT_NEAR(norm.item<double>(), ref_norm, 1e-5 * ref_norm) << max_norm;
    EXPECT_GT(ref_norm, 1.0);  // the 0.5 case really clips
    for (size_t i = 0; i < ap.size(); ++i) EXPECT_LT(test::rel_err(ap[i].grad(), bp[i].grad()), 1e-5) << max_norm;
  }
}

}  // namespace
}  // namespace mcd
