// The training loop's device-side pieces on CUDA (ctest label `gpu`; skipped without a device):
// the fused AdamW step and the foreach gradient clipping against LibTorch's reference versions,
// and the memory plan that recomputes each block's normed activations for in_proj.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "model/mamba.h"
#include "ops/adamw_step.h"
#include "ops/options.h"
#include "test_support.h"
#include "train/memory_stats.h"
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
  MCD_SKIP_IF_NO_CUDA();
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
    if (k == 0) ASSERT_TRUE(ops::adamw_step_is_fused(*fused) || kTorchMajor < 2) << "LibTorch 2 on CUDA: fused path";
    const at::Tensor before = rp[1].detach().clone();
    ops::adamw_step(*fused);
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
  MCD_SKIP_IF_NO_CUDA();
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

// The memory plan's two ops options, each the same bits in less memory:
// - in_proj_saves_input = false: each block's norm and in_proj run as one op
//   (ops::add_rms_norm_linear) whose backward recomputes normed with the forward's own kernel: the
//   peak drops by the normed activations no longer kept, B·L·D bf16 per block;
// - keep_cast_weights = false: in_proj and the fused mixer cast their fp32 weights to bf16 again in
//   the backward instead of keeping the forward's casts.
// The loss and every gradient must be identical (the recomputed values are the same bits and go
// through the same products; deterministic algorithms, so the scan's and conv's weight-gradient sums
// do not take atomics' run-to-run order); the peaks must fall by at least what is no longer kept.
TEST(GpuTrain, RecomputingNormedInputsAndWeightCastsGivesTheSameGradientsInLessMemory) {
  MCD_SKIP_IF_NO_CUDA();
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 257;
  c.n_layer = 4;
  c.d_model = 256;
  c.d_inner_per_layer = {512, 512, 336, 512};  // a pruned width too
  const int64_t B = 4, L = 1024;
  const torch::Device dev(torch::kCUDA, 0);
  const at::Tensor ids = torch::randint(0, c.vocab_size, {B, L}, make_cpu_generator(5)).to(dev);
  struct Run {
    double loss = 0;
    std::map<std::string, at::Tensor> grads;
    int64_t peak = 0;
  };
  const test::DeterministicScope deterministic;
  auto run = [&](bool saves_input, bool keep_casts) {
    ops::OpsOptions o = ops::ops_options();
    o.in_proj_saves_input = saves_input;
    o.keep_cast_weights = keep_casts;
    const ops::ScopedOpsOptions scope(o);
    Run r;
    MambaLM m(c);
    init_reference(*m, 11);
    m->to(dev);
    torch::cuda::synchronize();
    train::reset_peak_memory(dev);
    const int64_t base = train::peak_memory_bytes(dev);  // the peak just reset: what is allocated now
    at::Tensor loss;
    {
      const CudaAutocastScope autocast(true);
      loss = m->loss(ids);
    }
    loss.backward();
    torch::cuda::synchronize();
    r.peak = train::peak_memory_bytes(dev) - base;
    r.loss = loss.item<double>();
    for (const auto& p : m->named_parameters()) r.grads[p.key()] = p.value().grad().cpu();
    return r;
  };
  // A first run allocates what stays for the process (cuBLAS workspaces, ~76 MB more at its peak
  // on an H200): untimed, so that the three runs compared start alike.
  (void)run(true, true);
  const Run kept = run(true, true), recomputed = run(false, true), recast = run(false, false);
  for (const Run* r : {&recomputed, &recast}) {
    EXPECT_EQ(kept.loss, r->loss);
    ASSERT_EQ(kept.grads.size(), r->grads.size());
    for (const auto& [name, g] : kept.grads) EXPECT_TRUE(torch::equal(g, r->grads.at(name))) << name;
  }
  // Kept: one (B, L, D) bf16 normed per block. Recomputed: none kept, one alive at a time in the
  // backward, so at least (n_layer − 1) of them are gone at the peak (allocations round to 512 B,
  // far below these MB). Likewise the in_proj casts: (2E, D) bf16 per block, one alive at a time.
  const int64_t normed_bytes = B * L * c.d_model * 2, in_proj_bytes = 2 * 336 * c.d_model * 2;
  EXPECT_GE(kept.peak - recomputed.peak, (c.n_layer - 1) * normed_bytes)
      << "peaks " << kept.peak << " and " << recomputed.peak << " bytes";
  EXPECT_GE(recomputed.peak - recast.peak, (c.n_layer - 1) * in_proj_bytes)
      << "peaks " << recomputed.peak << " and " << recast.peak << " bytes";
  std::printf("training peak: %.2f MB kept, %.2f MB normed recomputed, %.2f MB casts too (one normed %.2f MB)\n",
              kept.peak / 1e6, recomputed.peak / 1e6, recast.peak / 1e6, normed_bytes / 1e6);
}

}  // namespace
}  // namespace mcd
