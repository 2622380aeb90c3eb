// The CUDA kernels of ops/cuda against float64 references (ctest label `gpu`; every case skips
// itself without a CUDA device). Selective scan and causal conv1d, forward and every gradient, in
// float32, float16 and bfloat16, at sizes that are multiples of no tile (L = 1, 7, 127, 2049, 8192;
// odd E; N = 1, 16, 64), with time-contiguous inputs and with the model's transposed views.
// Tolerance rule (STYLE.md): the kernel's relative error against the float64 reference must be at
// most 2× the error of a plain implementation of the same math in the same precision — the
// LibTorch composite run on the same rounded inputs (its autograd for gradients) — plus a small
// floor for float32-level rounding (1e-5; 1e-4 float16; 1e-3 bfloat16). Outputs are NaN-poisoned
// before the kernels write them; inputs are fresh random numbers per case (fixed seeds).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "model/mamba.h"
#include "ops/add_rms_norm.h"
#include "ops/autocast_linear.h"
#include "ops/backend.h"
#include "ops/causal_conv1d.h"
#include "ops/channel_gate.h"
#include "ops/chunked_cross_entropy.h"
#include "ops/decode_linear.h"
#include "ops/embedding.h"
#include "ops/mamba_inner.h"
#include "ops/options.h"
#include "ops/cpu/causal_conv_cpu.h"
#include "ops/cpu/selective_scan_cpu.h"
#include "ops/selective_scan.h"
#include "test_support.h"
#include "util/counter_noise.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "ops/cuda/cross_entropy_params.h"
#include "ops/cuda/ops_cuda.h"
#include "ops/cuda/scan_params.h"
#endif

namespace mcd {
namespace {

#ifndef MCD_WITH_CUDA

TEST(GpuKernels, NotBuilt) { GTEST_SKIP() << "built without the CUDA kernels (MCD_WITH_CUDA off)"; }

#else

namespace F = torch::nn::functional;

// The current ops options with one change, for ops::ScopedOpsOptions.
ops::OpsOptions with_backend(ops::Backend b) {
  ops::OpsOptions o = ops::ops_options();
  o.backend = b;
  return o;
}
ops::OpsOptions with_poison() {
  ops::OpsOptions o = ops::ops_options();
  o.poison_outputs = true;
  return o;
}
ops::OpsOptions with_scan_plan(ops::ScanPlan plan) {
  ops::OpsOptions o = ops::ops_options();
  o.scan_plan = plan;
  return o;
}

// NaN-fill every output of the CUDA ops in this scope (OpsOptions::poison_outputs).
struct PoisonOutputs {
  ops::ScopedOpsOptions scope{with_poison()};
};

ops::OpsOptions with_few_row_limit(int limit) {
  ops::OpsOptions o = ops::ops_options();
  o.decode_few_row_limit = limit;
  return o;
}

// The few-row decode kernels (decode_linear, the fused norm + product) at every row count they take,
// whatever the default of the ops option decode_few_row_limit: the kernel tests below pin it.
struct FewRowKernelsUpToEight {
  ops::ScopedOpsOptions scope{with_few_row_limit(ops::kDecodeFewRowMaxRows)};
};

using ops::cuda::ScanAlgorithm;

// The production scan algorithms with a backward that take N states (the state-sequential ones
// take N ≤ 16).
std::vector<ScanAlgorithm> algorithms_for(int64_t n) {
  std::vector<ScanAlgorithm> out;
  for (int a = 0; a < ops::cuda::kTrainableScanAlgorithmCount; ++a)
    if (ops::cuda::scan_algorithm_supports(static_cast<ScanAlgorithm>(a), n)) out.push_back(static_cast<ScanAlgorithm>(a));
  return out;
}

const char* dtype_name(at::ScalarType t) {
  return t == at::kFloat ? "fp32" : t == at::kHalf ? "fp16" : t == at::kBFloat16 ? "bf16" : "?";
}

double error_floor(at::ScalarType t) { return t == at::kFloat ? 1e-5 : t == at::kHalf ? 1e-4 : 1e-3; }

// [Rounding-flip bounds] The bare low-precision tolerances below compare two computations of the
// same values that accumulate in fp32 (in different orders, or one with a fused epilogue) and
// round the result to the low-precision type once. Their fp32 results agree to ~1e-6, so the
// rounded outputs differ only where a rounding flips, by one unit in the last place: relative
// 2^-8..2^-7 (≤ 7.8e-3) for bf16's 8 significand bits, 2^-11..2^-10 (≤ 9.8e-4) for fp16. Then
// ‖x − y‖/‖y‖ ≤ 7.8e-3 even if every element flipped: the bound 1e-2 (bf16) and 2e-3 (fp16, two
// ulps) hold on any GPU, and a wrong value (a wrong index, a dropped term: O(1) error) exceeds
// them by two orders of magnitude. Chained low-precision paths (several roundings) use the
// tolerance rule (expect_rule) or say what they allow where they are.

// The tolerance rule; prints both errors so the log shows the margins.
void expect_rule(const std::string& what, const at::Tensor& kernel, const at::Tensor& plain,
                 const at::Tensor& ref, at::ScalarType dtype) {
  ASSERT_TRUE(kernel.defined()) << what;
  const double ek = test::rel_err(kernel, ref), ep = test::rel_err(plain, ref);
  const double bound = 2.0 * ep + error_floor(dtype);
  std::printf("    %-34s kernel %.3e  plain %.3e  bound %.3e\n", what.c_str(), ek, ep, bound);
  EXPECT_LE(ek, bound) << what << " (" << dtype_name(dtype) << "): kernel error " << ek
                       << " vs plain low-precision error " << ep;
  if (ref.abs().sum().item<double>() > 0) {  // (dA is exactly 0 at L = 1: h_{t−1} = 0)
    EXPECT_GT(kernel.detach().abs().sum().item<double>(), 0.0) << what << " is all zero";
  }
}

// A (B, X, L) tensor with the values of v whose memory is that of a (B, L, X + extra) buffer:
// the layout of the model's x/z/Δ/B/C views (channel stride 1, time stride X + extra), the
// values at column offset `extra` (like z in xz) or at 0. Strides and offsets that are multiples
// of 8 elements let the kernels' 16-byte vector loads run; others take the element path.
at::Tensor channel_last_view(const at::Tensor& v, int64_t extra, const at::TensorOptions& o,
                             bool at_start = false) {
  at::Tensor base = torch::full({v.size(0), v.size(2), v.size(1) + extra},
                                std::numeric_limits<double>::quiet_NaN(), o);
  at::Tensor view = base.narrow(2, at_start ? 0 : extra, v.size(1)).transpose(1, 2);
  view.copy_(v);
  return view;
}

// ------------------------------------------------------------------------ selective scan

struct ScanCase {
  int64_t b, e, l, n;
  bool z, d, bias, mask, softplus, model_layout;
};

std::string describe(const ScanCase& c) {
  return cat("B", c.b, " E", c.e, " L", c.l, " N", c.n, c.z ? " z" : "", c.d ? " D" : "",
             c.bias ? " bias" : "", c.mask ? " mask" : "", c.softplus ? " softplus" : " no-softplus",
             c.model_layout ? " model-layout" : " contiguous");
}
// In test names: the description, not the struct's bytes (padding included, which changed from build to build).
void PrintTo(const ScanCase& c, std::ostream* os) { *os << describe(c); }

// Float64 CPU values of every input, drawn like a trained model's: Δ = softplus(δ + bias) spread
// over [1e-3, 0.3] and A_n ≈ −(n+1), so some channels remember far across the 128-step chunks.
struct ScanValues {
  ops::ScanInputs in;  // float64, CPU, contiguous
  at::Tensor dout;     // (B, E, L)
};

ScanValues scan_values(const ScanCase& c, uint64_t seed) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(at::kDouble);
  ScanValues v;
  auto& in = v.in;
  in.u = torch::randn({c.b, c.e, c.l}, o);
  in.A = -torch::exp(torch::log(torch::arange(1, c.n + 1, o)).unsqueeze(0) + 0.3 * torch::randn({c.e, c.n}, o));
  in.B = torch::randn({c.b, c.n, c.l}, o);
  in.C = torch::randn({c.b, c.n, c.l}, o);
  if (c.softplus) {
    in.delta = 0.5 * torch::randn({c.b, c.e, c.l}, o);
    const at::Tensor dt = torch::exp(torch::rand({c.e}, o) * (std::log(0.1) - std::log(1e-3)) + std::log(1e-3));
    if (c.bias) in.delta_bias = dt + torch::log(-torch::expm1(-dt));  // inverse softplus
  } else {
    in.delta = 0.1 * torch::randn({c.b, c.e, c.l}, o).abs() + 1e-3;
    if (c.bias) in.delta_bias = 0.01 * torch::rand({c.e}, o);
  }
  if (c.d) in.D = torch::randn({c.e}, o);
  if (c.z) in.z = torch::randn({c.b, c.e, c.l}, o);
  if (c.mask) {
    in.mask = torch::rand({c.e}, o);
    in.mask[c.e / 2] = 0.0;  // one closed gate
  }
  in.delta_softplus = c.softplus;
  v.dout = torch::randn({c.b, c.e, c.l}, o);
  return v;
}

// The values as each implementation receives them: activations rounded to `dtype`, the rest
// rounded to float32; `ref` holds exactly those numbers in float64 on the CPU.
struct ScanTriple {
  ops::ScanInputs ref;     // float64 CPU
  ops::ScanInputs plain;   // CUDA, contiguous, leaves requiring grad
  ops::ScanInputs kernel;  // CUDA, contiguous or the model's strided views
  at::Tensor dout_ref, dout_lo;
};

ScanTriple scan_triple(const ScanValues& v, at::ScalarType dtype, bool model_layout) {
  const auto cuda_lo = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
  const auto cuda_32 = torch::TensorOptions().device(torch::kCUDA).dtype(at::kFloat);
  auto act = [&](const at::Tensor& t) { return t.defined() ? t.to(cuda_lo) : t; };
  auto f32 = [&](const at::Tensor& t) { return t.defined() ? t.to(cuda_32) : t; };
  auto back = [](const at::Tensor& t) { return t.defined() ? t.to(torch::kCPU, at::kDouble) : t; };
  ScanTriple s;
  const ops::ScanInputs& in = v.in;
  ops::ScanInputs lo = in;
  lo.u = act(in.u);
  lo.delta = act(in.delta);
  lo.z = act(in.z);
  lo.B = act(in.B);
  lo.C = act(in.C);
  lo.A = f32(in.A);
  lo.D = f32(in.D);
  lo.delta_bias = f32(in.delta_bias);
  lo.mask = f32(in.mask);
  s.ref = lo;
  for (at::Tensor* t : {&s.ref.u, &s.ref.delta, &s.ref.z, &s.ref.B, &s.ref.C, &s.ref.A, &s.ref.D,
                        &s.ref.delta_bias, &s.ref.mask})
    *t = back(*t);
  s.plain = lo;
  for (at::Tensor* t : {&s.plain.u, &s.plain.delta, &s.plain.z, &s.plain.B, &s.plain.C, &s.plain.A,
                        &s.plain.D, &s.plain.delta_bias, &s.plain.mask})
    if (t->defined()) *t = t->detach().clone().requires_grad_(true);
  s.kernel = lo;
  if (model_layout) {  // u: conv output (B, L, E); Δ, z: halves of (B, L, 2E); B, C: parts of x_dbl
    const int64_t E = in.u.size(1), N = in.A.size(1);
    // u: time stride a multiple of 8 at offset 0, so vectors straddle the channel tail when
    // E % 8 ≠ 0; Δ, z, B, C aligned only when E (or N) is a multiple of 8.
    s.kernel.u = channel_last_view(lo.u, (8 - E % 8) % 8, cuda_lo, /*at_start=*/true);
    s.kernel.delta = channel_last_view(lo.delta, E, cuda_lo);
    if (lo.z.defined()) s.kernel.z = channel_last_view(lo.z, E, cuda_lo);
    s.kernel.B = channel_last_view(lo.B, 8 + N, cuda_lo);
    s.kernel.C = channel_last_view(lo.C, 8, cuda_lo);
  }
  s.dout_lo = act(v.dout);
  s.dout_ref = back(s.dout_lo);
  return s;
}

// s.kernel's inputs made leaves that want gradients (the autograd tests' start), the mask too if asked.
void kernel_inputs_want_grad(ScanTriple& s, bool mask) {
  for (at::Tensor* t : {&s.kernel.u, &s.kernel.delta, &s.kernel.z, &s.kernel.B, &s.kernel.C, &s.kernel.A,
                        &s.kernel.D, &s.kernel.delta_bias})
    *t = t->detach().requires_grad_(true);
  if (mask) s.kernel.mask = s.kernel.mask.detach().requires_grad_(true);
}

class ScanKernel : public ::testing::TestWithParam<std::tuple<ScanCase, at::ScalarType>> {};

TEST_P(ScanKernel, ForwardAndEveryGradientWithinTwiceThePlainError) {
  MCD_SKIP_IF_NO_CUDA();
  const auto [c, dtype] = GetParam();
  std::printf("  scan %s %s\n", dtype_name(dtype), describe(c).c_str());
  const ScanValues v = scan_values(c, 1000 + c.b * 7 + c.e * 131 + c.l * 3 + c.n);
  ScanTriple s = scan_triple(v, dtype, c.model_layout);
  const PoisonOutputs poison;

  // float64 reference (plain CPU loops).
  const auto& r = s.ref;
  const auto ref_fwd = ops::cpu::selective_scan_forward(r.u, r.delta, r.A, r.B, r.C, r.D, r.z,
                                                        r.delta_bias, r.delta_softplus, true, r.mask);
  const auto ref = ops::cpu::selective_scan_backward(s.dout_ref, r.u, r.delta, r.A, r.B, r.C, r.D,
                                                     r.z, r.delta_bias, r.delta_softplus, r.mask);
  // Plain low-precision implementation: the composite and its autograd.
  at::Tensor plain_last;
  const at::Tensor plain_out = ops::selective_scan_composite(s.plain, &plain_last);
  plain_out.backward(s.dout_lo);
  // The kernels: every production algorithm that takes this N (the low-memory plan's
  // state_sequential_one_wave among them), in atomic mode, with the backward also recomputing the
  // forward's output. Deterministic mode: ScanKernelModes below.
  for (ScanAlgorithm algorithm : algorithms_for(c.n)) {
    std::printf("   algorithm %s\n", ops::cuda::scan_algorithm_name(algorithm));
    const auto fwd = ops::cuda::selective_scan_cuda_forward(s.kernel, algorithm, true, true);
    ops::cuda::ScanBackwardOptions opt;
    opt.recompute_out = true;
    const auto g = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, opt);
    EXPECT_EQ(fwd.out.scalar_type(), dtype);
    expect_rule("recomputed out", g.out, plain_out, ref_fwd.out, dtype);

    expect_rule("out", fwd.out, plain_out, ref_fwd.out, dtype);
    expect_rule("last_state", fwd.last_state, plain_last, ref_fwd.last_state, dtype);
    const auto& p = s.plain;
    expect_rule("du", g.du, p.u.grad(), ref.du, dtype);
    expect_rule("ddelta", g.ddelta, p.delta.grad(), ref.ddelta, dtype);
    expect_rule("dA", g.dA, p.A.grad(), ref.dA, dtype);
    expect_rule("dB", g.dB, p.B.grad(), ref.dB, dtype);
    expect_rule("dC", g.dC, p.C.grad(), ref.dC, dtype);
    if (c.d) expect_rule("dD", g.dD, p.D.grad(), ref.dD, dtype);
    if (c.z) expect_rule("dz", g.dz, p.z.grad(), ref.dz, dtype);
    if (c.bias) expect_rule("ddelta_bias", g.ddelta_bias, p.delta_bias.grad(), ref.ddelta_bias, dtype);
    if (c.mask) expect_rule("dmask", g.dmask, p.mask.grad(), ref.dmask, dtype);
    EXPECT_EQ(g.dD.defined(), c.d);
    EXPECT_EQ(g.dz.defined(), c.z);
    if (c.mask) {  // the closed gate zeroes its channel exactly
      EXPECT_EQ(fwd.out.select(1, c.e / 2).abs().max().item<double>(), 0.0);
      EXPECT_EQ(g.du.select(1, c.e / 2).abs().max().item<double>(), 0.0);
    }
  }
  // The forward-only block forwards (inference): vector loads where the layout allows, element loads
  // otherwise (the model layout's channel-last views).
  for (ScanAlgorithm a : {ScanAlgorithm::kBlockForward, ScanAlgorithm::kBlockForwardStaged}) {
    if (!ops::cuda::scan_algorithm_supports(a, c.n)) continue;
    const std::string name = ops::cuda::scan_algorithm_name(a);
    std::printf("   algorithm %s\n", name.c_str());
    const auto fwd = ops::cuda::selective_scan_cuda_forward(s.kernel, a, false, true);
    EXPECT_EQ(fwd.out.scalar_type(), dtype);
    expect_rule("out (" + name + ")", fwd.out, plain_out, ref_fwd.out, dtype);
    expect_rule("last_state (" + name + ")", fwd.last_state, plain_last, ref_fwd.last_state, dtype);
    if (c.mask) EXPECT_EQ(fwd.out.select(1, c.e / 2).abs().max().item<double>(), 0.0);
  }
}

// The block forward reading time-contiguous rows with 16-byte vectors up to a row's tail that is
// no whole vector (rows padded to a multiple of 8 elements), against the time-parallel forward on
// the same inputs: fp32 sums in another order, ~√L·2^-24 typical and L·2^-24 ≈ 1.5e-4 worst case
// per element (L = 2597), so 1e-5 on the norm; bf16: [Rounding-flip bounds]. Then the same rows
// handed over unpadded (element loads, B and C read from global memory) must give the same numbers
// bit for bit: the padded rows go to block_forward_staged, which in bf16 copies B and C into shared
// memory a chunk ahead (fp32 runs block_forward's kernel), so this checks the staging — L = 1001 is two 512-step chunks, L = 2597 six (the
// buffers reused, the last chunk 37 steps, N = 5 staged rows of 16). B·E ≥ kBlockFwdStagedMinChannels
// (1,038 and 1,037 channels), where the staged configuration runs (fewer take four warps per channel,
// whose sums run in another order); both fit one wave on an H100 or H200 (260 four-channel blocks).
// The same (B, E, L) / (B, N, L) values in rows of whole 16-byte vectors (padded to a multiple of 8
// elements): the layout the vector block forwards take.
ops::ScanInputs padded_rows(const ops::ScanInputs& kernel) {
  ops::ScanInputs in = kernel;
  for (at::Tensor* t : {&in.u, &in.delta, &in.z, &in.B, &in.C}) {
    at::Tensor big = torch::zeros({t->size(0), t->size(1), (t->size(2) + 7) / 8 * 8}, t->options());
    big.narrow(2, 0, t->size(2)).copy_(*t);
    *t = big.narrow(2, 0, t->size(2));
  }
  return in;
}

TEST(ScanKernelModes, BlockForwardReadsPaddedRowsWithVectors) {
  MCD_SKIP_IF_NO_CUDA();
  ASSERT_GE(2 * 519, ops::cuda::kBlockFwdStagedMinChannels);
  for (const ScanCase& c : {ScanCase{2, 519, 1001, 16, true, true, true, true, true, false},
                            ScanCase{1, 1037, 2597, 5, true, true, true, true, true, false}}) {
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      const std::string what = std::string(dtype_name(dtype)) + " " + describe(c);
      const ScanTriple s = scan_triple(scan_values(c, 83), dtype, false);
      const ops::ScanInputs in = padded_rows(s.kernel);
      const auto block = ops::cuda::selective_scan_cuda_forward(in, ScanAlgorithm::kBlockForwardStaged, false, true);
      const auto block_plain =
          ops::cuda::selective_scan_cuda_forward(s.kernel, ScanAlgorithm::kBlockForward, false, true);
      const auto tp = ops::cuda::selective_scan_cuda_forward(s.kernel, ScanAlgorithm::kTimeParallel, false, true);
      EXPECT_EQ(block.out.stride(2), 1);
      EXPECT_EQ(block.out.scalar_type(), dtype);
      EXPECT_LT(test::rel_err(block.out, tp.out), dtype == at::kFloat ? 1e-5 : 1e-2) << what;
      EXPECT_LT(test::rel_err(block.last_state, tp.last_state), 1e-5) << what;
      EXPECT_TRUE(torch::equal(block.out, block_plain.out)) << what;
      EXPECT_TRUE(torch::equal(block.last_state, block_plain.last_state)) << what;
      EXPECT_EQ(block.out.select(1, c.e / 2).abs().max().item<double>(), 0.0) << what;  // the closed gate
    }
  }
}

// 16-bit block forwards take one configuration while all their blocks fit on the card at once and
// another beyond (selective_scan_block_fwd.cuh): both against the time-parallel forward on the same
// inputs, bf16 and fp16 ([Rounding-flip bounds]: 1e-2 on the norm, as above; the state is fp32:
// 1e-5). B·E = 64 is 32 two-channel blocks, one wave on any card of ≥ 6 SMs; B·E = 4000 is 2,000,
// which no card holds at once (6 per SM at 168 registers: it would need 334 SMs). The same for the
// staged forward on padded rows: below kBlockFwdStagedMinChannels eight warps per channel where all their
// blocks fit at once (B·E = 64, L = 130: one block per channel, a partial 2,048-step chunk; B·E = 384, L = 2500:
// 384 blocks, one wave on a card of ≥ 128 SMs at 3 per SM — else four warps — two chunks, the second partial),
// four warps per channel where they do not (B·E = 600, L = 1100: beyond a card of < 200 SMs; two 1,024-step
// chunks), from there four-channel blocks: at B·E = 800 (200 of them, one wave on a card of ≥ 67 SMs at 3 per SM;
// L = 1100: three of their 512-step chunks, the last partial) and 1,200 (300 of them, ≥ 100 SMs),
// eight-channel blocks of 16 steps per thread at B·E = 2,000 (four-channel ones: 500 blocks, beyond
// a 132-SM card's 396; eight-channel: 250, within its 264) and, for B·E = 4000 (1,000 four-channel
// blocks: 334 SMs; 500 eight-channel: 250), the eight-channel configuration of 8 steps per thread.
// B·E = 2,000 runs twice: L = 130 (one 512-step chunk) and 1,100 (three, the last partial: the
// eight-channel blocks carry their states and reuse their staged B / C buffers across chunks).
TEST(ScanKernelModes, BlockForwardWithinAndBeyondOneWaveMatchesTheTimeParallelForward) {
  MCD_SKIP_IF_NO_CUDA();
  ASSERT_LE(ops::cuda::kBlockFwdStagedMinChannels, 800);
  ASSERT_LT(600, ops::cuda::kBlockFwdStagedMinChannels);
  for (const ScanCase& c : {ScanCase{2, 32, 130, 16, true, true, true, true, true, false},
                            ScanCase{1, 384, 2500, 16, true, true, true, true, true, false},
                            ScanCase{1, 600, 1100, 16, true, true, true, true, true, false},
                            ScanCase{1, 800, 1100, 16, true, true, true, true, true, false},
                            ScanCase{2, 600, 130, 16, true, true, true, true, true, false},
                            ScanCase{2, 1000, 130, 16, true, true, true, true, true, false},
                            ScanCase{2, 1000, 1100, 16, true, true, true, true, true, false},
                            ScanCase{2, 2000, 130, 16, true, true, true, true, true, false}}) {
    for (at::ScalarType dtype : {at::kHalf, at::kBFloat16}) {
      const ScanTriple s = scan_triple(scan_values(c, 87), dtype, false);
      const auto block = ops::cuda::selective_scan_cuda_forward(s.kernel, ScanAlgorithm::kBlockForward, false, true);
      const auto staged =
          ops::cuda::selective_scan_cuda_forward(padded_rows(s.kernel), ScanAlgorithm::kBlockForwardStaged, false, true);
      const auto tp = ops::cuda::selective_scan_cuda_forward(s.kernel, ScanAlgorithm::kTimeParallel, false, true);
      const std::string what = std::string(dtype_name(dtype)) + " B·E = " + std::to_string(c.b * c.e);
      EXPECT_LT(test::rel_err(block.out, tp.out), 1e-2) << what;
      EXPECT_LT(test::rel_err(block.last_state, tp.last_state), 1e-5) << what;
      EXPECT_EQ(block.out.select(1, c.e / 2).abs().max().item<double>(), 0.0) << what;  // the closed gate
      EXPECT_LT(test::rel_err(staged.out, tp.out), 1e-2) << what << " staged";
      EXPECT_LT(test::rel_err(staged.last_state, tp.last_state), 1e-5) << what << " staged";
      EXPECT_EQ(staged.out.select(1, c.e / 2).abs().max().item<double>(), 0.0) << what << " staged";
    }
  }
}

// The block forward can store the chunk-start states the time-parallel backward reads (a training
// scan at small B·E could pair them; issue 13): its states against the time-parallel forward's, and
// the time-parallel backward run on each. The two forwards compose the same steps in different
// orders in fp32: states and fp32 gradients agree to ~L·2^-24 ≈ 6e-5 relative at worst (L = 1000),
// so 1e-4; 16-bit gradients are rounded to their dtype, where a flip moves an element by one ulp:
// [Rounding-flip bounds], 1e-2 on the norm as above. Both 16-bit configurations (B·E 38: one wave;
// 4,000: beyond) and fp32; rows of whole 16-byte vectors (saving states takes the vector kernel),
// L = 1000 and 304 end in a partial chunk.
TEST(ScanKernelModes, BlockForwardStatesFeedTheTimeParallelBackward) {
  MCD_SKIP_IF_NO_CUDA();
  for (const ScanCase& c : {ScanCase{2, 19, 1000, 16, true, true, true, true, true, false},
                            ScanCase{2, 2000, 304, 16, true, true, true, false, true, false}}) {
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      const ScanTriple s = scan_triple(scan_values(c, 89), dtype, false);
      const std::string what = std::string(dtype_name(dtype)) + " " + describe(c);
      const auto tp = ops::cuda::selective_scan_cuda_forward(s.kernel, ScanAlgorithm::kTimeParallel, true, true);
      const auto blk = ops::cuda::selective_scan_cuda_forward(s.kernel, ScanAlgorithm::kBlockForward, true, true);
      ASSERT_TRUE(blk.states.defined()) << what;
      ASSERT_EQ(blk.states.sizes(), tp.states.sizes()) << what;
      EXPECT_LT(test::rel_err(blk.states, tp.states), 1e-4) << what;
      const auto g_tp = ops::cuda::selective_scan_cuda_backward(s.kernel, ScanAlgorithm::kTimeParallel, tp.states,
                                                                s.dout_lo, false);
      const auto g_blk = ops::cuda::selective_scan_cuda_backward(s.kernel, ScanAlgorithm::kTimeParallel, blk.states,
                                                                 s.dout_lo, false);
      const double tol = dtype == at::kFloat ? 1e-4 : 1e-2;
      EXPECT_LT(test::rel_err(g_blk.du, g_tp.du), tol) << what;
      EXPECT_LT(test::rel_err(g_blk.ddelta, g_tp.ddelta), tol) << what;
      EXPECT_LT(test::rel_err(g_blk.dA, g_tp.dA), 1e-4) << what;  // fp32 sums in either dtype
      EXPECT_LT(test::rel_err(g_blk.dB, g_tp.dB), tol) << what;
      EXPECT_LT(test::rel_err(g_blk.dC, g_tp.dC), tol) << what;
    }
  }
}

// Under no gradient mode the op runs the inference forward (no saved states), with the same numbers
// as the differentiable forward's algorithm where both choose alike (channel-last: no block forward).
TEST(ScanKernelModes, NoGradForwardSavesNothingAndAgrees) {
  MCD_SKIP_IF_NO_CUDA();
  const ScanCase c{1, 24, 300, 16, true, true, true, true, true, false};
  const ScanTriple s = scan_triple(scan_values(c, 85), at::kFloat, false);
  ASSERT_EQ(ops::cuda::scan_forward_algorithm_for(s.kernel), ScanAlgorithm::kBlockForwardStaged);
  at::Tensor y_train = ops::cuda::selective_scan_cuda(s.plain, false);  // leaves require grad: the autograd node
  EXPECT_TRUE(y_train.requires_grad());
  at::Tensor y_infer;
  {
    torch::NoGradGuard no_grad;
    y_infer = ops::cuda::selective_scan_cuda(s.plain, false);
  }
  EXPECT_FALSE(y_infer.requires_grad());
  EXPECT_LT(test::rel_err(y_infer, y_train.detach()), 1e-5);  // block forward vs the training algorithm: fp32 order
}

const ScanCase kScanCases[] = {
    {2, 5, 1, 16, true, true, true, true, true, false},
    {2, 3, 7, 1, true, true, true, false, true, false},
    {1, 9, 127, 64, true, true, true, true, true, true},
    {2, 7, 2049, 16, true, true, true, true, true, true},
    {1, 3, 8192, 16, true, true, true, false, true, false},
    {3, 17, 129, 16, false, false, false, false, true, false},
    {2, 5, 300, 64, true, false, true, true, false, false},
    {1, 11, 2049, 1, false, true, true, true, true, true},
    {2, 24, 300, 16, true, true, true, true, true, true},
    {1, 40, 2049, 64, false, true, true, false, true, true},
    {2, 16, 1000, 16, true, true, true, true, true, false},
};

INSTANTIATE_TEST_SUITE_P(Sizes, ScanKernel,
                         ::testing::Combine(::testing::ValuesIn(kScanCases),
                                            ::testing::Values(at::kFloat, at::kHalf, at::kBFloat16)));

TEST(ScanKernelModes, DeterministicModeIsBitIdenticalAndMatchesAtomics) {
  MCD_SKIP_IF_NO_CUDA();
  const ScanCase c{3, 37, 1000, 16, true, true, true, true, true, true};
  // Every algorithm has a deterministic backward (no algorithm is swapped for another).
  for (ScanAlgorithm algorithm : algorithms_for(c.n))
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(ops::cuda::scan_algorithm_name(algorithm));
    const ScanValues v = scan_values(c, 77);
    const ScanTriple s = scan_triple(v, dtype, true);
    const auto fwd = ops::cuda::selective_scan_cuda_forward(s.kernel, algorithm, true, false);
    const auto a = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, true);
    const auto b = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, true);
    using Pair = std::tuple<at::Tensor, at::Tensor, const char*>;
    const std::vector<Pair> pairs{{a.du, b.du, "du"}, {a.ddelta, b.ddelta, "ddelta"},
                                  {a.dA, b.dA, "dA"}, {a.dB, b.dB, "dB"}, {a.dC, b.dC, "dC"},
                                  {a.dD, b.dD, "dD"}, {a.dz, b.dz, "dz"},
                                  {a.ddelta_bias, b.ddelta_bias, "ddelta_bias"},
                                  {a.dmask, b.dmask, "dmask"}};
    for (const auto& [x, y, name] : pairs)
      EXPECT_TRUE(torch::equal(x, y)) << name << " differs between two deterministic runs ("
                                      << dtype_name(dtype) << ")";
    const auto atomic = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, false);
    const double tol = dtype == at::kFloat ? 1e-6 : 1e-2;  // bf16: one flip [Rounding-flip bounds]
    EXPECT_LT(test::rel_err(atomic.dB, a.dB), tol);
    EXPECT_LT(test::rel_err(atomic.dC, a.dC), tol);
    // The fp32 parameter gradients: per-batch partials summed in order vs atomic adds.
    for (const auto& [x, y, name] : std::vector<Pair>{{atomic.dA, a.dA, "dA"}, {atomic.dD, a.dD, "dD"},
                                                      {atomic.ddelta_bias, a.ddelta_bias, "ddelta_bias"},
                                                      {atomic.dmask, a.dmask, "dmask"}})
      EXPECT_LT(test::rel_err(x, y), 1e-5) << name << " (" << dtype_name(dtype) << ")";
    // [dB | dC] written time-major into a caller's (B, L, 2N) view, as the fused mixer asks.
    for (bool det : {false, true}) {
      at::Tensor buf = torch::full({c.b, c.l, 2 * c.n + 8}, std::numeric_limits<float>::quiet_NaN(),
                                   s.dout_lo.options());
      ops::cuda::ScanBackwardOptions o;
      o.deterministic = det;
      o.dBC_into = buf.narrow(2, 3, 2 * c.n);
      const auto g = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, o);
      EXPECT_FALSE(g.dB.defined());
      const at::Tensor ref_b = (det ? a : atomic).dB, ref_c = (det ? a : atomic).dC;
      const double t2 = det ? 0.0 : tol;
      EXPECT_LE(test::rel_err(buf.narrow(2, 3, c.n), ref_b.transpose(1, 2)), t2) << "dBC_into dB";
      EXPECT_LE(test::rel_err(buf.narrow(2, 3 + c.n, c.n), ref_c.transpose(1, 2)), t2) << "dBC_into dC";
      EXPECT_TRUE(buf.narrow(2, 0, 3).isnan().all().item<bool>()) << "dBC_into wrote outside its view";
      EXPECT_TRUE(buf.narrow(2, 3 + 2 * c.n, 5).isnan().all().item<bool>()) << "dBC_into wrote outside its view";
    }
  }
}

// The choice ([Note: scan algorithm choice] in scan_params.h): the eight-lane forward for N ≤ 16 at
// 2560 ≤ B·E ≤ 6144 under either plan, with the segmented four-lane backward up to B·E = 4096 and the
// eight-lane one above; above that dense exactly when the backward's 32-channel blocks
// fit one wave at three per SM (one-wave under the low-memory plan), the four-per-SM
// state-sequential beyond; time-parallel below B·E = 2560 (wide) and for N > 16 (wide below 4096).
// The eight-lane backward in 8 time segments at B·E ≤ 4096.
TEST(ScanKernelModes, AlgorithmChoiceFollowsOccupancyAndPlan) {
  using ops::cuda::choose_scan_algorithm;
  const auto kAuto = ops::ScanPlan::kAuto, kLow = ops::ScanPlan::kLowMemory;
  EXPECT_EQ(choose_scan_algorithm(8, 1536, 16, 132, kAuto), ScanAlgorithm::kStateSequentialDense);  // 384 ≤ 396
  EXPECT_EQ(choose_scan_algorithm(8, 1568, 16, 132, kAuto), ScanAlgorithm::kStateSequentialDense);  // 8 × 49 = 392
  EXPECT_EQ(choose_scan_algorithm(8, 1570, 16, 132, kAuto), ScanAlgorithm::kStateSequential);       // 8 × 50 = 400
  EXPECT_EQ(choose_scan_algorithm(8, 2048, 16, 132, kAuto), ScanAlgorithm::kStateSequential);       // 512 blocks
  EXPECT_EQ(choose_scan_algorithm(16, 1024, 16, 132, kAuto), ScanAlgorithm::kStateSequential);
  EXPECT_EQ(choose_scan_algorithm(8, 1536, 16, 0, kAuto), ScanAlgorithm::kStateSequential);  // SM count unknown
  EXPECT_EQ(choose_scan_algorithm(8, 1536, 64, 132, kAuto), ScanAlgorithm::kTimeParallel);   // N > 16
  const auto kEight = ScanAlgorithm::kStateSequentialEightLanes;
  const auto kSegmented = ScanAlgorithm::kStateSequentialSegmented;
  EXPECT_EQ(choose_scan_algorithm(1, 4096, 16, 132, kAuto), kSegmented);                           // B·E = 4096
  EXPECT_EQ(choose_scan_algorithm(8, 512, 16, 132, kAuto), kSegmented);                            // 370M, 75 % pruned
  EXPECT_EQ(choose_scan_algorithm(8, 384, 16, 132, kAuto), kSegmented);                            // 130M, 75 % pruned
  EXPECT_EQ(choose_scan_algorithm(8, 513, 16, 132, kAuto), kEight);                                // B·E = 4104
  EXPECT_EQ(choose_scan_algorithm(8, 768, 16, 132, kAuto), kEight);                                // 130M, 50 % pruned
  EXPECT_EQ(choose_scan_algorithm(6, 1024, 16, 132, kAuto), kEight);                               // B·E = 6144
  EXPECT_EQ(choose_scan_algorithm(8, 1024, 16, 132, kAuto), ScanAlgorithm::kStateSequentialDense);  // 370M, 50 % pruned
  EXPECT_EQ(choose_scan_algorithm(1, 2560, 16, 132, kAuto), kSegmented);
  EXPECT_EQ(choose_scan_algorithm(1, 2559, 16, 132, kAuto), ScanAlgorithm::kTimeParallelWide);
  EXPECT_EQ(choose_scan_algorithm(1, 3072, 16, 132, kAuto), kSegmented);
  EXPECT_EQ(choose_scan_algorithm(8, 512, 17, 132, kAuto), ScanAlgorithm::kTimeParallel);          // N > 16
  EXPECT_EQ(choose_scan_algorithm(8, 256, 16, 132, kAuto), ScanAlgorithm::kTimeParallelWide);       // B·E = 2048
  EXPECT_EQ(choose_scan_algorithm(1, 1536, 16, 132, kAuto), ScanAlgorithm::kTimeParallelWide);
  EXPECT_EQ(choose_scan_algorithm(1, 3072, 64, 132, kAuto), ScanAlgorithm::kTimeParallelWide);      // N > 16: split at 4096
  // The low-memory plan changes only the dense choice.
  EXPECT_EQ(choose_scan_algorithm(8, 1536, 16, 132, kLow), ScanAlgorithm::kStateSequentialOneWave);
  EXPECT_EQ(choose_scan_algorithm(8, 2048, 16, 132, kLow), ScanAlgorithm::kStateSequential);
  EXPECT_EQ(choose_scan_algorithm(1, 8192, 16, 132, kLow), ScanAlgorithm::kStateSequentialOneWave);
  EXPECT_EQ(choose_scan_algorithm(8, 384, 16, 132, kLow), kSegmented);
  EXPECT_EQ(choose_scan_algorithm(8, 768, 16, 132, kLow), kEight);
  // The backward's time segments (scan_backward_time_segments): 8 for the eight-lane one at B·E ≤ 4096.
  using ops::cuda::scan_backward_time_segments;
  EXPECT_EQ(scan_backward_time_segments(kEight, 8, 384, 132), 8);   // 130M, 75 % pruned
  EXPECT_EQ(scan_backward_time_segments(kEight, 1, 2560, 132), 8);
  EXPECT_EQ(scan_backward_time_segments(kEight, 8, 392, 132), 8);   // B·E = 3136
  EXPECT_EQ(scan_backward_time_segments(kEight, 8, 512, 132), 8);   // 370M, 75 % pruned
  EXPECT_EQ(scan_backward_time_segments(kEight, 8, 520, 132), 1);   // B·E = 4160
  EXPECT_EQ(scan_backward_time_segments(kEight, 8, 768, 132), 1);   // 130M, 50 % pruned
  EXPECT_EQ(scan_backward_time_segments(ScanAlgorithm::kTimeParallelWide, 8, 256, 132), 1);
  // The dense-state backward by its wave fill (three blocks per SM): 384 blocks of 396 (dense 130M) walk
  // once; 288 (130M at 25 %) take 4 segments in 3 waves, 0.75 of a walk; 256 (370M at 50 %) fit two per
  // SM: once; 320 (8 × 1,280) 4 segments would need 4 waves: once; an unknown SM count: once.
  const auto kDense = ScanAlgorithm::kStateSequentialDense;
  EXPECT_EQ(scan_backward_time_segments(kDense, 8, 1536, 132), 1);
  EXPECT_EQ(scan_backward_time_segments(kDense, 8, 1152, 132), 4);
  EXPECT_EQ(scan_backward_time_segments(kDense, 8, 1024, 132), 1);
  EXPECT_EQ(scan_backward_time_segments(kDense, 8, 1056, 132), 1);  // 264 blocks: two per SM
  EXPECT_EQ(scan_backward_time_segments(kDense, 8, 1088, 132), 4);  // 272: a third on 8 SMs
  EXPECT_EQ(scan_backward_time_segments(kDense, 8, 1280, 132), 1);
  EXPECT_EQ(scan_backward_time_segments(kDense, 8, 1152, 0), 1);
  // The segmented algorithm: 4 segments; its backward's blocks are the four-lane ones.
  EXPECT_EQ(scan_backward_time_segments(kSegmented, 8, 512, 132), 4);
  EXPECT_EQ(ops::cuda::scan_state_chunk(kSegmented), ops::cuda::kSeqChunk);
  EXPECT_EQ(ops::cuda::scan_slice_channels(kSegmented), ops::cuda::kSeqBwdChannels);
  for (int64_t be : {2048, 4097, 6144, 9216, 16384})
    EXPECT_NE(choose_scan_algorithm(1, be, 16, 132, kAuto), kSegmented) << be;
  // The ops option scan_narrow_backward: four_lanes takes the segmented algorithm at every B·E ≥ 2560
  // for N ≤ 16 (past the narrow widths too), eight_lanes the eight-lane one across the narrow widths.
  const auto kFour = ops::NarrowScanBackward::kFourLanes, kEightOption = ops::NarrowScanBackward::kEightLanes;
  for (int64_t be : {2560, 3072, 4096, 6144}) {
    EXPECT_EQ(choose_scan_algorithm(1, be, 16, 132, kAuto, kFour), kSegmented) << be;
    EXPECT_EQ(choose_scan_algorithm(1, be, 16, 132, kLow, kFour), kSegmented) << be;
    EXPECT_EQ(choose_scan_algorithm(1, be, 16, 132, kAuto, kEightOption), kEight) << be;
  }
  EXPECT_EQ(choose_scan_algorithm(1, 2559, 16, 132, kAuto, kEightOption), ScanAlgorithm::kTimeParallelWide);
  EXPECT_EQ(choose_scan_algorithm(1, 2559, 16, 132, kAuto, kFour), ScanAlgorithm::kTimeParallelWide);
  EXPECT_EQ(choose_scan_algorithm(1, 6145, 16, 132, kAuto, kFour), kSegmented);
  EXPECT_EQ(choose_scan_algorithm(8, 1152, 16, 132, kAuto, kFour), kSegmented);   // 130M, 25 % pruned
  EXPECT_EQ(choose_scan_algorithm(8, 1536, 16, 132, kLow, kFour), kSegmented);    // 130M dense
  EXPECT_EQ(choose_scan_algorithm(8, 1152, 16, 132, kAuto), ScanAlgorithm::kStateSequentialDense);
  EXPECT_EQ(choose_scan_algorithm(1, 6145, 16, 132, kAuto, kEightOption), ScanAlgorithm::kStateSequentialDense);
  EXPECT_EQ(choose_scan_algorithm(8, 512, 17, 132, kAuto, kFour), ScanAlgorithm::kTimeParallel);  // N > 16
  EXPECT_EQ(ops::cuda::scan_state_chunk(kEight), ops::cuda::kSeqChunk);
  EXPECT_EQ(ops::cuda::scan_slice_channels(kEight), ops::cuda::kSeqEightLaneChannels);
  EXPECT_EQ(ops::cuda::scan_state_chunk(ScanAlgorithm::kStateSequentialDense), ops::cuda::kSeqSub);
  EXPECT_EQ(ops::cuda::scan_state_chunk(ScanAlgorithm::kStateSequentialOneWave), ops::cuda::kSeqChunk);
  EXPECT_EQ(ops::cuda::scan_state_chunk(ScanAlgorithm::kStateSequential), ops::cuda::kSeqChunk);
  EXPECT_EQ(ops::cuda::scan_state_chunk(ScanAlgorithm::kTimeParallel), ops::cuda::kScanChunk);
  // Inference forwards in the channel-last layout: time_parallel where the pair takes wide at
  // 1024 ≤ B·E < 2560 and N ≤ 16.
  using ops::cuda::choose_scan_forward_algorithm;
  EXPECT_EQ(choose_scan_forward_algorithm(1, 1536, 16, 132, kAuto, false), ScanAlgorithm::kTimeParallel);
  EXPECT_EQ(choose_scan_forward_algorithm(1, 2048, 16, 132, kAuto, false), ScanAlgorithm::kTimeParallel);
  EXPECT_EQ(choose_scan_forward_algorithm(1, 384, 16, 132, kAuto, false), ScanAlgorithm::kTimeParallelWide);
  EXPECT_EQ(choose_scan_forward_algorithm(1, 1536, 64, 132, kAuto, false), ScanAlgorithm::kTimeParallelWide);
  EXPECT_EQ(choose_scan_forward_algorithm(8, 1536, 16, 132, kAuto, false), ScanAlgorithm::kStateSequentialDense);
  EXPECT_EQ(choose_scan_forward_algorithm(1, 3072, 16, 132, kAuto, false), kEight);
  // Time-contiguous: the staged block forward below B·E = 4096 for N ≤ 16.
  EXPECT_EQ(choose_scan_forward_algorithm(1, 1536, 16, 132, kAuto, true), ScanAlgorithm::kBlockForwardStaged);
  EXPECT_EQ(choose_scan_forward_algorithm(1, 2048, 16, 132, kLow, true), ScanAlgorithm::kBlockForwardStaged);
  EXPECT_EQ(choose_scan_forward_algorithm(2, 2048, 16, 132, kAuto, true), kEight);
  EXPECT_EQ(choose_scan_forward_algorithm(2, 4096, 16, 132, kAuto, true), ScanAlgorithm::kStateSequentialDense);
  EXPECT_EQ(choose_scan_forward_algorithm(1, 1536, 17, 132, kAuto, true), ScanAlgorithm::kTimeParallelWide);
  EXPECT_FALSE(ops::cuda::scan_algorithm_supports(ScanAlgorithm::kBlockForward, 17));
  EXPECT_FALSE(ops::cuda::scan_algorithm_has_backward(ScanAlgorithm::kBlockForward));
  EXPECT_FALSE(ops::cuda::scan_algorithm_supports(ScanAlgorithm::kBlockForwardStaged, 17));
  EXPECT_FALSE(ops::cuda::scan_algorithm_has_backward(ScanAlgorithm::kBlockForwardStaged));
  EXPECT_FALSE(ops::cuda::scan_algorithm_supports(ScanAlgorithm::kStateSequential, 17));
  EXPECT_TRUE(ops::cuda::scan_algorithm_supports(ScanAlgorithm::kTimeParallelWide, 64));
}

// The production algorithms compute the same numbers (atomic and deterministic backward).
TEST(ScanKernelModes, AllAlgorithmsAgree) {
  MCD_SKIP_IF_NO_CUDA();
  const ScanCase c{2, 19, 700, 16, true, true, true, true, true, true};
  const std::vector<ScanAlgorithm> algorithms = algorithms_for(c.n);
  ASSERT_EQ(algorithms.size(), size_t(ops::cuda::kTrainableScanAlgorithmCount));
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const ScanTriple s = scan_triple(scan_values(c, 79), dtype, true);
    const PoisonOutputs poison;
    std::vector<ops::cuda::ScanCudaForward> fwd;
    std::vector<ops::cuda::ScanCudaGrads> bwd;
    for (ScanAlgorithm algorithm : algorithms) {
      fwd.push_back(ops::cuda::selective_scan_cuda_forward(s.kernel, algorithm, true, true));
      bwd.push_back(ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.back().states, s.dout_lo, true));
    }
    const double tol = dtype == at::kFloat ? 1e-6 : 1e-2;  // bf16: [Rounding-flip bounds]
    // fp32 sums in another order (the state-sequential ones walk time per lane, the time-parallel
    // ones scan over lanes): the recurrence over L = 700 steps, ~L·2^-24 ≈ 4e-5 worst case per
    // element, ~√L·2^-24 ≈ 2e-6 typical.
    const double f32_tol = 1e-5;
    for (size_t v = 1; v < algorithms.size(); ++v) {
      const char* name = ops::cuda::scan_algorithm_name(algorithms[v]);
      EXPECT_LT(test::rel_err(fwd[v].out, fwd[0].out), dtype == at::kFloat ? f32_tol : tol) << name;
      EXPECT_LT(test::rel_err(fwd[v].last_state, fwd[0].last_state), f32_tol) << name;
      const double gt = dtype == at::kFloat ? f32_tol : tol;
      EXPECT_LT(test::rel_err(bwd[v].du, bwd[0].du), gt) << name;
      EXPECT_LT(test::rel_err(bwd[v].ddelta, bwd[0].ddelta), gt) << name;
      EXPECT_LT(test::rel_err(bwd[v].dB, bwd[0].dB), gt) << name;
      EXPECT_LT(test::rel_err(bwd[v].dC, bwd[0].dC), gt) << name;
      EXPECT_LT(test::rel_err(bwd[v].dA, bwd[0].dA), f32_tol) << name;
      EXPECT_LT(test::rel_err(bwd[v].dmask, bwd[0].dmask), f32_tol) << name;
    }
  }
}

// The time-segmented backward ([Note: time-segmented backward] in selective_scan_seq_bwd.cuh)
// gives the gradients of the one walk: state_sequential_eight_lanes, state_sequential_segmented
// (the four-lane backward from the eight-lane forward's states) and state_sequential_dense (its
// segments start from the forward's states of every 8 steps), L = 700 (22 tiles) in 2, 3,
// 5 and 30 asked segments (22 runs of one tile; 5 → 5 runs with a short last one), atomic and
// deterministic, fp32 and bf16, z, D, bias, mask and softplus on, the model's strides; N = 16 and
// N = 5 (the carry kernel's chains past N are written nowhere); E = 19 leaves most of a carry block's
// 32 channels empty, and the last segment's earliest 16-step group holds 12 steps (L = 700).
TEST(ScanKernelModes, TimeSegmentedBackwardGivesTheOneWalksGradients) {
  MCD_SKIP_IF_NO_CUDA();
  for (const ScanCase c : {ScanCase{2, 19, 700, 16, true, true, true, true, true, true},
                           ScanCase{2, 19, 700, 5, true, true, true, true, true, true}}) {
    EXPECT_EQ(ops::cuda::scan_time_segments(700, 30), 22);
    EXPECT_EQ(ops::cuda::scan_time_segments(700, 5), 5);   // 5 tiles each, the last 2
    EXPECT_EQ(ops::cuda::scan_time_segments(700, 4), 4);   // 6, 6, 6, 4 tiles
    EXPECT_EQ(ops::cuda::scan_time_segments(700, 7), 6);   // 4 tiles each: 6 runs cover 22
    EXPECT_EQ(ops::cuda::scan_time_segments(31, 8), 1);
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      const ScanTriple s = scan_triple(scan_values(c, c.n == 16 ? 83 : 84), dtype, true);
      const PoisonOutputs poison;
      // The carries compose the walk's own exp(ΔA) factors and FMAs in another order: fp32 results
      // differ by ~L·2^-24 ≈ 4e-5 at worst per element, ~√L·2^-24 ≈ 2e-6 typical (as in
      // AllAlgorithmsAgree); outputs rounded to bf16 differ by rounding flips ([Rounding-flip bounds]).
      const double f32_tol = 1e-5, act_tol = dtype == at::kFloat ? f32_tol : 1e-2;
      for (ScanAlgorithm algorithm : {ScanAlgorithm::kStateSequentialEightLanes, ScanAlgorithm::kStateSequentialSegmented,
                                      ScanAlgorithm::kStateSequentialDense}) {
        const auto fwd = ops::cuda::selective_scan_cuda_forward(s.kernel, algorithm, true, false);
        for (bool det : {false, true}) {
          ops::cuda::ScanBackwardOptions one;
          one.deterministic = det;
          const auto g1 = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, one);
          for (int64_t segments : {2, 3, 5, 30}) {
            ops::cuda::ScanBackwardOptions o = one;
            o.time_segments = segments;
            const auto g = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, o);
            const std::string what = cat(ops::cuda::scan_algorithm_name(algorithm), " ", segments, " segments ",
                                         det ? "deterministic " : "atomic ", dtype_name(dtype), " N ", c.n);
            EXPECT_LT(test::rel_err(g.du, g1.du), act_tol) << what;
            EXPECT_LT(test::rel_err(g.ddelta, g1.ddelta), act_tol) << what;
            EXPECT_LT(test::rel_err(g.dz, g1.dz), act_tol) << what;
            EXPECT_LT(test::rel_err(g.dB, g1.dB), act_tol) << what;
            EXPECT_LT(test::rel_err(g.dC, g1.dC), act_tol) << what;
            EXPECT_LT(test::rel_err(g.dA, g1.dA), f32_tol) << what;
            EXPECT_LT(test::rel_err(g.dD, g1.dD), f32_tol) << what;
            EXPECT_LT(test::rel_err(g.ddelta_bias, g1.ddelta_bias), f32_tol) << what;
            EXPECT_LT(test::rel_err(g.dmask, g1.dmask), f32_tol) << what;
            if (det) {  // deterministic: the same bits again
              const auto again = ops::cuda::selective_scan_cuda_backward(s.kernel, algorithm, fwd.states, s.dout_lo, o);
              EXPECT_TRUE(torch::equal(again.du, g.du) && torch::equal(again.ddelta, g.ddelta) &&
                          torch::equal(again.dB, g.dB) && torch::equal(again.dA, g.dA) &&
                          torch::equal(again.dmask, g.dmask))
                  << what;
            }
          }
        }
      }
      // Only the eight-lane, segmented and dense-state backwards take segments: the others refuse them.
      for (ScanAlgorithm other : {ScanAlgorithm::kTimeParallel, ScanAlgorithm::kStateSequential,
                                  ScanAlgorithm::kStateSequentialOneWave}) {
        const auto f = ops::cuda::selective_scan_cuda_forward(s.kernel, other, true, false);
        ops::cuda::ScanBackwardOptions o;
        o.time_segments = 2;
        EXPECT_THROW(ops::cuda::selective_scan_cuda_backward(s.kernel, other, f.states, s.dout_lo, o), std::exception)
            << ops::cuda::scan_algorithm_name(other);
      }
    }
  }
}

// The autograd node chooses once in the forward under the options' scan plan and keeps the choice
// for the backward: changing the plan between forward and backward changes nothing, and the
// low-memory plan's run equals the raw kernels of state_sequential_one_wave.
TEST(ScanKernelModes, AutogradKeepsTheForwardsAlgorithmAndPlan) {
  MCD_SKIP_IF_NO_CUDA();
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  // B·E = 8192 (above the eight-lane range): 2 × 128 blocks, one wave at three per SM.
  const ScanCase c{2, 4096, 130, 16, true, true, true, true, true, true};
  ASSERT_LE(2 * 128, 3 * sms);
  const ScanValues v = scan_values(c, 81);
  for (ops::ScanPlan plan : {ops::ScanPlan::kAuto, ops::ScanPlan::kLowMemory}) {
    const ScanAlgorithm expected = plan == ops::ScanPlan::kAuto ? ScanAlgorithm::kStateSequentialDense
                                                                : ScanAlgorithm::kStateSequentialOneWave;
    ScanTriple s = scan_triple(v, at::kBFloat16, true);
    kernel_inputs_want_grad(s, /*mask=*/true);
    at::Tensor out;
    {
      const ops::ScopedOpsOptions scope(with_scan_plan(plan));
      EXPECT_EQ(ops::cuda::scan_algorithm_for(s.kernel), expected);
      out = ops::selective_scan(s.kernel);
    }
    {
      // The other plan while the backward runs: the node must not look again.
      const ops::ScopedOpsOptions scope(
          with_scan_plan(plan == ops::ScanPlan::kAuto ? ops::ScanPlan::kLowMemory : ops::ScanPlan::kAuto));
      out.backward(s.dout_lo);
    }
    ScanTriple raw = scan_triple(v, at::kBFloat16, true);
    const auto fwd = ops::cuda::selective_scan_cuda_forward(raw.kernel, expected, true, false);
    // The direct call with the time segments the node asks for (the dense-state backward's by its wave
    // fill: 256 blocks on 132 SMs walk once; one-wave: none).
    ops::cuda::ScanBackwardOptions o;
    o.time_segments = ops::cuda::scan_backward_time_segments(expected, 2, 4096, sms);
    const auto g = ops::cuda::selective_scan_cuda_backward(raw.kernel, expected, fwd.states, raw.dout_lo, o);
    const char* name = ops::scan_plan_name(plan);
    EXPECT_TRUE(torch::equal(out, fwd.out)) << name;
    EXPECT_LT(test::rel_err(s.kernel.u.grad(), g.du), 1e-6) << name;
    EXPECT_LT(test::rel_err(s.kernel.delta.grad(), g.ddelta), 1e-6) << name;
    EXPECT_LT(test::rel_err(s.kernel.z.grad(), g.dz), 1e-6) << name;
    // Atomic sums: equal up to the order of the adds.
    EXPECT_LT(test::rel_err(s.kernel.B.grad(), g.dB), 1e-2) << name;
    EXPECT_LT(test::rel_err(s.kernel.A.grad(), g.dA), 1e-5) << name;
    EXPECT_LT(test::rel_err(s.kernel.mask.grad(), g.dmask), 1e-5) << name;
  }
}

// The autograd node's scan of case c runs `algorithm`'s backward in `segments` time segments: its gradients
// are those of the direct call with as many segments (the same kernels: per-channel gradients to the bit's
// neighbourhood, atomic sums up to their order) and within TimeSegmentedBackwardGivesTheOneWalksGradients's
// bounds of the one walk's (bf16 outputs: 1e-2). Were the node to walk once, its bf16 du would differ from
// the segmented call by rounding flips (≫ 1e-6). With the option scan_time_segments off the node walks L
// once: the one walk's du, dΔ and dz (plain stores, no atomics), bit for bit.
void expect_autograd_runs_time_segments(const ScanCase& c, ScanAlgorithm algorithm, int64_t segments, uint64_t seed) {
  const ScanValues v = scan_values(c, seed);
  ScanTriple s = scan_triple(v, at::kBFloat16, true);
  kernel_inputs_want_grad(s, /*mask=*/false);
  ASSERT_EQ(ops::cuda::scan_algorithm_for(s.kernel), algorithm);
  ASSERT_EQ(ops::cuda::backward_time_segments(algorithm, c.b, c.e, s.kernel.u.device()), segments);
  const at::Tensor out = ops::selective_scan(s.kernel);
  out.backward(s.dout_lo);
  ScanTriple raw = scan_triple(v, at::kBFloat16, true);
  const auto fwd = ops::cuda::selective_scan_cuda_forward(raw.kernel, algorithm, true, false);
  ops::cuda::ScanBackwardOptions split;
  split.time_segments = segments;
  const auto gs = ops::cuda::selective_scan_cuda_backward(raw.kernel, algorithm, fwd.states, raw.dout_lo, split);
  const auto g1 = ops::cuda::selective_scan_cuda_backward(raw.kernel, algorithm, fwd.states, raw.dout_lo, false);
  EXPECT_TRUE(torch::equal(out, fwd.out));
  EXPECT_LT(test::rel_err(s.kernel.u.grad(), gs.du), 1e-6);
  EXPECT_LT(test::rel_err(s.kernel.delta.grad(), gs.ddelta), 1e-6);
  EXPECT_LT(test::rel_err(s.kernel.z.grad(), gs.dz), 1e-6);
  EXPECT_LT(test::rel_err(s.kernel.B.grad(), gs.dB), 1e-2);  // atomic sums: up to the order of the adds
  EXPECT_LT(test::rel_err(s.kernel.A.grad(), gs.dA), 1e-5);
  EXPECT_LT(test::rel_err(s.kernel.u.grad(), g1.du), 1e-2);
  EXPECT_LT(test::rel_err(s.kernel.delta.grad(), g1.ddelta), 1e-2);
  EXPECT_LT(test::rel_err(s.kernel.A.grad(), g1.dA), 1e-5);
  ops::OpsOptions one_walk = ops::ops_options();
  one_walk.scan_time_segments = false;
  const ops::ScopedOpsOptions scoped(one_walk);
  EXPECT_EQ(ops::cuda::backward_time_segments(algorithm, c.b, c.e, s.kernel.u.device()), 1);
  ScanTriple off = scan_triple(v, at::kBFloat16, true);
  kernel_inputs_want_grad(off, /*mask=*/false);
  ops::selective_scan(off.kernel).backward(off.dout_lo);
  EXPECT_TRUE(torch::equal(off.kernel.u.grad().to(at::kFloat), g1.du.to(at::kFloat)));
  EXPECT_TRUE(torch::equal(off.kernel.delta.grad().to(at::kFloat), g1.ddelta.to(at::kFloat)));
  EXPECT_TRUE(torch::equal(off.kernel.z.grad().to(at::kFloat), g1.dz.to(at::kFloat)));
}

// At B·E ≤ 4096 the autograd node runs the eight-lane backward in 8 time segments
// (scan_backward_time_segments).
TEST(ScanKernelModes, AutogradRunsTheEightLaneBackwardInTimeSegments) {
  MCD_SKIP_IF_NO_CUDA();
  ops::OpsOptions eight_lanes = ops::ops_options();
  eight_lanes.scan_narrow_backward = ops::NarrowScanBackward::kEightLanes;  // (auto takes four lanes here)
  const ops::ScopedOpsOptions eight_scope(eight_lanes);
  const ScanAlgorithm eight = ScanAlgorithm::kStateSequentialEightLanes;
  ASSERT_EQ(ops::cuda::scan_backward_time_segments(eight, 8, 384, 132), 8);
  expect_autograd_runs_time_segments(ScanCase{8, 384, 300, 16, true, true, true, true, true, false}, eight, 8, 85);
}

// Where the dense-state backward's blocks fill under 3/4 of their one wave (130M at 25 % pruned: 8 × 1,152,
// 288 blocks of 396 on 132 SMs) the autograd node runs it in time segments (dense_backward_time_segments).
// Skipped on a GPU whose SM count gives this shape one segment.
TEST(ScanKernelModes, AutogradRunsTheDenseStateBackwardInTimeSegmentsWhereItsWaveIsPartFull) {
  MCD_SKIP_IF_NO_CUDA();
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const ScanAlgorithm dense = ScanAlgorithm::kStateSequentialDense;
  const int64_t segments = ops::cuda::scan_backward_time_segments(dense, 8, 1152, sms);
  if (segments == 1) GTEST_SKIP() << "8 × 1152 walks once on " << sms << " SMs";
  expect_autograd_runs_time_segments(ScanCase{8, 1152, 300, 16, true, true, true, true, true, false}, dense, segments,
                                     86);
}

// Under the ops option scan_narrow_backward four_lanes (and auto at B·E ≤ 4096) the node runs
// state_sequential_segmented at a pruned width: the eight-lane forward (the same output bit for bit as
// under eight_lanes), and
// the four-lane backward in 4 time segments — the gradients of the direct call with 4 segments (the
// same kernels: per-channel gradients to the bit's neighbourhood, atomic sums up to their order) and,
// against eight_lanes' gradients, within AllAlgorithmsAgree's bounds (bf16 activations'
// gradients 1e-2, [Rounding-flip bounds]; fp32 parameter gradients 1e-5: the two backwards sum the same
// terms in other orders, where a wrong carry or saved state would be off by O(1)).
TEST(ScanKernelModes, NarrowBackwardOptionRunsTheSegmentedFourLaneBackward) {
  MCD_SKIP_IF_NO_CUDA();
  const ScanCase c{8, 384, 300, 16, true, true, true, true, true, false};
  const ScanAlgorithm segmented = ScanAlgorithm::kStateSequentialSegmented;
  const ScanValues v = scan_values(c, 86);
  auto with_grads = [&] {
    ScanTriple s = scan_triple(v, at::kBFloat16, true);
    kernel_inputs_want_grad(s, /*mask=*/false);
    return s;
  };
  ScanTriple eight = with_grads();
  at::Tensor out_eight;
  {
    ops::OpsOptions eight_lanes = ops::ops_options();
    eight_lanes.scan_narrow_backward = ops::NarrowScanBackward::kEightLanes;
    const ops::ScopedOpsOptions eight_scope(eight_lanes);
    ASSERT_EQ(ops::cuda::scan_algorithm_for(eight.kernel), ScanAlgorithm::kStateSequentialEightLanes);
    out_eight = ops::selective_scan(eight.kernel);
    out_eight.backward(eight.dout_lo);
  }
  {
    ScanTriple by_default = with_grads();  // the option's auto: four lanes at B·E = 3,072
    EXPECT_EQ(ops::cuda::scan_algorithm_for(by_default.kernel), segmented);
  }
  ops::OpsOptions four = ops::ops_options();
  four.scan_narrow_backward = ops::NarrowScanBackward::kFourLanes;
  const ops::ScopedOpsOptions scoped(four);
  ScanTriple s = with_grads();
  ASSERT_EQ(ops::cuda::scan_algorithm_for(s.kernel), segmented);
  const at::Tensor out = ops::selective_scan(s.kernel);
  out.backward(s.dout_lo);
  EXPECT_TRUE(torch::equal(out, out_eight));
  ScanTriple raw = scan_triple(v, at::kBFloat16, true);
  const auto fwd = ops::cuda::selective_scan_cuda_forward(raw.kernel, segmented, true, false);
  ops::cuda::ScanBackwardOptions in_segments;
  in_segments.time_segments = 4;
  const auto g4 = ops::cuda::selective_scan_cuda_backward(raw.kernel, segmented, fwd.states, raw.dout_lo, in_segments);
  EXPECT_LT(test::rel_err(s.kernel.u.grad(), g4.du), 1e-6);
  EXPECT_LT(test::rel_err(s.kernel.delta.grad(), g4.ddelta), 1e-6);
  EXPECT_LT(test::rel_err(s.kernel.z.grad(), g4.dz), 1e-6);
  EXPECT_LT(test::rel_err(s.kernel.B.grad(), g4.dB), 1e-2);  // atomic sums: up to the order of the adds
  EXPECT_LT(test::rel_err(s.kernel.A.grad(), g4.dA), 1e-5);
  EXPECT_LT(test::rel_err(s.kernel.u.grad(), eight.kernel.u.grad()), 1e-2);
  EXPECT_LT(test::rel_err(s.kernel.delta.grad(), eight.kernel.delta.grad()), 1e-2);
  EXPECT_LT(test::rel_err(s.kernel.z.grad(), eight.kernel.z.grad()), 1e-2);
  EXPECT_LT(test::rel_err(s.kernel.B.grad(), eight.kernel.B.grad()), 1e-2);
  EXPECT_LT(test::rel_err(s.kernel.C.grad(), eight.kernel.C.grad()), 1e-2);
  EXPECT_LT(test::rel_err(s.kernel.A.grad(), eight.kernel.A.grad()), 1e-5);
  EXPECT_LT(test::rel_err(s.kernel.D.grad(), eight.kernel.D.grad()), 1e-5);
  EXPECT_LT(test::rel_err(s.kernel.delta_bias.grad(), eight.kernel.delta_bias.grad()), 1e-5);
}

TEST(ScanKernelModes, DispatchAutogradFinalStateAndCompositeSwitch) {
  MCD_SKIP_IF_NO_CUDA();
  const ScanCase c{2, 13, 300, 16, true, true, true, true, true, false};
  const ScanValues v = scan_values(c, 78);
  ScanTriple s = scan_triple(v, at::kFloat, false);
  ASSERT_EQ(ops::backend(), ops::Backend::kAuto);
  // Through ops::selective_scan (the autograd node) = the raw kernels.
  const at::Tensor out = ops::selective_scan(s.plain);
  out.backward(s.dout_lo);
  ScanTriple raw = scan_triple(v, at::kFloat, false);
  const ScanAlgorithm algorithm = ops::cuda::scan_algorithm_for(raw.kernel);
  const auto fwd = ops::cuda::selective_scan_cuda_forward(raw.kernel, algorithm, true, true);
  const auto g = ops::cuda::selective_scan_cuda_backward(raw.kernel, algorithm, fwd.states, raw.dout_lo, false);
  EXPECT_LT(test::rel_err(out, fwd.out), 1e-7);
  EXPECT_LT(test::rel_err(s.plain.u.grad(), g.du), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.delta.grad(), g.ddelta), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.A.grad(), g.dA), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.B.grad(), g.dB), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.C.grad(), g.dC), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.D.grad(), g.dD), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.z.grad(), g.dz), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.delta_bias.grad(), g.ddelta_bias), 1e-6);
  EXPECT_LT(test::rel_err(s.plain.mask.grad(), g.dmask), 1e-6);
  // selective_scan_with_state on CUDA: the kernel's final state.
  const auto [out2, last] = ops::selective_scan_with_state(raw.kernel);
  const auto ref = ops::cpu::selective_scan_forward(raw.ref.u, raw.ref.delta, raw.ref.A, raw.ref.B,
                                                    raw.ref.C, raw.ref.D, raw.ref.z, raw.ref.delta_bias,
                                                    true, true, raw.ref.mask);
  EXPECT_EQ(last.scalar_type(), at::kFloat);
  EXPECT_LT(test::rel_err(last, ref.last_state), 1e-5);
  EXPECT_LT(test::rel_err(out2, ref.out), 1e-5);
  // Into a cache's buffer: written by the kernel (the same tensor comes back), the same bits.
  at::Tensor into = torch::full_like(last, 7.0);
  const auto [out3, last3] = ops::selective_scan_with_state(raw.kernel, into);
  EXPECT_TRUE(last3.is_same(into));
  EXPECT_TRUE(torch::equal(into, last));
  EXPECT_TRUE(torch::equal(out3, out2));
  // kComposite forces the composite on CUDA (the debugging switch): bit-equal to calling it.
  at::Tensor comp;
  {
    const ops::ScopedOpsOptions scope(with_backend(ops::Backend::kComposite));
    comp = ops::selective_scan(raw.kernel);
  }
  EXPECT_TRUE(torch::equal(comp, ops::selective_scan_composite(raw.kernel)));
  // float64 on CUDA is not a kernel dtype: it falls back to the composite.
  ops::ScanInputs f64 = raw.ref;
  for (at::Tensor* t : {&f64.u, &f64.delta, &f64.z, &f64.B, &f64.C, &f64.A, &f64.D, &f64.delta_bias, &f64.mask})
    if (t->defined()) *t = t->to(torch::kCUDA);
  EXPECT_LT(test::rel_err(ops::selective_scan(f64), ref.out), 1e-12);
}

// ------------------------------------------------------------------------- causal conv1d

struct ConvCase {
  int64_t b, e, l, k;
  bool bias, silu, channel_last;
};
// In test names: the case, not the struct's bytes (padding included, which changed from build to build).
void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << "B" << c.b << " E" << c.e << " L" << c.l << " K" << c.k << (c.bias ? " bias" : "") << (c.silu ? " silu" : "")
      << (c.channel_last ? " channel-last" : "");
}

class ConvKernel : public ::testing::TestWithParam<std::tuple<ConvCase, at::ScalarType>> {};

TEST_P(ConvKernel, ForwardAndGradientsWithinTwiceThePlainError) {
  MCD_SKIP_IF_NO_CUDA();
  const auto [c, dtype] = GetParam();
  std::printf("  conv %s B%ld E%ld L%ld K%ld%s%s%s\n", dtype_name(dtype), (long)c.b, (long)c.e,
              (long)c.l, (long)c.k, c.bias ? " bias" : "", c.silu ? " silu" : "",
              c.channel_last ? " channel-last" : " contiguous");
  torch::manual_seed(2000 + c.b + c.e * 7 + c.l * 13 + c.k);
  const auto f64 = torch::TensorOptions().dtype(at::kDouble);
  const auto cuda_lo = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
  const auto cuda_32 = torch::TensorOptions().device(torch::kCUDA).dtype(at::kFloat);
  const at::Tensor x_lo = torch::randn({c.b, c.e, c.l}, f64).to(cuda_lo);
  const at::Tensor w32 = (torch::randn({c.e, c.k}, f64) * 0.5).to(cuda_32);
  const at::Tensor b32 = c.bias ? torch::randn({c.e}, f64).to(cuda_32) : at::Tensor();
  const at::Tensor dout_lo = torch::randn({c.b, c.e, c.l}, f64).to(cuda_lo);
  auto back = [](const at::Tensor& t) { return t.defined() ? t.to(torch::kCPU, at::kDouble) : t; };
  const PoisonOutputs poison;

  const at::Tensor ref_out = ops::cpu::causal_conv1d_forward(back(x_lo), back(w32), back(b32), c.silu);
  const auto ref = ops::cpu::causal_conv1d_backward(back(dout_lo), back(x_lo), back(w32), back(b32), c.silu);

  const at::Tensor px = x_lo.clone().requires_grad_(true), pw = w32.clone().requires_grad_(true);
  const at::Tensor pb = c.bias ? b32.clone().requires_grad_(true) : at::Tensor();
  const at::Tensor plain_out = ops::causal_conv1d_composite(px, pw, pb, c.silu);
  plain_out.backward(dout_lo);

  const at::Tensor kx = c.channel_last ? channel_last_view(x_lo, c.e, cuda_lo) : x_lo;  // x of xz
  const at::Tensor out = ops::cuda::causal_conv1d_cuda_forward(kx, w32, b32, c.silu);
  // The model's layout for the gradient too (E % 4 == 0 then takes the channel-contiguous kernels).
  const at::Tensor kd = c.channel_last ? channel_last_view(dout_lo, 0, cuda_lo, true) : dout_lo;
  EXPECT_TRUE(c.channel_last && c.l > 1 ? out.stride(1) == 1 : out.is_contiguous()) << "layout of x";
  expect_rule("out", out, plain_out, ref_out, dtype);
  // Both weight-gradient modes: atomic block sums (the default) and partials summed in order.
  for (bool deterministic : {false, true}) {
    const auto g = ops::cuda::causal_conv1d_cuda_backward(kd, kx, w32, b32, c.silu, at::Tensor(), deterministic);
    const std::string mode = deterministic ? " (deterministic)" : " (atomic)";
    expect_rule("dx" + mode, g.dx, px.grad(), ref.dx, dtype);
    expect_rule("dweight" + mode, g.dweight, pw.grad(), ref.dweight, dtype);
    if (c.bias) expect_rule("dbias" + mode, g.dbias, pb.grad(), ref.dbias, dtype);
  }
}

const ConvCase kConvCases[] = {
    {2, 5, 1, 4, true, true, false},    {2, 3, 7, 2, false, true, true},
    {1, 33, 127, 3, true, false, false}, {2, 37, 2049, 4, true, true, true},
    {1, 7, 8192, 4, true, true, false}, {3, 65, 300, 1, true, true, true},
    {2, 64, 300, 4, true, true, true},  {1, 40, 2049, 3, false, true, false},
    // channel-contiguous kernels (E % 4 == 0): K = 1 … 4, L around the 32-step segments
    {1, 128, 33, 2, false, false, true}, {2, 8, 1, 3, true, true, true},
    {1, 256, 2049, 4, true, true, true}, {2, 12, 100, 1, true, false, true},
    {3, 1536, 64, 4, true, true, true},
};

INSTANTIATE_TEST_SUITE_P(Sizes, ConvKernel,
                         ::testing::Combine(::testing::ValuesIn(kConvCases),
                                            ::testing::Values(at::kFloat, at::kHalf, at::kBFloat16)));

// The model's layout (channel-contiguous, several blocks of segments per batch row): the
// deterministic weight gradients are bit-identical run to run, the atomic ones agree with them to
// fp32 rounding, and dx is the same in both modes.
TEST(ConvKernelModes, DeterministicModeIsBitIdenticalAndMatchesAtomics) {
  MCD_SKIP_IF_NO_CUDA();
  torch::manual_seed(6);
  const auto cuda_bf = torch::TensorOptions().device(torch::kCUDA).dtype(at::kBFloat16);
  const auto cuda_32 = torch::TensorOptions().device(torch::kCUDA).dtype(at::kFloat);
  const int64_t B = 3, E = 520, L = 2049;
  const at::Tensor x = channel_last_view(torch::randn({B, E, L}, cuda_bf), 0, cuda_bf);
  const at::Tensor dout = channel_last_view(torch::randn({B, E, L}, cuda_bf), 0, cuda_bf, true);
  const at::Tensor w = torch::randn({E, 4}, cuda_32) * 0.5, b = torch::randn({E}, cuda_32);
  auto run = [&](bool det) { return ops::cuda::causal_conv1d_cuda_backward(dout, x, w, b, true, at::Tensor(), det); };
  const auto d1 = run(true), d2 = run(true), a = run(false);
  EXPECT_TRUE(torch::equal(d1.dweight, d2.dweight));
  EXPECT_TRUE(torch::equal(d1.dbias, d2.dbias));
  EXPECT_TRUE(torch::equal(d1.dx, a.dx));
  EXPECT_LT(test::rel_err(a.dweight, d1.dweight), 1e-5);
  EXPECT_LT(test::rel_err(a.dbias, d1.dbias), 1e-5);
}

// The forward's time-contiguous kernel (causal_conv_rows.cuh: x and out with unit time stride, the
// channel-major prefill's layout) runs the tile kernel's sums in the same order, so it must give its
// bits: the same values in a (B, L, E) buffer seen as (B, E, L) (time stride E = 37, not a channel-
// contiguous layout either, so the tile kernel runs) and in a contiguous copy. Lengths around a
// thread's 16 (16-bit types) or 8 (fp32) steps — a partial last stretch, a stretch of one — and odd
// ones, whose rows after the first start misaligned (element-wise loads in that kernel); K = 1 … 4,
// with and without bias and SiLU, two batch rows.
TEST(ConvKernelModes, TimeContiguousForwardGivesTheTileKernelsBits) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (int64_t L : {1, 8, 16, 17, 24, 40, 1001, 4096}) {
      for (int K : {1, 2, 3, 4}) {
        const bool variant = (L + K) % 2 == 0;  // alternates bias and SiLU
        const std::string what = std::string(dtype_name(dt)) + " L=" + std::to_string(L) + " K=" + std::to_string(K) +
                                 (variant ? " bias silu" : " no bias, no silu");
        torch::manual_seed(L + 7 * K + int(dt));
        const int64_t B = 2, E = 37;
        const at::Tensor strided = torch::randn({B, L, E}, cuda).to(dt).transpose(1, 2);
        const at::Tensor contiguous = strided.contiguous();
        const at::Tensor w = torch::randn({E, K}, cuda) * 0.5;
        const at::Tensor b = variant ? torch::randn({E}, cuda) : at::Tensor();
        const at::Tensor tile = ops::cuda::causal_conv1d_cuda_forward(strided, w, b, variant);
        const at::Tensor rows = ops::cuda::causal_conv1d_cuda_forward(contiguous, w, b, variant);
        EXPECT_TRUE(torch::equal(tile, rows)) << what;
        // Weight and bias in x's half precision (a served bf16 / fp16 model's): read as they are by the
        // time-contiguous kernel, the same bits as their fp32 cast (the conversion is exact).
        if (dt != at::kFloat) {
          const at::Tensor w_dt = w.to(dt), b_dt = b.defined() ? b.to(dt) : b;
          const at::Tensor b_cast = b_dt.defined() ? b_dt.to(at::kFloat) : b_dt;
          EXPECT_TRUE(torch::equal(ops::cuda::causal_conv1d_cuda_forward(contiguous, w_dt, b_dt, variant),
                                   ops::cuda::causal_conv1d_cuda_forward(contiguous, w_dt.to(at::kFloat), b_cast, variant)))
              << what << ": weights in the dtype";
        }
        // Against float64 too (both could share a mistake): every output is an fp32 sum of ≤ 5 terms and
        // a fast-math sigmoid (errors of a few 2^-24 relative, far under 1e-5) rounded to the dtype
        // (half a unit of its last place: 2^-8 bf16, 2^-11 fp16), so one unit plus 1e-5 of the largest
        // value bounds it; a wrong tap, shift or bias is off by O(0.1).
        const at::Tensor x64 = contiguous.to(at::kDouble).cpu();
        at::Tensor ref = torch::zeros({B, E, L}, torch::kDouble);
        const at::Tensor w64 = w.to(at::kDouble).cpu();
        for (int k = 0; k < K; ++k) {
          const int64_t shift = K - 1 - k;  // tap k reads x[t − shift]
          if (shift >= L) continue;
          ref.narrow(2, shift, L - shift) += w64.select(1, k).view({1, E, 1}) * x64.narrow(2, 0, L - shift);
        }
        if (b.defined()) ref += b.to(at::kDouble).cpu().view({1, E, 1});
        if (variant) ref = ref * torch::sigmoid(ref);
        const double ulp = dt == at::kFloat ? 0.0 : dt == at::kHalf ? 1.0 / 1024 : 1.0 / 128;
        EXPECT_LE((rows.to(at::kDouble).cpu() - ref).abs().max().item<double>(),
                  (ulp + 1e-5) * std::max(1.0, ref.abs().max().item<double>())) << what;
        // The prefill's form: the kernel also writes x's conv state (a strided view here; L = 1 with
        // K = 4 is all but one step of padding) — the same output, and the state's exact values.
        at::Tensor holder = torch::full({B, E, K + 1}, 7.0, cuda).to(dt);
        at::Tensor state = holder.narrow(2, 1, K - 1);
        ASSERT_TRUE(ops::cuda::conv_writes_final_state(contiguous, w, state)) << what;
        const at::Tensor with_state = ops::causal_conv1d_with_final_state(contiguous, w, b, variant, state);
        EXPECT_TRUE(torch::equal(with_state, rows)) << what;
        EXPECT_TRUE(torch::equal(state, ops::causal_conv1d_final_state(contiguous, K))) << what << ": final state";
        EXPECT_TRUE(holder.select(2, 0).eq(7.0).all().item<bool>()) << what << ": wrote outside the state";
      }
    }
  }
}

TEST(ConvKernelModes, DispatchAutogradMatchesRawKernels) {
  MCD_SKIP_IF_NO_CUDA();
  torch::manual_seed(5);
  const auto o = torch::TensorOptions().device(torch::kCUDA);
  const at::Tensor x = torch::randn({2, 19, 260}, o).requires_grad_(true);
  const at::Tensor w = torch::randn({19, 4}, o).requires_grad_(true);
  const at::Tensor b = torch::randn({19}, o).requires_grad_(true);
  const at::Tensor dout = torch::randn({2, 19, 260}, o);
  const at::Tensor y = ops::causal_conv1d(x, w, b, true);
  y.backward(dout);
  const auto g = ops::cuda::causal_conv1d_cuda_backward(dout, x.detach(), w.detach(), b.detach(), true);
  EXPECT_TRUE(torch::equal(y, ops::cuda::causal_conv1d_cuda_forward(x.detach(), w.detach(), b.detach(), true)));
  EXPECT_TRUE(torch::equal(x.grad(), g.dx));
  EXPECT_TRUE(torch::equal(w.grad(), g.dweight));
  EXPECT_TRUE(torch::equal(b.grad(), g.dbias));
  at::Tensor comp;
  {
    const ops::ScopedOpsOptions scope(with_backend(ops::Backend::kComposite));
    comp = ops::causal_conv1d(x.detach(), w.detach(), b.detach(), true);
  }
  EXPECT_LT(test::rel_err(comp, y), 1e-5);
}

// The scan parameters widened in one kernel (ops::scan_params_fp32 on CUDA: what the eager memo and a
// captured prefill use) against float64 and the composite: D and Δ's bias exactly (widening is
// exact); A = −exp(A_log) within half a unit in fp32's last place of the float64 value (the kernel
// takes exp in double, < 1 double ulp off, and rounds once; 2^-24 relative bounds half a unit,
// times 1.0001 for the double's error) and within 3 units (3·2^-23 relative) of the composite's fp32
// exp (CUDA's expf: ≤ 2 units). Every weight dtype, odd E and N and 130M's (1536, 16), D and the bias
// present or absent; outputs poisoned, so an element the kernel skips fails. With a gradient wanted
// the composite (autograd) runs.
TEST(GpuScanParams, OneKernelGivesTheFloat64AndCompositeValues) {
  MCD_SKIP_IF_NO_CUDA();
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (auto [E, N] : {std::pair<int64_t, int64_t>{37, 5}, {1536, 16}}) {
      for (bool vectors : {true, false}) {
        const std::string what = std::string(dtype_name(dt)) + " E=" + std::to_string(E) + " N=" + std::to_string(N) +
                                 (vectors ? "" : " no D, no bias");
        torch::manual_seed(E + N + int(dt) + 3 * int(vectors));
        const at::Tensor A_log = (torch::rand({E, N}, cuda) * 5.0 - 1.0).to(dt);
        const at::Tensor D = vectors ? torch::randn({E}, cuda).to(dt) : at::Tensor();
        const at::Tensor bias = vectors ? torch::randn({E}, cuda).to(dt) : at::Tensor();
        ASSERT_TRUE(ops::cuda::scan_params_fp32_supported(A_log, D, bias)) << what;
        ops::ScanParams32 p;
        {
          PoisonOutputs poison;
          p = ops::scan_params_fp32(A_log, D, bias);
        }
        ASSERT_EQ(p.A.scalar_type(), at::kFloat) << what;
        const at::Tensor ref64 = -torch::exp(A_log.to(at::kDouble)).cpu();
        const at::Tensor err = (p.A.to(at::kDouble).cpu() - ref64).abs();
        EXPECT_TRUE(err.le(ref64.abs() * (1.0001 * std::ldexp(1.0, -24))).all().item<bool>())
            << what << ": max error " << err.max().item<double>();
        const at::Tensor composite = -torch::exp(A_log.to(at::kFloat));
        EXPECT_TRUE((p.A - composite).abs().le(composite.abs() * (3 * std::ldexp(1.0, -23))).all().item<bool>()) << what;
        EXPECT_EQ(p.D.defined(), vectors) << what;
        EXPECT_EQ(p.delta_bias.defined(), vectors) << what;
        if (vectors) {
          EXPECT_TRUE(torch::equal(p.D, D.to(at::kFloat))) << what;
          EXPECT_TRUE(torch::equal(p.delta_bias, bias.to(at::kFloat))) << what;
        }
      }
    }
  }
  const at::Tensor A_log = torch::rand({8, 4}, cuda).requires_grad_(true);
  const ops::ScanParams32 p = ops::scan_params_fp32(A_log, at::Tensor(), at::Tensor());
  ASSERT_TRUE(p.A.requires_grad());
  p.A.sum().backward();
  EXPECT_TRUE(torch::allclose(A_log.grad(), -torch::exp(A_log.detach()))) << "d(−exp(a))/da = −exp(a)";
}

// ------------------------------------------------------------------------------ decode step

// The decode-step kernels (ops/cuda/decode_step.cu) against the float64 composites over three
// consecutive steps, outputs and states: every activation dtype with fp32 weights and with weights
// in the activations' dtype (a bf16 model's), odd sizes (B 3, E 37, K 1..4, N 1/5/16/24), Δ given or formed from its low-rank rows (R 3 and 16), rows read
// from the model's wider buffers (x and z in xz, B and C in x_dbl). Outputs: the tolerance rule
// against the composite in the same precision. The conv state only moves inputs, so it must equal
// the composite's bit for bit; the scan state is fp32 in both (the rule with fp32's floor).
TEST(GpuDecodeStep, KernelsMatchFloat64CompositesOverThreeSteps) {
  MCD_SKIP_IF_NO_CUDA();
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const int64_t nb = 3, E = 37;
  auto cpu64 = [](const at::Tensor& t) { return t.defined() ? t.to(at::kDouble).cpu() : t; };
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (bool w32 : {true, false}) {
      const at::ScalarType wt = w32 ? at::kFloat : dt;
      for (int64_t K : {1, 2, 3, 4}) {
        const std::string what = std::string("conv ") + dtype_name(dt) + (w32 ? " w32" : " w=act") + " K=" + std::to_string(K);
        torch::manual_seed(100 * K + 10 * int(w32) + int(dt));
        const at::Tensor w = (torch::randn({E, K}, cuda) * 0.5).to(wt), bias = (torch::randn({E}, cuda) * 0.1).to(wt);
        at::Tensor state = torch::randn({nb, E, K - 1}, cuda).to(dt);
        at::Tensor state_plain = state.clone(), state64 = cpu64(state);
        for (int step = 0; step < 3; ++step) {
          const at::Tensor xz = torch::randn({nb, 2 * E}, cuda).to(dt);
          const at::Tensor x = xz.narrow(1, 0, E);
          ASSERT_TRUE(ops::cuda::conv_step_supported(state, x, w, bias)) << what;
          at::Tensor out, plain;
          {
            PoisonOutputs poison;
            out = ops::causal_conv1d_step(state, x, w, bias, true);
          }
          {
            const ops::ScopedOpsOptions scope(with_backend(ops::Backend::kComposite));
            plain = ops::causal_conv1d_step(state_plain, x, w, bias, true);
          }
          const at::Tensor ref = ops::causal_conv1d_step(state64, cpu64(x), cpu64(w), cpu64(bias), true);
          expect_rule(what + " step " + std::to_string(step), cpu64(out), cpu64(plain), ref, dt);
          EXPECT_TRUE(torch::equal(state, state_plain)) << what;
          EXPECT_TRUE(torch::equal(cpu64(state), state64)) << what;
        }
      }
      // N = 24: more states than a channel's lanes (ops/cuda/decode_step_params.h), so lanes own two.
      for (int64_t N : {1, 5, 16, 24}) {
        // N = 5: no z, D or Δ bias, no softplus, and A itself instead of A_log (the null paths).
        const bool full = N != 5;
        // low_rank: Δ from its (B, R) rows and dt_proj (E, R) inside the step, as the model calls it.
        // rank 0: Δ given; 3: Δ formed from its low-rank rows, lane j taking ranks j, j + 4, …; 16: each
        // lane a contiguous quarter of the rank as vectors (the models' R = 48 / 64 path, decode_step.cu).
        for (int64_t rank : {int64_t{0}, int64_t{3}, int64_t{16}}) {
          const bool low_rank = rank > 0;
          const int64_t R = low_rank ? rank : 3;
          if (low_rank && !full) continue;
          const std::string what = std::string("scan ") + dtype_name(dt) + (w32 ? " w32" : " w=act") + " N=" +
                                   std::to_string(N) + (low_rank ? " low-rank R=" + std::to_string(R) : "");
          torch::manual_seed(1000 * N + 10 * int(w32) + int(dt) + 7 * rank);
          const at::Tensor a_log = (torch::rand({E, N}, cuda) * 2.5).to(wt);
          const at::Tensor A = full ? a_log : (-torch::exp(a_log.to(at::kFloat))).to(wt);
          const at::Tensor D = full ? torch::randn({E}, cuda).to(wt) : at::Tensor();
          const at::Tensor dt_bias = full ? (torch::randn({E}, cuda) * 0.1).to(wt) : at::Tensor();
          const at::Tensor dt_proj = low_rank ? (torch::randn({E, R}, cuda) * 0.5).to(wt) : at::Tensor();
          at::Tensor state = torch::randn({nb, E, N}, cuda);
          at::Tensor state_plain = state.clone(), state64 = cpu64(state);
          for (int step = 0; step < 3; ++step) {
            const at::Tensor xz = torch::randn({nb, 2 * E}, cuda).to(dt);
            const at::Tensor x_dbl = torch::randn({nb, R + 2 * N}, cuda).to(dt);
            const at::Tensor u = torch::randn({nb, E}, cuda).to(dt);
            const at::Tensor delta = low_rank ? x_dbl.narrow(1, 0, R)
                                              : (full ? torch::randn({nb, E}, cuda) : torch::rand({nb, E}, cuda) * 0.5).to(dt);
            const at::Tensor Bm = x_dbl.narrow(1, R, N), Cm = x_dbl.narrow(1, R + N, N);
            const at::Tensor z = full ? xz.narrow(1, E, E) : at::Tensor();
            ASSERT_TRUE(ops::cuda::scan_step_supported(state, u, delta, A, Bm, Cm, D, z, dt_bias, dt_proj)) << what;
            at::Tensor out, plain;
            {
              PoisonOutputs poison;
              out = ops::selective_scan_step(state, u, delta, A, Bm, Cm, D, z, dt_bias, full, full, dt_proj);
            }
            {
              const ops::ScopedOpsOptions scope(with_backend(ops::Backend::kComposite));
              plain = ops::selective_scan_step(state_plain, u, delta, A, Bm, Cm, D, z, dt_bias, full, full, dt_proj);
            }
            const at::Tensor ref = ops::selective_scan_step(state64, cpu64(u), cpu64(delta), cpu64(A), cpu64(Bm),
                                                            cpu64(Cm), cpu64(D), cpu64(z), cpu64(dt_bias), full, full,
                                                            cpu64(dt_proj));
            expect_rule(what + " step " + std::to_string(step), cpu64(out), cpu64(plain), ref, dt);
            expect_rule(what + " state " + std::to_string(step), cpu64(state), cpu64(state_plain), state64, at::kFloat);
          }
        }
      }
    }
  }
  // Weights of mixed dtypes (A in fp32, D in bf16) are not the kernels' forms: the composite runs.
  const at::Tensor u = torch::randn({1, 8}, cuda).to(at::kBFloat16);
  const at::Tensor st = torch::zeros({1, 8, 2}, cuda), bc = torch::randn({1, 2}, cuda).to(at::kBFloat16);
  EXPECT_FALSE(ops::cuda::scan_step_supported(st, u, u, torch::zeros({8, 2}, cuda), bc, bc,
                                              torch::zeros({8}, cuda).to(at::kBFloat16), u, at::Tensor()));
}

// selective_scan_step_projected runs x_proj's kernel and then the step kernel with its settled
// loads (the state, u, z and the weights read before waiting for x_proj, decode_step.cu); the
// step's arithmetic is the one selective_scan_step runs, so over three steps the output and the
// state must equal, bit for bit, decode_linear then selective_scan_step (the loads after the wait):
// bf16 and fp32 activations, weights fp32 or the activations' dtype, rows 1 and 3 (overlapped
// launches), N 16 (vector loads) and 5, R 48 (the rank in vectors) and 3, E 1536 and 37; poisoned
// outputs. The step kernel must run in both (scan_step_supported), not the composite.
TEST(GpuDecodeStep, ProjectedStepLoadingBeforeTheWaitGivesTheSameBits) {
  MCD_SKIP_IF_NO_CUDA();
  const FewRowKernelsUpToEight few_rows;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    for (bool w32 : {true, false}) {
      const at::ScalarType wt = w32 ? at::kFloat : dt;
      for (int64_t rows : {1, 3}) {
        for (int64_t E : {37, 1536}) {
          for (int64_t N : {5, 16}) {
            for (int64_t R : {3, 48}) {
              const std::string what = std::string(dtype_name(dt)) + (w32 ? " w32" : " w=act") + " rows=" +
                                       std::to_string(rows) + " E=" + std::to_string(E) + " N=" + std::to_string(N) +
                                       " R=" + std::to_string(R);
              torch::manual_seed(rows + E + 10 * N + R + int(dt) + 3 * int(w32));
              const at::Tensor a_log = (torch::rand({E, N}, cuda) * 2.5).to(wt);
              const at::Tensor D = torch::randn({E}, cuda).to(wt), dt_bias = (torch::randn({E}, cuda) * 0.1).to(wt);
              const at::Tensor dt_proj = (torch::randn({E, R}, cuda) * 0.5).to(wt);
              const at::Tensor x_proj = (torch::randn({R + 2 * N, E}, cuda) * 0.1).to(dt);
              at::Tensor state = torch::randn({rows, E, N}, cuda), state_plain = state.clone();
              for (int step = 0; step < 3; ++step) {
                const at::Tensor u = torch::randn({rows, E}, cuda).to(dt), z = torch::randn({rows, E}, cuda).to(dt);
                const at::Tensor x_dbl = ops::decode_linear(u, x_proj);
                ASSERT_TRUE(ops::cuda::scan_step_supported(state_plain, u, x_dbl.narrow(1, 0, R), a_log,
                                                           x_dbl.narrow(1, R, N), x_dbl.narrow(1, R + N, N), D, z,
                                                           dt_bias, dt_proj))
                    << what;
                at::Tensor out;
                {
                  PoisonOutputs poison;
                  out = ops::selective_scan_step_projected(state, u, x_proj, a_log, D, z, dt_bias, true, true, dt_proj);
                }
                const at::Tensor plain =
                    ops::selective_scan_step(state_plain, u, x_dbl.narrow(1, 0, R), a_log, x_dbl.narrow(1, R, N),
                                             x_dbl.narrow(1, R + N, N), D, z, dt_bias, true, true, dt_proj);
                EXPECT_TRUE(torch::equal(out, plain)) << what << " step " << step;
                EXPECT_TRUE(torch::equal(state, state_plain)) << what << " state, step " << step;
              }
            }
          }
        }
      }
    }
  }
}

// The conv step inside the fused norm + in_proj kernel (ops::add_rms_norm_decode_linear_conv_step)
// against that kernel without it followed by the conv-step kernel: both round x to the dtype, then run
// the same per-channel arithmetic (ops/cuda/conv_step.cuh), so u, z, the residual and the conv state
// must agree bit for bit: every dtype, the norm weight fp32 or the dtype, K 1..4, rows 1 and 8 (the
// most the kernel takes), D 768 (16-byte loads) and 77 (element loads), E 1536 (4 columns per block)
// and 37 (1), with and without prev and conv bias; poisoned outputs. Runs the kernel, not the composite.
// K = 1 has an empty conv state (no data pointer): the kernel must still run the conv step.
TEST(GpuDecodeStep, ConvStepInInProjGivesTheSeparateKernelsBits) {
  MCD_SKIP_IF_NO_CUDA();
  const FewRowKernelsUpToEight few_rows;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (int64_t D : {77, 768}) {
      for (int64_t E : {37, 1536}) {
        for (int64_t rows : {1, 8}) {
          for (int64_t K : {1, 2, 3, 4}) {
            const bool variant = (K + rows + D) % 2 == 0;  // alternates prev, bias and the norm weight's dtype
            const std::string what = std::string(dtype_name(dt)) + " D=" + std::to_string(D) + " E=" + std::to_string(E) +
                                     " rows=" + std::to_string(rows) + " K=" + std::to_string(K) +
                                     (variant ? " prev, bias, norm w fp32" : " no prev, no bias, norm w=act");
            torch::manual_seed(11 * K + 100 * rows + int(dt) + E + D);
            const at::Tensor res = torch::randn({rows, D}, cuda);
            const at::Tensor prev = variant ? torch::randn({rows, D}, cuda).to(dt) : at::Tensor();
            const at::Tensor nw = (torch::rand({D}, cuda) + 0.5).to(variant ? at::kFloat : dt);
            const at::Tensor W = (torch::randn({2 * E, D}, cuda) * 0.05).to(dt);
            const at::Tensor cw = (torch::randn({E, K}, cuda) * 0.5).to(dt);
            const at::Tensor cb = variant ? (torch::randn({E}, cuda) * 0.1).to(dt) : at::Tensor();
            at::Tensor state = torch::randn({rows, E, K - 1}, cuda).to(dt), ref_state = state.clone();
            ASSERT_TRUE(ops::cuda::add_norm_decode_linear_supported(res, prev, nw, W, at::Tensor())) << what;
            ASSERT_TRUE(ops::cuda::norm_conv_step_supported({&state, cw, cb, true}, W, rows)) << what;
            ops::NormConvOut fused;
            {
              PoisonOutputs poison;
              fused = ops::add_rms_norm_decode_linear_conv_step(res, prev, nw, 1e-5, W, {}, state, cw, cb, true);
            }
            const ops::NormLinearOut plain = ops::add_rms_norm_decode_linear(res, prev, nw, 1e-5, W);
            const at::Tensor u = ops::causal_conv1d_step(ref_state, plain.out.narrow(1, 0, E), cw, cb, true);
            EXPECT_TRUE(torch::equal(fused.u, u)) << what;
            EXPECT_TRUE(torch::equal(fused.rest, plain.out.narrow(1, E, E))) << what;
            EXPECT_TRUE(torch::equal(fused.residual, plain.residual)) << what;
            EXPECT_TRUE(torch::equal(state, ref_state)) << what;
          }
        }
      }
    }
  }
}

// The fused norm + product (+ conv step) kernel is compiled for one row (batch 1) and for up to 8
// (decode_linear.cu); both run each row's sums in the same order, so a row decoded alone must give
// the bits of the same row in a batch of 3 (what batched generation's tests rely on): inner lengths
// with 16-byte loads (768, 1,032: one and two loop steps per thread) and without (77), one- and
// four-column blocks (197 and 2,052 columns), with and without the conv step.
TEST(GpuDecodeStep, OneRowFusedKernelGivesTheManyRowKernelsBits) {
  MCD_SKIP_IF_NO_CUDA();
  const FewRowKernelsUpToEight few_rows;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const int64_t rows = 3;
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    for (int64_t D : {77, 768, 1032}) {
      for (int64_t out : {197, 2052}) {
        for (bool conv : {false, true}) {
          const std::string what = std::string(dtype_name(dt)) + " D=" + std::to_string(D) +
                                   " out=" + std::to_string(out) + (conv ? " conv" : "");
          torch::manual_seed(D + out + int(conv) + 10 * int(dt));
          const int64_t E = out / 2, K = 4;
          const at::Tensor res = torch::randn({rows, D}, cuda);
          const at::Tensor prev = torch::randn({rows, D}, cuda).to(dt);
          const at::Tensor nw = (torch::rand({D}, cuda) + 0.5).to(dt);
          const at::Tensor W = (torch::randn({out, D}, cuda) * 0.05).to(dt);
          const at::Tensor cw = (torch::randn({E, K}, cuda) * 0.5).to(dt);
          const at::Tensor cb = (torch::randn({E}, cuda) * 0.1).to(dt);
          const at::Tensor state0 = torch::randn({rows, E, K - 1}, cuda).to(dt);
          at::Tensor batch_state = state0.clone();
          ASSERT_TRUE(ops::cuda::add_norm_decode_linear_supported(res, prev, nw, W, at::Tensor())) << what;
          ASSERT_TRUE(ops::cuda::norm_conv_step_supported({&batch_state, cw, cb, true}, W, rows)) << what;
          at::Tensor batch_out;
          if (conv) {
            const ops::NormConvOut r = ops::add_rms_norm_decode_linear_conv_step(res, prev, nw, 1e-5, W, {}, batch_state,
                                                                                 cw, cb, true);
            batch_out = at::cat({r.u, r.rest}, 1);
          } else {
            batch_out = ops::add_rms_norm_decode_linear(res, prev, nw, 1e-5, W).out;
          }
          for (int64_t r = 0; r < rows; ++r) {
            const at::Tensor res1 = res.narrow(0, r, 1).contiguous(), prev1 = prev.narrow(0, r, 1).contiguous();
            at::Tensor state1 = state0.narrow(0, r, 1).clone();
            at::Tensor row_out;
            if (conv) {
              const ops::NormConvOut o = ops::add_rms_norm_decode_linear_conv_step(res1, prev1, nw, 1e-5, W, {}, state1,
                                                                                   cw, cb, true);
              row_out = at::cat({o.u, o.rest}, 1);
              EXPECT_TRUE(torch::equal(state1, batch_state.narrow(0, r, 1))) << what << " row " << r << ": conv state";
            } else {
              row_out = ops::add_rms_norm_decode_linear(res1, prev1, nw, 1e-5, W).out;
            }
            EXPECT_TRUE(torch::equal(row_out, batch_out.narrow(0, r, 1))) << what << " row " << r;
          }
        }
      }
    }
  }
}

// The few-row linear layer (ops/decode_linear.h) against float64, with cuBLAS's product in the same
// precision as the tolerance rule's "plain": rows 1..8 (the kernel) and 9 (torch's linear), an inner
// length that takes 16-byte loads (1536) and one that does not (77), x as a view into a wider buffer
// (in_proj's x in xz), with and without a bias. The kernel writes every element (poisoned outputs).
TEST(GpuDecodeLinear, MatchesFloat64ForEveryRowCountAndLayout) {
  MCD_SKIP_IF_NO_CUDA();
  const FewRowKernelsUpToEight few_rows;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  auto cpu64 = [](const at::Tensor& t) { return t.defined() ? t.to(at::kDouble).cpu() : t; };
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (int64_t in : {1536, 77}) {
      for (int64_t rows : {1, 3, 8, 9}) {
        for (bool with_bias : {false, true}) {
          const std::string what = std::string("decode_linear ") + dtype_name(dt) + " in=" + std::to_string(in) +
                                   " rows=" + std::to_string(rows) + (with_bias ? " bias" : "");
          torch::manual_seed(in + 10 * rows + int(with_bias) + 100 * int(dt));
          const int64_t out = 83;
          const at::Tensor wide = torch::randn({rows, 2 * in}, cuda).to(dt);
          const at::Tensor x = wide.narrow(1, 0, in);
          const at::Tensor w = (torch::randn({out, in}, cuda) / std::sqrt(double(in))).to(dt);
          const at::Tensor b = with_bias ? torch::randn({out}, cuda).to(dt) : at::Tensor();
          EXPECT_EQ(ops::cuda::decode_linear_supported(x, w, b), rows <= 8) << what;
          at::Tensor y;
          {
            PoisonOutputs poison;
            y = ops::decode_linear(x, w, b);
          }
          ASSERT_EQ(y.sizes(), (at::IntArrayRef{rows, out})) << what;
          EXPECT_EQ(y.scalar_type(), dt) << what;
          const at::Tensor plain = at::linear(x, w, b);
          const at::Tensor ref = at::linear(cpu64(x), cpu64(w), cpu64(b));
          expect_rule(what, cpu64(y), cpu64(plain), ref, dt);
        }
      }
    }
  }
  // Under CUDA autocast the op is torch's linear, autocast's casts included (bf16 out of fp32 inputs).
  const at::Tensor x = torch::randn({2, 64}, cuda), w = torch::randn({16, 64}, cuda);
  const CudaAutocastScope autocast(true);
  const at::Tensor y = ops::decode_linear(x, w);
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(torch::equal(y, at::linear(x, w)));
}

// The ops option decode_few_row_limit decides which row counts run the few-row kernels: up to the
// limit (and the kernels' 8) they do, above it cuBLAS's product does — bit for bit torch's linear, and
// for the fused norm + product the separate norm then that linear. Limit 0 sends even one row to cuBLAS.
TEST(GpuDecodeLinear, FewRowLimitSaysWhichRowCountsRunTheKernels) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const int64_t D = 96, out = 70;
  const at::Tensor w = (torch::randn({out, D}, cuda) / std::sqrt(double(D))).to(at::kBFloat16);
  const at::Tensor nw = (1 + 0.1 * torch::randn({D}, cuda)).to(at::kBFloat16);
  for (int limit : {0, 1, 3, 8}) {
    const ops::ScopedOpsOptions scope(with_few_row_limit(limit));
    for (int64_t rows = 1; rows <= 9; ++rows) {
      const std::string what = "limit " + std::to_string(limit) + " rows " + std::to_string(rows);
      const at::Tensor x = torch::randn({rows, D}, cuda).to(at::kBFloat16);
      const bool kernel = rows <= limit;
      EXPECT_EQ(ops::decode_linear_runs_kernel(x, w), kernel) << what;
      if (kernel) continue;
      EXPECT_TRUE(torch::equal(ops::decode_linear(x, w), at::linear(x, w))) << what;
      const at::Tensor res = torch::randn({rows, D}, cuda), prev = torch::randn({rows, D}, cuda).to(at::kBFloat16);
      const ops::NormLinearOut fused = ops::add_rms_norm_decode_linear(res, prev, nw, 1e-5, w);
      const ops::AddNormOut n = ops::add_rms_norm(res, prev, nw, 1e-5, at::kBFloat16);
      EXPECT_TRUE(torch::equal(fused.out, at::linear(n.normed, w))) << what;
      EXPECT_TRUE(torch::equal(fused.residual, n.residual)) << what;
    }
  }
}

// The block's residual add and norm fused into in_proj (ops::add_rms_norm_decode_linear) against
// float64, with the unfused ops on the GPU (add_rms_norm, then the product) as the rule's "plain":
// rows 1/3/8, D 768 (16-byte loads) and 77, the first layer (no prev) and later ones, the norm weight
// in fp32 and in the activations' dtype. The residual is residual_in + prev in fp32 in both, so it
// must equal the unfused op's bit for bit; the fused kernel writes every element (poisoned outputs).
TEST(GpuDecodeLinear, NormFusedIntoTheProductMatchesFloat64) {
  MCD_SKIP_IF_NO_CUDA();
  const FewRowKernelsUpToEight few_rows;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  auto cpu64 = [](const at::Tensor& t) { return t.defined() ? t.to(at::kDouble).cpu() : t; };
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    for (int64_t D : {768, 77}) {
      for (int64_t rows : {1, 3, 8}) {
        for (bool first : {true, false}) {
          for (bool norm32 : {true, false}) {
            const std::string what = std::string("norm+linear ") + dtype_name(dt) + " D=" + std::to_string(D) +
                                     " rows=" + std::to_string(rows) + (first ? " first" : "") +
                                     (norm32 ? " norm w32" : " norm w=act");
            torch::manual_seed(D + 10 * rows + 2 * int(first) + int(norm32) + 100 * int(dt));
            const int64_t out = 3 * 64 + 5;
            const at::Tensor res = torch::randn({rows, D}, cuda);
            const at::Tensor prev = first ? at::Tensor() : torch::randn({rows, D}, cuda).to(dt);
            const at::Tensor nw = (1 + 0.1 * torch::randn({D}, cuda)).to(norm32 ? at::kFloat : dt);
            const at::Tensor w = (torch::randn({out, D}, cuda) / std::sqrt(double(D))).to(dt);
            const at::Tensor b = torch::randn({out}, cuda).to(dt);
            ASSERT_TRUE(ops::cuda::add_norm_decode_linear_supported(res, prev, nw, w, b)) << what;
            ops::NormLinearOut fused;
            {
              PoisonOutputs poison;
              fused = ops::add_rms_norm_decode_linear(res, prev, nw, 1e-5, w, b);
            }
            const ops::AddNormOut n = ops::add_rms_norm(res, prev, nw, 1e-5, dt);
            const at::Tensor plain = at::linear(n.normed, w, b);
            const at::Tensor r64 = first ? cpu64(res) : cpu64(res) + cpu64(prev);
            const at::Tensor normed64 = cpu64(nw) * r64 * torch::rsqrt(r64.pow(2).mean(-1, true) + 1e-5);
            const at::Tensor ref = at::linear(normed64, cpu64(w), cpu64(b));
            expect_rule(what, cpu64(fused.out), cpu64(plain), ref, dt);
            EXPECT_TRUE(torch::equal(fused.residual, n.residual)) << what;
          }
        }
      }
    }
  }
}

// The LM head with greedy selection in one kernel (ops::add_rms_norm_decode_linear_argmax): its logits
// must be the fused norm + product's (the same kernel sums, widened) bit for bit, and its tokens
// torch's argmax of those logits over the leading columns — with every row's maximum tied between
// identical weight rows (the first must win), larger values in the excluded columns, rows 1/3/8, a
// head narrow (1-column blocks) and wide (4-column blocks, 13 k blocks meeting in the workspace),
// fp32 and bf16, three calls on one workspace, which must be zeros after each. Rows 9 and 64 take cuBLAS's
// product and then ops::widen_argmax's kernel (the batch-64 graph decoder's head).
TEST(GpuDecodeLinear, ArgmaxHeadGivesTheProductsLogitsAndTheFirstMaximum) {
  MCD_SKIP_IF_NO_CUDA();
  const FewRowKernelsUpToEight few_rows;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  int64_t tie_rows_seen = 0;
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    for (int64_t V : {203, 50280}) {
      for (int64_t rows : {1, 3, 8, 9, 64}) {
        const std::string what = std::string("argmax head ") + dtype_name(dt) + " V=" + std::to_string(V) +
                                 " rows=" + std::to_string(rows);
        torch::manual_seed(V + rows + 100 * int(dt));
        const int64_t D = 768, cols = V - 3;
        at::Tensor w = torch::randn({V, D}, cuda) / std::sqrt(double(D));
        const at::Tensor big = torch::randn({D}, cuda);
        for (int64_t c : {int64_t(5), V / 2, cols - 1}) w[c] = 4 * big;      // ties: the first (5) must win
        for (int64_t c : {int64_t(6), V / 2 + 1, cols - 2}) w[c] = -4 * big;  // (6) where the big dot is negative
        w[cols] = 8 * big;  w[cols + 1] = -8 * big;                          // excluded, larger
        w = w.to(dt);
        const at::Tensor nw = (1 + 0.1 * torch::randn({D}, cuda)).to(dt);
        at::Tensor logits = torch::empty({rows, V}, cuda.dtype(at::kFloat));
        at::Tensor tokens = torch::empty({rows}, cuda.dtype(at::kLong));
        at::Tensor workspace = torch::zeros({rows + 1}, cuda.dtype(at::kLong));
        for (int call = 0; call < 3; ++call) {
          const at::Tensor res = torch::randn({rows, D}, cuda), prev = torch::randn({rows, D}, cuda).to(dt);
          logits.fill_(NAN);
          tokens.fill_(-1);
          ops::add_rms_norm_decode_linear_argmax(res, prev, nw, 1e-5, w, cols, logits, tokens, workspace);
          const at::Tensor want = ops::add_rms_norm_decode_linear(res, prev, nw, 1e-5, w).out.to(at::kFloat);
          const std::string at_call = what + " call " + std::to_string(call);
          EXPECT_TRUE(torch::equal(logits, want)) << at_call;
          const at::Tensor want_tokens = want.narrow(1, 0, cols).argmax(-1);
          EXPECT_TRUE(torch::equal(tokens, want_tokens)) << at_call << ": " << tokens.cpu() << " vs " << want_tokens.cpu();
          // Where the tied columns' logit is far from 0 (|4·big·normed| ~ 4·√768 against the others' ~1),
          // the tie holds the row's maximum: the test exercises ties.
          const at::Tensor tie_rows = want.select(1, 5).abs().gt(8);
          tie_rows_seen += tie_rows.sum().item<int64_t>();
          EXPECT_TRUE(want_tokens.eq(5).logical_or(want_tokens.eq(6)).logical_or(tie_rows.logical_not()).all().item<bool>())
              << at_call << " (a tie wins)";
          EXPECT_EQ(workspace.abs().sum().item<int64_t>(), 0) << at_call;
        }
      }
    }
  }
  EXPECT_GT(tie_rows_seen, 100);
}

// ops::widen_argmax's kernel against its two-line composition: logits the values widened bit for bit and
// tokens torch's argmax over the leading columns, for values crafted to decide ties the way torch does —
// each row's maximum repeated in three columns (the first wins), a NaN row (NaN is the maximum, its first
// column wins), a row of −0 and +0 only (equal: column 0), larger values past argmax_columns — in fp32,
// fp16 and bf16, rows 1 / 9 / 64 / 300, V = 50,280 (16-byte loads; several blocks per row, the last one partial),
// 16,392 (two whole blocks of bf16 columns and one vector in a third, whose other threads have no columns) and 203
// (rows unaligned for vectors and a partial last stretch, so the element path runs), values a strided view, three
// calls on one workspace, which must be zeros after each.
TEST(GpuDecodeLinear, WidenArgmaxGivesTheWidenedValuesAndTorchsArgmax) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (int64_t V : {203, 16392, 50280}) {
      for (int64_t rows : {1, 9, 64, 300}) {
        const std::string what = std::string("widen_argmax ") + dtype_name(dt) + " V=" + std::to_string(V) +
                                 " rows=" + std::to_string(rows);
        torch::manual_seed(V + rows + 100 * int(dt));
        const int64_t cols = V - 3;
        at::Tensor logits = torch::empty({rows, V}, cuda.dtype(at::kFloat));
        at::Tensor tokens = torch::empty({rows}, cuda.dtype(at::kLong));
        at::Tensor workspace = torch::zeros({rows + 1}, cuda.dtype(at::kLong));
        for (int call = 0; call < 3; ++call) {
          // values: a (rows, V) view of wider rows — at V = 50,280 every row 16-byte aligned (row stride V + 8,
          // offset 0), at V = 203 none (row stride V + 5, offset 1)
          const int64_t pad = V == 203 ? 5 : 8, offset = V == 203 ? 1 : 0;
          at::Tensor wide = torch::randn({rows, V + pad}, cuda);
          at::Tensor v = wide.narrow(1, offset, V);
          const at::Tensor top = v.narrow(1, 0, cols).amax(1).abs() + 1;  // above the row's values
          for (int64_t c : {int64_t(7 + call), V / 2, cols - 1}) v.select(1, c).copy_(top);
          v.select(1, cols).copy_(top + 4);  // excluded columns, larger
          if (rows > 1) {
            v[1].fill_(-0.0);
            v[1].narrow(0, 3, 5).fill_(0.0);  // −0 and +0: all equal, column 0 wins
          }
          if (rows > 2) {
            v[2][V / 3] = NAN;
            v[2][V / 2 + 1] = NAN;  // the first NaN wins
          }
          const at::Tensor values = wide.to(dt).narrow(1, offset, V);
          logits.fill_(NAN);
          tokens.fill_(-1);
          ops::widen_argmax(values, cols, logits, tokens, workspace);
          const at::Tensor want = values.to(at::kFloat);
          const at::Tensor want_tokens = want.narrow(1, 0, cols).argmax(-1);
          const std::string at_call = what + " call " + std::to_string(call);
          EXPECT_TRUE(torch::equal(logits.isnan(), want.isnan()) &&
                      torch::equal(logits.nan_to_num(0), want.nan_to_num(0)))
              << at_call;
          EXPECT_TRUE(torch::equal(tokens, want_tokens)) << at_call << ": " << tokens.cpu() << " vs " << want_tokens.cpu();
          EXPECT_EQ(tokens[0].item<int64_t>(), 7 + call) << at_call << " (the first of three maxima)";
          if (rows > 1) EXPECT_EQ(tokens[1].item<int64_t>(), 0) << at_call << " (zeros of both signs)";
          if (rows > 2) EXPECT_EQ(tokens[2].item<int64_t>(), V / 3) << at_call << " (the first NaN)";
          EXPECT_EQ(workspace.abs().sum().item<int64_t>(), 0) << at_call;
        }
      }
    }
  }
}

// The first layer's fused norm gathering its token embeddings itself (ops::NormInput::embedded) must
// give exactly what it gives on the gathered, widened rows — out, residual and (with the conv step)
// u, z and the conv state — for fp32 and bf16, rows 1/3/8 with a repeated id, and a table whose rows
// are strided (a view of a wider one).
TEST(GpuDecodeLinear, EmbeddedRowsGiveTheGatheredRowsBits) {
  MCD_SKIP_IF_NO_CUDA();
  const FewRowKernelsUpToEight few_rows;
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    for (int64_t rows : {1, 3, 8}) {
      const std::string what = std::string("embedded rows ") + dtype_name(dt) + " rows=" + std::to_string(rows);
      torch::manual_seed(rows + 100 * int(dt));
      const int64_t V = 301, D = 768, E = 1536, K = 4;
      const at::Tensor table = torch::randn({V, 2 * D}, cuda).to(dt).narrow(1, 0, D);  // row stride 2D
      at::Tensor ids = torch::randint(V, {rows}, cuda.dtype(at::kLong));
      if (rows > 1) ids[rows - 1] = ids[0].item<int64_t>();
      const at::Tensor nw = (1 + 0.1 * torch::randn({D}, cuda)).to(dt);
      const at::Tensor w = (torch::randn({2 * E, D}, cuda) / std::sqrt(double(D))).to(dt);
      const at::Tensor b = torch::randn({2 * E}, cuda).to(dt);
      const at::Tensor gathered = table.index_select(0, ids).to(at::kFloat);
      const ops::NormInput embedded = ops::NormInput::embedded(ids, table);
      const ops::cuda::EmbeddingRows rows_of{ids, table};
      ASSERT_TRUE(ops::cuda::add_norm_decode_linear_supported({}, {}, nw, w, b, &rows_of)) << what;
      const ops::NormLinearOut got = ops::add_rms_norm_decode_linear(embedded, {}, nw, 1e-5, w, b);
      const ops::NormLinearOut want = ops::add_rms_norm_decode_linear(gathered, {}, nw, 1e-5, w, b);
      EXPECT_TRUE(torch::equal(got.out, want.out)) << what;
      EXPECT_TRUE(torch::equal(got.residual, want.residual)) << what;
      EXPECT_TRUE(torch::equal(got.residual, gathered)) << what;
      const at::Tensor cw = torch::randn({E, K}, cuda).to(dt), cb = torch::randn({E}, cuda).to(dt);
      at::Tensor state = torch::randn({rows, E, K - 1}, cuda).to(dt), want_state = state.clone();
      const ops::NormConvOut gc =
          ops::add_rms_norm_decode_linear_conv_step(embedded, {}, nw, 1e-5, w, b, state, cw, cb, true);
      const ops::NormConvOut wc =
          ops::add_rms_norm_decode_linear_conv_step(gathered, {}, nw, 1e-5, w, b, want_state, cw, cb, true);
      EXPECT_TRUE(torch::equal(gc.u, wc.u)) << what;
      EXPECT_TRUE(torch::equal(gc.rest, wc.rest)) << what;
      EXPECT_TRUE(torch::equal(gc.residual, wc.residual)) << what;
      EXPECT_TRUE(torch::equal(state, want_state)) << what;
    }
  }
}

// ------------------------------------------------------------------------------- model

TEST(GpuKernelsModel, RandomModelWithKernelsMatchesCompositeInFloat32) {
  MCD_SKIP_IF_NO_CUDA();
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 101;
  c.n_layer = 3;
  c.d_inner_per_layer = {128, 37, 5};
  MambaLM a(c), b(c);
  init_reference(*a, 9);
  init_reference(*b, 9);
  a->to(torch::kCUDA);
  b->to(torch::kCUDA);
  const at::Tensor ids = torch::randint(0, 101, {3, 300}, torch::kLong).to(torch::kCUDA);
  const at::Tensor la = a->loss(ids);  // kernels
  at::Tensor lb;
  {
    const ops::ScopedOpsOptions scope(with_backend(ops::Backend::kComposite));
    lb = b->loss(ids);
    lb.backward();
  }
  la.backward();
  EXPECT_LT(test::rel_err(la.reshape({1}), lb.reshape({1})), 1e-5);
  auto gb = b->named_parameters();
  for (const auto& p : a->named_parameters())
    EXPECT_LT(test::rel_err(p.value().grad(), gb[p.key()].grad()), 1e-4) << p.key();
}

// Under CUDA autocast the LM head's products run in bf16 in the forward and in the backward
// (which the autograd engine runs without autocast); loss and gradients stay within bf16
// rounding of the fp32 path, and the loss is still an fp32 scalar.
TEST(GpuChunkedCrossEntropy, AutocastRunsBf16ProductsWithinRoundingOfFloat32) {
  MCD_SKIP_IF_NO_CUDA();
  torch::manual_seed(5);
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
  const at::Tensor h0 = torch::randn({777, 64}, f32), w0 = torch::randn({1003, 64}, f32) * 0.3;
  const at::Tensor tgt = torch::randint(0, 1003, {777}, f32.dtype(torch::kLong));
  auto run = [&](bool autocast) {
    const at::Tensor h = h0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    at::Tensor loss;
    {
      CudaAutocastScope scope(autocast);
      loss = ops::chunked_cross_entropy(h, w, tgt, 300);
    }
    loss.backward();
    return std::vector<at::Tensor>{loss.detach().reshape({1}), h.grad(), w.grad()};
  };
  const auto ref = run(false), low = run(true);
  EXPECT_EQ(low[0].scalar_type(), at::kFloat);
  EXPECT_EQ(low[1].scalar_type(), at::kFloat);
  // bf16 operands (relative rounding ≤ 2^-9 each) in fp32-accumulated products: the logits carry
  // ~2·2^-9 ≈ 4e-3 relative error, which the mean loss averages down (5e-3 is one logit's worth);
  // the gradients go through two such products (softmax from the rounded logits, then the bf16
  // backward product): ≤ ~4·2^-9 ≈ 8e-3, so 2e-2 leaves a factor 2.5 and stays far below O(1).
  EXPECT_LT(test::rel_err(low[0], ref[0]), 5e-3);
  EXPECT_LT(test::rel_err(low[1], ref[1]), 2e-2);
  EXPECT_LT(test::rel_err(low[2], ref[2]), 2e-2);
  EXPECT_GT(test::rel_err(low[1], ref[1]), 1e-5);  // the products did run in bf16
}

// ops/autocast_linear.h against torch::nn::Linear under the same autocast. Without a bias (the
// model's in_proj): the output and the input gradient bit for bit (the same bf16 products). With
// one: LibTorch may fuse the bias into the product's epilogue, so within bf16 rounding. The weight
// gradient is fp32 from the product: within bf16 rounding of autocast's (rounded to bf16 first),
// and equal to the fp32 product of the same bf16 operands up to summation order.
TEST(GpuAutocastLinear, MatchesAutocastLinearWithFp32WeightGradient) {
  MCD_SKIP_IF_NO_CUDA();
  const auto o = torch::TensorOptions().device(torch::kCUDA);
  for (bool bias : {false, true}) {
    torch::manual_seed(8);
    torch::nn::Linear lin(torch::nn::LinearOptions(96, 200).bias(bias));
    lin->to(torch::kCUDA);
    const at::Tensor x0 = torch::randn({3, 301, 96}, o).to(at::kBFloat16), gy = torch::randn({3, 301, 200}, o);
    auto run = [&](bool ours) {
      for (auto& p : lin->parameters()) p.mutable_grad() = at::Tensor();
      const at::Tensor x = x0.clone().requires_grad_(true);
      at::Tensor y;
      {
        CudaAutocastScope scope(true);
        EXPECT_TRUE(ops::autocast_linear_applies(x, lin->weight));
        y = ours ? ops::autocast_linear(x, lin->weight, bias ? lin->bias : at::Tensor()) : lin->forward(x);
      }
      y.backward(gy.to(y.scalar_type()));
      return std::vector<at::Tensor>{y.detach(), x.grad(), lin->weight.grad().clone(),
                                     bias ? lin->bias.grad().clone() : at::Tensor()};
    };
    const std::vector<at::Tensor> ours = run(true), ref = run(false);
    const std::string what = bias ? "with bias" : "without bias";
    EXPECT_EQ(ours[0].scalar_type(), at::kBFloat16) << what;
    if (!bias) {
      EXPECT_TRUE(torch::equal(ours[0], ref[0])) << what;
      EXPECT_TRUE(torch::equal(ours[1], ref[1])) << what;
    }
    // Outputs rounded once to bf16 from fp32 accumulators: [Rounding-flip bounds]. The weight
    // gradient: autocast's is rounded to bf16 once more than ours (fp32), the same bound.
    EXPECT_LT(test::rel_err(ours[0], ref[0]), 1e-2) << what;
    EXPECT_LT(test::rel_err(ours[1], ref[1]), 1e-2) << what;
    EXPECT_EQ(ours[2].scalar_type(), at::kFloat) << what;
    EXPECT_LT(test::rel_err(ours[2], ref[2]), 1e-2) << what;
    if (bias) EXPECT_LT(test::rel_err(ours[3], ref[3]), 1e-2) << what;
    const at::Tensor g16 = gy.to(at::kBFloat16).reshape({-1, 200}).to(at::kFloat);
    const at::Tensor exact = g16.t().mm(x0.reshape({-1, 96}).to(at::kFloat));
    EXPECT_LT(test::rel_err(ours[2], exact), 1e-5) << what;
    EXPECT_GT(test::rel_err(ref[2], exact), 1e-4) << what;  // autocast's went through bf16
  }
  CudaAutocastScope scope(true);
  const ops::ScopedOpsOptions composite(with_backend(ops::Backend::kComposite));  // LibTorch's own path
  EXPECT_FALSE(ops::autocast_linear_applies(torch::zeros({2, 96}, o), torch::zeros({200, 96}, o)));
}

// The row-wise cross-entropy kernel against the float64 composite: loss and the in-place
// gradient, fp32/fp16/bf16, vocabularies that do and do not allow 16-byte loads (1, 7, 1003,
// 50277, 50280, 70001), row strides of exactly the vocabulary, 3 more, and the next whole 16-byte
// vector (the shared-memory kernel's last V mod 8 elements read from global memory), and targets
// at both ends. Both kernels run: the row in shared memory (16-bit rows of ≤ 110 KB in 16-byte
// vectors) and the two global passes (fp32 at 50k, bf16 at 70,001, unaligned strides).
TEST(GpuCrossEntropyRows, KernelMatchesFloat64Composite) {
  MCD_SKIP_IF_NO_CUDA();
  int smem_cases = 0, global_cases = 0;
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (int64_t V : {1, 7, 1003, 50277, 50280, 70001}) {
      const int64_t per_vec = 16 / int64_t(c10::elementSize(dt));
      for (int64_t pad : {int64_t(0), int64_t(3), (per_vec - V % per_vec) % per_vec}) {
        torch::manual_seed(V + int(dt) + 7 * pad);
        const int64_t rows = 5;
        const auto cuda = torch::TensorOptions().device(torch::kCUDA);
        at::Tensor big = (torch::randn({rows, V + pad}, cuda) * 4).to(dt);
        at::Tensor x = big.narrow(1, 0, V);
        at::Tensor t = torch::randint(0, V, {rows}, cuda.dtype(torch::kLong));
        t[0] = 0;
        t[1] = V - 1;
        const at::Tensor x64 = x.to(at::kDouble).cpu();
        at::Tensor g64 = x64.clone();
        const at::Tensor ref = ops::cross_entropy_rows_composite(g64, t.cpu(), 0.125, true);
        ASSERT_TRUE(ops::cuda::cross_entropy_rows_supported(x));
        const bool vectorized = ((V + pad) * int64_t(c10::elementSize(dt))) % 16 == 0;  // as the host op decides
        (ops::cuda::cross_entropy_rows_in_smem(vectorized, V, int(c10::elementSize(dt))) ? smem_cases : global_cases)++;
        const at::Tensor tail_before = pad > 0 ? big.narrow(1, V, pad).clone() : at::Tensor();
        const at::Tensor loss = ops::cuda::cross_entropy_rows_cuda(x, t, 0.125, true);
        const std::string what =
            std::string(c10::toString(dt)) + " V=" + std::to_string(V) + " pad=" + std::to_string(pad);
        EXPECT_EQ(loss.scalar_type(), at::kFloat);
        EXPECT_LT(test::rel_err(loss.cpu().to(at::kDouble), ref), 1e-5) << what;
        // The gradient is rounded to the logits' dtype once: [Rounding-flip bounds] (vs float64,
        // one rounding of ≤ 2^-8 / 2^-11 relative, inside the same bounds).
        const double tol = dt == at::kFloat ? 1e-5 : dt == at::kHalf ? 2e-3 : 1e-2;
        EXPECT_LT(test::rel_err(x.cpu().to(at::kDouble), g64), tol) << what;
        if (pad > 0) EXPECT_TRUE(big.narrow(1, V, pad).equal(tail_before)) << what;  // padding untouched
      }
    }
  }
  EXPECT_GE(smem_cases, 8);    // e.g. fp16/bf16 at 50,277 (padded to a vector) and 50,280
  EXPECT_GE(global_cases, 8);  // fp32 at 50k, 70,001, strides of V + 3
}

// The token-embedding gradient kernel (ops/cuda/embedding_backward.cu) against float64 sums: widths
// that take the 16-byte path (768) and the scalar one (77, 3), a 50k vocabulary where most rows get
// no id (written as exact zeros, never left unset) and a 13-row one where every row sums ~300
// gradient rows; two calls give the same bits (fixed order), and the autograd op takes the kernel.
// Bound: each entry is a sequential fp32 sum of k terms from 0, so |error| ≤ k·2⁻²⁴·Σ|terms| (first
// order), k = the row's id count.
TEST(GpuEmbedding, BackwardMatchesFloat64SumsAndRepeatsBitForBit) {
  MCD_SKIP_IF_NO_CUDA();
  int checked = 0;
  for (int64_t V : {50280, 13}) {
    for (int64_t D : {768, 77, 3}) {
      torch::manual_seed(V + D);
      const auto cuda = torch::TensorOptions().device(torch::kCUDA);
      at::Tensor ids = torch::randint(0, V, {2, 2048}, cuda.dtype(torch::kLong));
      ids[0][5] = ids[1][7];  // a repeat even in the large vocabulary
      const at::Tensor grad = torch::randn({2, 2048, D}, cuda);
      ASSERT_TRUE(ops::cuda::embedding_backward_supported(grad, ids, V));
      const at::Tensor a = ops::cuda::embedding_backward_cuda(grad, ids, V);
      const at::Tensor b = ops::cuda::embedding_backward_cuda(grad, ids, V);
      const std::string what = "V=" + std::to_string(V) + " D=" + std::to_string(D);
      ASSERT_EQ(a.sizes(), (std::vector<int64_t>{V, D})) << what;
      EXPECT_TRUE(a.equal(b)) << what;
      const at::Tensor ids_c = ids.reshape({-1}).cpu(), g64 = grad.reshape({-1, D}).cpu().to(at::kDouble);
      const at::Tensor ref = torch::zeros({V, D}, torch::kDouble).index_add_(0, ids_c, g64);
      const at::Tensor abs_sum = torch::zeros({V, D}, torch::kDouble).index_add_(0, ids_c, g64.abs());
      const at::Tensor count = torch::bincount(ids_c, {}, V).to(at::kDouble).unsqueeze(1);
      const at::Tensor bound = count * std::ldexp(1.0, -24) * abs_sum * 1.01;
      const at::Tensor err = (a.cpu().to(at::kDouble) - ref).abs();
      EXPECT_TRUE((err <= bound).all().item<bool>()) << what << ": max excess " << (err - bound).max().item<double>();
      const at::Tensor absent = count.squeeze(1) == 0;
      if (absent.any().item<bool>()) EXPECT_EQ(a.cpu().index({absent}).abs().max().item<float>(), 0.f) << what;
      // The autograd op runs the same kernel.
      at::Tensor w = torch::randn({V, D}, cuda).requires_grad_(true);
      ops::embedding(w, ids).backward(grad);
      EXPECT_TRUE(w.grad().equal(a)) << what;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6);
}

// The SDM channel gate's kernels (ops/cuda/channel_gate.cu) against the float64 composite: both
// forms, blocks of 1 and 3, gate counts that fill no thread block (257, 1001), keyed noise and none,
// the mask and the gradient of Σ w·mask. Bound: the kernel forms the noise n with CUDA's logf, the
// composite with the host's (each within ~1 ulp: ≤ 2·2⁻²³·|log U| ≤ 4e-6 for |n| ≤ 17 from
// 23-bit U), and dz/dn ≤ (ζ − γ)/(4β) = 0.45, so ≤ 1.8e-6 of the mask from the noise; the fp32
// chain itself is ~6 roundings and one expf (~6e-7): 5e-6 holds both. Gradients: the error norm
// relative to their norm, the same terms through s(1 − s): 5e-6. A wrong factor (ζ − γ, 1/β, the
// block sum) is off by 20 % or more. Saturated hard-concrete gates (|α| = 12) must get an exactly
// zero gradient.
TEST(GpuChannelGate, MaskAndGradientMatchFloat64Composite) {
  MCD_SKIP_IF_NO_CUDA();
  int checked = 0;
  for (const ops::GateType type : {ops::GateType::kHardConcrete, ops::GateType::kGumbelSigmoid}) {
    for (const int64_t gates : {int64_t(257), int64_t(1001)}) {
      for (const int64_t block : {int64_t(1), int64_t(3)}) {
        torch::manual_seed(gates + block);
        at::Tensor a = (torch::randn({gates}) * 3.0);
        a[0] = 12.0;
        a[1] = -12.0;
        const std::optional<uint64_t> key =
            gates == 1001 && block == 3 ? std::nullopt : std::optional<uint64_t>(noise_key(7, gates, block));
        const at::Tensor w = torch::randn({gates * block});
        at::Tensor a_gpu = a.to(torch::kCUDA).requires_grad_(true);
        ASSERT_TRUE(ops::cuda::channel_gate_supported(a_gpu));
        const at::Tensor z = ops::channel_gate(a_gpu, key, type, 0.6, block);
        (z * w.to(torch::kCUDA)).sum().backward();
        at::Tensor a64 = a.to(at::kDouble).requires_grad_(true);
        const at::Tensor z64 = ops::channel_gate_composite(a64, key, type, 0.6, block);
        (z64 * w.to(at::kDouble)).sum().backward();
        const std::string what = std::string(type == ops::GateType::kHardConcrete ? "hard_concrete" : "gumbel") +
                                 " gates " + std::to_string(gates) + " block " + std::to_string(block) +
                                 (key ? "" : " no noise");
        EXPECT_LT((z.detach().cpu().to(at::kDouble) - z64.detach()).abs().max().item<double>(), 5e-6) << what;
        EXPECT_LT(test::rel_err(a_gpu.grad().cpu().to(at::kDouble), a64.grad()), 5e-6) << what;
        if (type == ops::GateType::kHardConcrete) {
          EXPECT_EQ(a_gpu.grad()[0].item<float>(), 0.f) << what;
          EXPECT_EQ(a_gpu.grad()[1].item<float>(), 0.f) << what;
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8);
}

// The fused residual add + RMSNorm against the float64 composite, forward and every gradient,
// with and without the mixer output, with and without a gradient flowing into the residual output,
// fp32/bf16/fp16 mixer outputs and fp32/bf16 normed outputs, widths that take the scalar kernels
// (77, 3), the vectorised ones with the row in registers (768, 1024) and without (1536, 2052).
TEST(GpuAddRmsNorm, FusedMatchesFloat64CompositeWithGradients) {
  MCD_SKIP_IF_NO_CUDA();
  struct Case {
    int64_t b, l, d;
    bool prev;
    at::ScalarType prev_t, out_t;
    bool residual_grad = true;  // false: only normed has a gradient (no incoming residual gradient)
  };
  const Case cases[] = {{3, 5, 77, true, at::kBFloat16, at::kBFloat16},
                        {2, 300, 768, true, at::kBFloat16, at::kBFloat16, false},
                        {1, 9, 77, true, at::kFloat, at::kFloat, false},
                        {2, 300, 768, true, at::kFloat, at::kFloat},
                        {1, 7, 1024, false, at::kFloat, at::kBFloat16},
                        {2, 33, 768, true, at::kHalf, at::kFloat},
                        {1, 2, 3, true, at::kFloat, at::kFloat},
                        // rows wider than the vectorised kernels' register cache (1024)
                        {2, 9, 1536, true, at::kBFloat16, at::kBFloat16},
                        {1, 5, 2052, true, at::kFloat, at::kFloat},
                        // more rows than the backward's grid has warps (each warp takes several
                        // rows, more partials than the fixed-order sum has slices); D not a
                        // multiple of the sum's 32 columns
                        {8, 1000, 100, true, at::kBFloat16, at::kBFloat16},
                        {4, 2048, 1024, true, at::kBFloat16, at::kBFloat16}};
  for (const Case& c : cases) {
    torch::manual_seed(c.d + c.l);
    const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
    const at::Tensor res = torch::randn({c.b, c.l, c.d}, f64), prev = torch::randn({c.b, c.l, c.d}, f64);
    const at::Tensor w = 1 + 0.1 * torch::randn({c.d}, f64);
    const at::Tensor g_normed = torch::randn({c.b, c.l, c.d}, f64).to(c.out_t);  // rounded as the kernel sees it
    const at::Tensor g_res = torch::randn({c.b, c.l, c.d}, f64).to(at::kFloat);
    const at::Tensor r_k = res.to(torch::kCUDA, at::kFloat).requires_grad_(true);
    const at::Tensor p_k = c.prev ? prev.to(torch::kCUDA, c.prev_t).requires_grad_(true) : at::Tensor();
    const at::Tensor w_k = w.to(torch::kCUDA, at::kFloat).requires_grad_(true);
    ASSERT_TRUE(ops::cuda::add_norm_supported(r_k, p_k, w_k, c.out_t));
    const ops::AddNormOut k = ops::add_rms_norm(r_k, p_k, w_k, 1e-5, c.out_t);
    EXPECT_EQ(k.normed.scalar_type(), c.out_t);
    EXPECT_EQ(k.residual.scalar_type(), at::kFloat);
    if (c.residual_grad)
      torch::autograd::backward({k.normed, k.residual}, {g_normed.to(torch::kCUDA), g_res.to(torch::kCUDA)});
    else
      torch::autograd::backward({k.normed}, {g_normed.to(torch::kCUDA)});
    // float64 reference from the same rounded inputs.
    const at::Tensor r_r = r_k.detach().cpu().to(at::kDouble).requires_grad_(true);
    const at::Tensor p_r = c.prev ? p_k.detach().cpu().to(at::kDouble).requires_grad_(true) : at::Tensor();
    const at::Tensor w_r = w_k.detach().cpu().to(at::kDouble).requires_grad_(true);
    const ops::AddNormOut r = ops::add_rms_norm_composite(r_r, p_r, w_r, 1e-5, at::kDouble);
    if (c.residual_grad)
      torch::autograd::backward({r.normed, r.residual}, {g_normed.to(at::kDouble), g_res.to(at::kDouble)});
    else
      torch::autograd::backward({r.normed}, {g_normed.to(at::kDouble)});
    const bool f32 = c.out_t == at::kFloat && (!c.prev || c.prev_t == at::kFloat);
    // Low-precision outputs are rounded once from fp32 (vs float64 from the same rounded inputs):
    // [Rounding-flip bounds]; fp32: sums over d ≤ 2048 terms, ~√d·2^-24 ≪ 1e-5.
    const double tol = f32 ? 1e-5 : 1e-2;
    const std::string what = "d=" + std::to_string(c.d) + (c.prev ? " with prev" : " no prev") +
                             (c.residual_grad ? "" : ", normed's gradient only");
    EXPECT_LT(test::rel_err(k.normed, r.normed), tol) << what;
    EXPECT_LT(test::rel_err(k.residual, r.residual), 1e-6) << what;
    EXPECT_LT(test::rel_err(r_k.grad(), r_r.grad()), 1e-5) << what;  // fp32 from the rounded inputs
    EXPECT_LT(test::rel_err(w_k.grad(), w_r.grad()), 1e-5) << what;
    if (c.prev) {
      EXPECT_EQ(p_k.grad().scalar_type(), c.prev_t);
      EXPECT_LT(test::rel_err(p_k.grad(), p_r.grad()), c.prev_t == at::kFloat ? 1e-5 : 1e-2) << what;
    }
  }
}

// A bf16 model serving (no gradients): its bf16 norm weight takes the fused kernel too, on the fp32
// residual; the output matches float64 from the same fp32 residual and the exact fp32 copy of the
// weight within one bf16 rounding ([Rounding-flip bounds]: 1e-2 norm-wise), and the residual sum is fp32.
TEST(GpuAddRmsNorm, HalfPrecisionWeightWithoutGradientsTakesTheFusedKernel) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  for (const int64_t d : {768, 77}) {
    const at::Tensor res = torch::randn({3, d}, f64), prev = torch::randn({3, d}, f64);
    const at::Tensor w = (1 + 0.1 * torch::randn({d}, f64)).to(torch::kCUDA, at::kBFloat16);
    const at::Tensor r_k = res.to(torch::kCUDA, at::kFloat), p_k = prev.to(torch::kCUDA, at::kBFloat16);
    const ops::AddNormOut k = ops::add_rms_norm(r_k, p_k, w, 1e-5, at::kBFloat16);
    EXPECT_EQ(k.normed.scalar_type(), at::kBFloat16);
    EXPECT_EQ(k.residual.scalar_type(), at::kFloat);
    const at::Tensor r64 = r_k.cpu().to(at::kDouble) + p_k.cpu().to(at::kDouble);
    const at::Tensor ref = w.cpu().to(at::kDouble) * r64 * torch::rsqrt(r64.pow(2).mean(-1, true) + 1e-5);
    EXPECT_LT(test::rel_err(k.normed, ref), 1e-2) << d;
    EXPECT_LT(test::rel_err(k.residual, r64), 1e-6) << d;
    // The kernel reads the bf16 weight as it is: the same bits as with the weight cast to fp32
    // first (each bf16 value is exact in fp32, and the arithmetic after the load is the same).
    const ops::AddNormOut k32 = ops::add_rms_norm(r_k, p_k, w.to(at::kFloat), 1e-5, at::kBFloat16);
    EXPECT_TRUE(torch::equal(k.normed, k32.normed)) << d;
    EXPECT_TRUE(torch::equal(k.residual, k32.residual)) << d;
  }
}

// The fused mixer (ops/mamba_inner.h) against the op-by-op mixer, both on the kernels: a small
// random model's loss and every parameter gradient, in fp32 and under bf16 autocast, without and
// with the linear layers' biases (out_proj's bias is inside the fused node), keeping the conv
// output for the backward or recomputing it.
TEST(GpuMambaInner, FusedMixerMatchesOpByOpMixer) {
  MCD_SKIP_IF_NO_CUDA();
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 101;
  c.n_layer = 2;
  c.d_inner_per_layer = {128, 37};
  const at::Tensor ids = torch::randint(0, 101, {3, 300}, torch::kLong).to(torch::kCUDA);
  for (int mode = 0; mode < 6; ++mode) {
    const bool autocast = mode % 3 == 1, save_u = mode < 3;
    c.use_bias = mode % 3 == 2;
    ops::OpsOptions saving = ops::ops_options();
    saving.mixer_saves_conv_output = save_u;
    const ops::ScopedOpsOptions save_scope(saving);
    MambaLM a(c), b(c);
    for (MambaLM* m : {&a, &b}) {
      init_reference(**m, 11);
      torch::NoGradGuard no_grad;
      torch::manual_seed(12);
      for (auto& p : (*m)->named_parameters())  // the reference init zeroes them: make them count
        if (p.key().find("in_proj.bias") != std::string::npos || p.key().find("out_proj.bias") != std::string::npos)
          p.value().copy_(0.1 * torch::randn(p.value().sizes()));
      (*m)->to(torch::kCUDA);
    }
    auto loss_of = [&](MambaLM& m, bool fused) {
      ops::OpsOptions o = ops::ops_options();
      o.fused_mixer = fused;
      const ops::ScopedOpsOptions fused_scope(o);
      at::Tensor loss;
      {
        CudaAutocastScope scope(autocast);
        loss = m->loss(ids);
      }
      loss.backward();
      return loss.detach().reshape({1});
    };
    const at::Tensor la = loss_of(a, true), lb = loss_of(b, false);
    // Under autocast both paths round the same fp32 intermediates to bf16 at different points
    // (the fused mixer keeps some in fp32): per rounding ≤ 2^-8 relative, ~3–4 roundings along
    // a parameter's gradient chain ≈ 1.5e-2, so 3e-2 (2×); the loss averages 900 tokens' errors,
    // 1e-3. fp32: reordered sums over B·L = 900 positions, ~900·2^-24 ≈ 5e-5 worst case, 1e-4.
    const double tl = autocast ? 1e-3 : 1e-5, tg = autocast ? 3e-2 : 1e-4;
    const std::string what = std::string(autocast ? "bf16 autocast" : c.use_bias ? "fp32 with biases" : "fp32") +
                             (save_u ? ", u saved" : ", u recomputed");
    EXPECT_LT(test::rel_err(la, lb), tl) << what;
    auto gb = b->named_parameters();
    for (const auto& p : a->named_parameters())
      EXPECT_LT(test::rel_err(p.value().grad(), gb[p.key()].grad()), tg) << p.key() << " " << what;
  }
  c.use_bias = false;
  // The path the model took above is the fused one: its inputs are supported.
  MambaLM m(c);
  m->to(torch::kCUDA);
  const auto& mixer = m->backbone->blocks[0]->mixer;
  const ops::MambaInnerWeights w{mixer->conv1d->weight.squeeze(1), mixer->conv1d->bias, mixer->x_proj->weight,
                                 mixer->dt_proj->weight, mixer->dt_proj->bias, -torch::exp(mixer->A_log),
                                 mixer->D, mixer->out_proj->weight};
  EXPECT_TRUE(ops::mamba_inner_supported(torch::zeros({1, 4, 256}, torch::TensorOptions().device(torch::kCUDA)), w));
}

// The fused mixer with an SDM mask m (MambaInnerWeights::mask; the caller folds m into x_proj's
// weight, W_x⊙m along E) against the op-by-op composite with u multiplied by m, in fp32 and bf16:
// the output and the gradients of xz, every weight and m (through the fold and the scan's dm
// together, as in the composite through u⊙m). Tolerance rule of this file: the fused node's error
// against float64 (the composite on the same rounded inputs) at most 2× the composite's own error
// in the same precision, plus the floor. One gate is closed (m = 0).
TEST(GpuMambaInner, FusedMixerWithMaskMatchesCompositeWithMaskedU) {
  MCD_SKIP_IF_NO_CUDA();
  const int64_t B = 2, L = 300, E = 40, N = 16, R = 6, Dm = 24, K = 4;
  torch::manual_seed(31);
  const auto f64 = torch::TensorOptions().dtype(at::kDouble);
  // Master values in float64 (drawn like a trained model's, see scan_values).
  const at::Tensor dt0 = torch::exp(torch::rand({E}, f64) * (std::log(0.1) - std::log(1e-3)) + std::log(1e-3));
  at::Tensor mask0 = torch::rand({E}, f64);
  mask0[E / 2] = 0.0;
  const std::vector<at::Tensor> master{
      torch::randn({B, L, 2 * E}, f64),                                    // 0 xz
      0.5 * torch::randn({E, K}, f64),                                     // 1 conv weight
      0.1 * torch::randn({E}, f64),                                        // 2 conv bias
      torch::randn({R + 2 * N, E}, f64) / std::sqrt(double(E)),            // 3 x_proj weight
      torch::randn({E, R}, f64) / std::sqrt(double(R)),                    // 4 dt_proj weight
      dt0 + torch::log(-torch::expm1(-dt0)),                               // 5 Δ bias (inverse softplus)
      -torch::exp(torch::log(torch::arange(1, N + 1, f64)).unsqueeze(0) +
                  0.3 * torch::randn({E, N}, f64)),                        // 6 A
      torch::randn({E}, f64),                                              // 7 D
      torch::randn({Dm, E}, f64) / std::sqrt(double(E)),                   // 8 out_proj weight
      mask0};                                                              // 9 mask
  const char* names[] = {"xz", "conv_weight", "conv_bias", "x_proj_weight", "dt_proj_weight",
                         "dt_proj_bias", "A", "D", "out_proj_weight", "mask"};
  const at::Tensor gout0 = torch::randn({B, L, Dm}, f64);
  // The op-by-op mixer in LibTorch ops with u' = m⊙u feeding x_proj, the scan and the D skip.
  auto composite = [&](const std::vector<at::Tensor>& v) {
    const at::Tensor& xz = v[0];
    const auto dt = xz.scalar_type();
    const at::Tensor x = xz.narrow(2, 0, E).transpose(1, 2), z = xz.narrow(2, E, E).transpose(1, 2);
    const at::Tensor u = ops::causal_conv1d_composite(x, v[1], v[2], /*silu=*/true);
    const at::Tensor um = u * v[9].to(dt).view({1, E, 1});
    const at::Tensor x_dbl = at::matmul(um.transpose(1, 2), v[3].to(dt).t());  // (B, L, R + 2N)
    ops::ScanInputs in;
    in.u = um;
    in.delta = at::matmul(x_dbl.narrow(2, 0, R), v[4].to(dt).t()).transpose(1, 2);
    in.A = v[6];
    in.B = x_dbl.narrow(2, R, N).transpose(1, 2);
    in.C = x_dbl.narrow(2, R + N, N).transpose(1, 2);
    in.D = v[7];
    in.z = z;
    in.delta_bias = v[5];
    in.delta_softplus = true;
    const at::Tensor y = ops::selective_scan_composite(in);
    return at::matmul(y.transpose(1, 2), v[8].to(dt).t());  // (B, L, Dm)
  };
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    std::printf("  masked fused mixer %s\n", dtype_name(dtype));
    // xz rounded to the activation dtype, the weights and the mask to fp32; the reference sees
    // exactly these numbers in float64.
    std::vector<at::Tensor> lo(master.size());
    for (size_t i = 0; i < master.size(); ++i)
      lo[i] = master[i].to(torch::kCUDA, i == 0 ? dtype : at::kFloat);
    const at::Tensor gout = gout0.to(torch::kCUDA, dtype);
    auto leaves = [&](auto&& convert) {
      std::vector<at::Tensor> v;
      for (const at::Tensor& t : lo) v.push_back(convert(t).detach().requires_grad_(true));
      return v;
    };
    const std::vector<at::Tensor> ref = leaves([](const at::Tensor& t) { return t.to(torch::kCPU, at::kDouble); });
    const std::vector<at::Tensor> plain = leaves([](const at::Tensor& t) { return t.clone(); });
    const std::vector<at::Tensor> fused = leaves([](const at::Tensor& t) { return t.clone(); });
    const at::Tensor out_ref = composite(ref);
    out_ref.backward(gout.to(torch::kCPU, at::kDouble));
    const at::Tensor out_plain = composite(plain);
    out_plain.backward(gout);
    at::Tensor out_fused;
    {
      const PoisonOutputs poison;
      const auto& v = fused;
      ops::MambaInnerWeights w;
      w.conv_weight = v[1];
      w.conv_bias = v[2];
      w.x_proj_weight = v[3] * v[9].view({1, E});  // the caller's fold: W_x⊙m along E
      w.dt_proj_weight = v[4];
      w.dt_proj_bias = v[5];
      w.A = v[6];
      w.D = v[7];
      w.out_proj_weight = v[8];
      w.mask = v[9];
      ASSERT_TRUE(ops::mamba_inner_supported(v[0], w));
      ops::MambaInnerWeights wrong = w;
      wrong.mask = v[9].narrow(0, 0, E - 1);
      EXPECT_FALSE(ops::mamba_inner_supported(v[0], wrong));
      out_fused = ops::mamba_inner(v[0], w);
      out_fused.backward(gout);
    }
    EXPECT_EQ(out_fused.scalar_type(), dtype);
    expect_rule("out", out_fused, out_plain, out_ref, dtype);
    for (size_t i = 0; i < master.size(); ++i) {
      ASSERT_TRUE(fused[i].grad().defined()) << names[i];
      expect_rule(std::string("d") + names[i], fused[i].grad(), plain[i].grad(), ref[i].grad(), dtype);
    }
    // The closed gate: its channel contributes nothing, so the out_proj column gets no gradient.
    EXPECT_EQ(fused[8].grad().select(1, E / 2).abs().max().item<double>(), 0.0);
  }
}

#endif  // MCD_WITH_CUDA

}  // namespace
}  // namespace mcd
