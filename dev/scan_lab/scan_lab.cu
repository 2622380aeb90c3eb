// The selective scan's kernel lab: the experimental versions of docs/PERF_NOTES.md (1–4, 7, 9, 10),
// instantiated from the library's kernel templates with the parameters that made them, beside the
// five production algorithms (through the library's entry points), and the lab's own forward-only
// versions (13–19: a block of warps per channel, block_scan_fwd.cuh; 18–19 stage B and C in shared
// memory) and the library's block forward in its lab configurations (28–49, block_versions_*.cu, also
// timed in bf16), 50–52 (eight lanes per state-sequential channel, for small B·E; 53, the
// production pairing, is `state_sequential_eight_lanes`), 54–57 (block forward, B and C staged, two
// warps per channel: for the pruned widths), 58 (version 12 in 16-channel blocks) and 59–67 (block
// forward with the state-group loop rolled), checked against a float64 CPU reference and timed. Built
// only with -DMCD_BUILD_DEV=ON; not part of the library or its tests.
//   usage: scan_lab [--check-only] [--reps N] [--shape B,L,E,N] [--channel-last] [--only 5,8,50]
//   (fp32 activations; (B, E, L) time-contiguous, or with --channel-last (B, L, E) as the model's
//   mixer hands them to the scan; B and C are (B, N, L) either way)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ops/cuda/scan_params.h"
#include "ops/cuda/selective_scan_bwd.cuh"
#include "ops/cuda/selective_scan_fwd.cuh"
#include "block_scan_fwd.cuh"
#include "lab_version.h"

using namespace mcd::ops::cuda;
using scan_lab::Flags;
using scan_lab::Version;
using scan_lab::block_forward_versions_a;
using scan_lab::block_forward_versions_b;
using scan_lab::block_forward_versions_c;
using scan_lab::block_forward_versions_d;

namespace {

struct Shape {
  int64_t b, l, e, n;
};
bool g_channel_last = false;  // --channel-last: the (B, E, L) operands live as (B, L, E) on the device

// A (B, E, L) host array in the device layout (to_device), or a device-layout array back in (B, E, L).
std::vector<double> relayout(const std::vector<double>& v, const Shape& s, bool to_device) {
  if (!g_channel_last) return v;
  std::vector<double> o(v.size());
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t e = 0; e < s.e; ++e)
      for (int64_t t = 0; t < s.l; ++t) {
        const int64_t time_contiguous = (b * s.e + e) * s.l + t, channel_last = (b * s.l + t) * s.e + e;
        if (to_device) o[channel_last] = v[time_contiguous];
        else o[time_contiguous] = v[channel_last];
      }
  return o;
}
std::vector<double> to_device_layout(const std::vector<double>& v, const Shape& s) { return relayout(v, s, true); }
std::vector<double> from_device_layout(const std::vector<double>& v, const Shape& s) { return relayout(v, s, false); }

// ---------------------------------------------------------------- float64 CPU reference
// Plain loops, all optional inputs present: Δ = softplus(δ + bias), u' = m⊙u,
// h_t = exp(Δ_t A)⊙h_{t−1} + Δ_t B_t u'_t, y_t = C_t·h_t + D u'_t, out = y⊙SiLU(z).
struct Host {
  std::vector<double> u, delta, z, Bm, Cm, A, D, bias, mask, dout;  // (B,E,L) / (B,N,L) / (E,N) / (E)
};
struct RefOut {
  std::vector<double> out, du, ddelta, dz, dB, dC, dA, dD, dbias, dmask;
};

double softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

RefOut reference(const Host& h, const Shape& s) {
  const int64_t B = s.b, L = s.l, E = s.e, N = s.n;
  RefOut r;
  r.out.assign(B * E * L, 0);
  r.du = r.ddelta = r.dz = r.out;
  r.dB.assign(B * N * L, 0);
  r.dC = r.dB;
  r.dA.assign(E * N, 0);
  r.dD.assign(E, 0);
  r.dbias = r.dmask = r.dD;
  std::vector<double> hs((L + 1) * N), dh(N);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t e = 0; e < E; ++e) {
      auto at = [&](int64_t t) { return (b * E + e) * L + t; };
      auto bn = [&](int64_t n, int64_t t) { return (b * N + n) * L + t; };
      std::fill(hs.begin(), hs.end(), 0.0);
      std::vector<double> y(L);
      for (int64_t t = 0; t < L; ++t) {
        const double dt = softplus(h.delta[at(t)] + h.bias[e]), uu = h.u[at(t)] * h.mask[e];
        double acc = h.D[e] * uu;
        for (int64_t n = 0; n < N; ++n) {
          hs[(t + 1) * N + n] = std::exp(dt * h.A[e * N + n]) * hs[t * N + n] + dt * h.Bm[bn(n, t)] * uu;
          acc += h.Cm[bn(n, t)] * hs[(t + 1) * N + n];
        }
        y[t] = acc;
        const double zz = h.z[at(t)];
        r.out[at(t)] = acc * zz * sigmoid(zz);
      }
      std::fill(dh.begin(), dh.end(), 0.0);
      for (int64_t t = L - 1; t >= 0; --t) {
        const double pre = h.delta[at(t)] + h.bias[e], dt = softplus(pre), uu = h.u[at(t)] * h.mask[e];
        const double zz = h.z[at(t)], sz = sigmoid(zz), g = h.dout[at(t)];
        r.dz[at(t)] = g * y[t] * sz * (1 + zz * (1 - sz));
        const double dy = g * zz * sz;
        double duu = dy * h.D[e], ddt = 0;
        r.dD[e] += dy * uu;
        for (int64_t n = 0; n < N; ++n) {
          const double hp = hs[t * N + n], a = std::exp(dt * h.A[e * N + n]);
          dh[n] += dy * h.Cm[bn(n, t)];
          r.dC[bn(n, t)] += dy * hs[(t + 1) * N + n];
          ddt += dh[n] * (hp * a * h.A[e * N + n] + h.Bm[bn(n, t)] * uu);
          r.dA[e * N + n] += dh[n] * hp * a * dt;
          r.dB[bn(n, t)] += dh[n] * dt * uu;
          duu += dh[n] * dt * h.Bm[bn(n, t)];
          dh[n] *= a;
        }
        r.du[at(t)] = duu * h.mask[e];
        r.dmask[e] += duu * h.u[at(t)];
        r.ddelta[at(t)] = ddt * sigmoid(pre);
        r.dbias[e] += r.ddelta[at(t)];
      }
    }
  return r;
}

// ---------------------------------------------------------------- device buffers
#define LAB_CHECK(x)                                                                        \
  do {                                                                                      \
    const cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                                \
      std::fprintf(stderr, "scan_lab: %s at %s:%d: %s\n", #x, __FILE__, __LINE__, cudaGetErrorString(e_)); \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

struct Buf {
  float* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t n_) : n(std::max<size_t>(n_, 1)) { LAB_CHECK(cudaMalloc(&p, n * sizeof(float))); }
  ~Buf() { cudaFree(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  void put(const std::vector<double>& v) {
    std::vector<float> f(v.begin(), v.end());
    LAB_CHECK(cudaMemcpy(p, f.data(), f.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  std::vector<double> get() const {
    std::vector<float> f(n);
    LAB_CHECK(cudaMemcpy(f.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return std::vector<double>(f.begin(), f.end());
  }
  void zero() { LAB_CHECK(cudaMemset(p, 0, n * sizeof(float))); }
  void poison() { LAB_CHECK(cudaMemset(p, 0xff, n * sizeof(float))); }  // NaN
};

// One call's device inputs, outputs and gradients, in the (B, E, L) / (B, N, L) contiguous layout.
struct Device {
  Shape s;
  Buf u, delta, z, Bm, Cm, A, D, bias, mask, dout, out, states, du, ddelta, dz, dB, dC, dA, dD, dbias, dmask;
  explicit Device(const Shape& s_)
      : s(s_), u(ble()), delta(ble()), z(ble()), Bm(bnl()), Cm(bnl()), A(s.e * s.n), D(s.e), bias(s.e), mask(s.e),
        dout(ble()), out(ble()), states(s.b * s.e * (s.l + kSeqSub - 1) / kSeqSub * s.n + s.b * s.e * s.n),
        du(ble()), ddelta(ble()), dz(ble()), dB(bnl()), dC(bnl()), dA(s.e * s.n), dD(s.e), dbias(s.e),
        dmask(s.e) {}
  size_t ble() const { return size_t(s.b * s.e * s.l); }
  size_t bnl() const { return size_t(s.b * s.n * s.l); }
  // Parameters for a version saving a state every `chunk` steps; atomic dB/dC and parameter sums.
  SelectiveScanParams params(int64_t chunk) {
    SelectiveScanParams p;
    p.dtype = DType::kFloat32;
    p.batch = s.b, p.dim = s.e, p.len = s.l, p.dstate = s.n;
    p.n_chunks = (s.l + chunk - 1) / chunk;
    const Strides3 act = g_channel_last ? Strides3{s.e * s.l, 1, s.e} : Strides3{s.e * s.l, s.l, 1};
    const Strides3 st{s.n * s.l, s.l, 1};
    p.u = u.p, p.u_s = act, p.delta = delta.p, p.delta_s = act, p.z = z.p, p.z_s = act;
    p.Bm = Bm.p, p.B_s = st, p.Cm = Cm.p, p.C_s = st;
    p.A = A.p, p.D = D.p, p.delta_bias = bias.p, p.mask = mask.p;
    p.out = out.p, p.out_s = act, p.states = states.p;
    p.dout = dout.p, p.dout_s = act, p.du = du.p, p.du_s = act, p.ddelta = ddelta.p, p.ddelta_s = act;
    p.dz = dz.p, p.dz_s = act, p.dB = dB.p, p.dC = dC.p;
    p.param_grads_atomic = true;
    p.dA_part = dA.p, p.dD_part = dD.p, p.ddelta_bias_part = dbias.p, p.dmask_part = dmask.p;
    return p;
  }
  void clear_grads() {
    for (Buf* b : {&dB, &dC, &dA, &dD, &dbias, &dmask}) b->zero();
    for (Buf* b : {&out, &du, &ddelta, &dz}) b->poison();
  }
};

// ---------------------------------------------------------------- the versions

// Versions 50–52 (small B·E, a pruned model's training scan: B·E = 3,072 at 130M with 75 % of the
// channels pruned runs 96 four-lane blocks, under one per SM): eight lanes per channel with two states
// each, forward and backward, for twice the warps. Version 10 tried the backward alone at full widths
// and six blocks per SM (the library's SeqBwdEightLanes); here four blocks per SM (no register cap
// below 128), and the dense plan (states every 8 steps) at four too. Version 53 (51's forward, 10's
// backward) became the library's kStateSequentialEightLanes.
struct SeqBwdEightLanesFour {
  static constexpr bool kDense = false, kKeepA = false;
  static constexpr int kMinBlocks = 4, kWarps = 4;
};
struct SeqBwdEightLanesDense {  // four per SM: the three-per-SM plan's shared sums assume 4 × 4 lanes
  static constexpr bool kDense = true, kKeepA = true;
  static constexpr int kMinBlocks = 4, kWarps = 4;
};

// Version 58 (the twenty-first session's hypothesis, for the 130M 25 % training width): the dense
// plan of version 12 in blocks of 16 channels (64 threads, two warps) instead of 32, six per SM by
// registers — the same registers, warps and shared-memory planes per SM as 12's three 128-thread
// blocks (bf16 shared memory allows five: 41.3 KB against 12's 73.5; in fp32 53.6 against 93.9, four
// and two per SM). At (8, 2048, 1152) version 12 runs 288 blocks on 132 SMs: 24 SMs hold three (96
// channels), the rest two, and the scan took as long as the dense model's (8, 2048, 1536) — 384
// blocks, ~three per SM — as if each SM's time followed its channels (issue-bound), not one block's
// walk (latency-bound). Prediction (issue-bound): at E = 1,152 at most 80 channels per SM, ~0.83× 12's
// time; no change at E = 1,536. Measured (H100, bf16, time-contiguous layout; docs/PERF_NOTES.md,
// "Twenty-first session"): the backward 0.97× at E = 1,152 (the latency reading holds) and 1.52×
// slower at 1,536 (five blocks per SM: 1.16 waves); the forward 0.79× / 0.72× at both widths. In the
// model's channel-last layout (--channel-last, "Twenty-second session") version 12's forward is fast
// (338 µs at E = 1,536 against 557 time-contiguous) and 58's is 3–6 % slower at E = 1,536 / 1,152 / 384:
// the forward's win belonged to the lab's layout, and the library keeps 128-thread blocks.
struct SeqBwdOneWaveDenseNarrow {
  static constexpr bool kDense = true, kKeepA = true;
  static constexpr int kMinBlocks = 2 * kSeqFatBlocksPerSm, kWarps = 2;
};
using SeqQuadNarrow = SeqTraits<64, 4, 4>;  // 16 channels of four lanes × four states

// bf16: also timed with bf16 activations, forward and backward (the library dispatches on p.dtype).
Version production(int number, ScanAlgorithm a, bool bf16 = false) {
  auto with = [a](SelectiveScanParams p) {
    p.algorithm = a;
    return p;
  };
  Version v{std::to_string(number) + " " + scan_algorithm_name(a), scan_state_chunk(a),
            [with](const SelectiveScanParams& p) { selective_scan_fwd(with(p)); },
            [with](const SelectiveScanParams& p) { selective_scan_bwd(with(p)); }};
  if (bf16) v.fwd_bf16 = v.fwd, v.bwd_bf16 = v.bwd;
  return v;
}

// A state-sequential lab version: its kernels in fp32 (checked and timed) and in bf16 (timed only:
// the training dtype, whose smaller tiles change how many blocks an SM holds).
template <class Tr, int kEvery, class Plan>
Version seq_version(const std::string& name) {
  using Bf = __nv_bfloat16;
  return {name, kEvery, selective_scan_seq_fwd_run<Tr, float, Flags, kEvery>,
          selective_scan_seq_bwd_run<Tr, Plan, float, Flags>, mcd::ops::cuda::kScanMaxState,
          selective_scan_seq_fwd_run<Tr, Bf, Flags, kEvery>, selective_scan_seq_bwd_run<Tr, Plan, Bf, Flags>};
}

std::vector<Version> versions() {
  using T = float;
  using Quad4 = SeqBwdPlan<SeqBwdFourPerSm>;
  std::vector<Version> out = {
      {"1 one load in flight", kScanChunk, selective_scan_fwd_run<ScanConfig, T, Flags, 1, 1>,
       selective_scan_bwd_run<ScanConfig, T, Flags, 1>},
      {"2 batched loads", kScanChunk, selective_scan_fwd_run<ScanConfig, T, Flags, 8, 1>,
       selective_scan_bwd_run<ScanConfig, T, Flags, 8>},
      {"3 batched loads, state loop x2", kScanChunk, selective_scan_fwd_run<ScanConfig, T, Flags, 8, 2>,
       selective_scan_bwd_run<ScanConfig, T, Flags, 8>},
      {"4 as 3, 32 lanes", kScanChunk, selective_scan_fwd_run<ScanConfigWide, T, Flags, 8, 2>,
       selective_scan_bwd_run<ScanConfigWide, T, Flags, 8>},
      production(5, ScanAlgorithm::kTimeParallel),
      production(6, ScanAlgorithm::kTimeParallelWide),
      {"7 seq fwd 1 lane x 16 states", kSeqChunk, selective_scan_seq_fwd_run<SeqTraits<64, 1, 16>, T, Flags, kSeqChunk>,
       selective_scan_seq_bwd_run<SeqQuad, Quad4, T, Flags>},
      production(8, ScanAlgorithm::kStateSequential),
      {"9 seq fwd 2 lanes x 8 states", kSeqChunk, selective_scan_seq_fwd_run<SeqTraits<128, 2, 8>, T, Flags, kSeqChunk>,
       selective_scan_seq_bwd_run<SeqQuad, Quad4, T, Flags>},
      {"10 seq bwd 8 lanes x 2 states", kSeqChunk, selective_scan_seq_fwd_run<SeqQuad, T, Flags, kSeqChunk>,
       selective_scan_seq_bwd_run<SeqTraits<128, 8, 2>, SeqBwdPlan<SeqBwdEightLanes>, T, Flags>},
      production(11, ScanAlgorithm::kStateSequentialOneWave),
      production(12, ScanAlgorithm::kStateSequentialDense, true),
      production(53, ScanAlgorithm::kStateSequentialEightLanes, true),
      {"13 block fwd 4 warps x 8 items", kScanChunk, lab::block_scan_fwd_run<4, 8, T, Flags>, {},
       lab::kBlockScanMaxN},
      {"14 block fwd 8 warps x 4 items", kScanChunk, lab::block_scan_fwd_run<8, 4, T, Flags>, {},
       lab::kBlockScanMaxN},
      {"15 block fwd 4 warps x 16 items", kScanChunk, lab::block_scan_fwd_run<4, 16, T, Flags>, {},
       lab::kBlockScanMaxN},
      {"16 block fwd 2 ch x 4 warps x 8", kScanChunk, lab::block_scan_fwd_run<4, 8, T, Flags, 2>, {},
       lab::kBlockScanMaxN},
      {"17 block fwd 4 ch x 2 warps x 8", kScanChunk, lab::block_scan_fwd_run<2, 8, T, Flags, 4>, {},
       lab::kBlockScanMaxN},
      {"18 as 17 x 4 steps, B/C staged", kScanChunk, lab::block_scan_fwd_run<2, 4, T, Flags, 4, true>, {},
       lab::kBlockScanMaxN},
      {"19 2 warps x 4 steps, B/C staged", kScanChunk, lab::block_scan_fwd_run<2, 4, T, Flags, 1, true>, {},
       lab::kBlockScanMaxN},
      {"50 seq 8 lanes x 2, fwd and bwd", kSeqChunk,
       selective_scan_seq_fwd_run<SeqTraits<128, 8, 2>, T, Flags, kSeqChunk>,
       selective_scan_seq_bwd_run<SeqTraits<128, 8, 2>, SeqBwdPlan<SeqBwdEightLanesFour>, T, Flags>},
      {"51 seq fwd 8 lanes x 2, bwd of 8", kSeqChunk,
       selective_scan_seq_fwd_run<SeqTraits<128, 8, 2>, T, Flags, kSeqChunk>,
       selective_scan_seq_bwd_run<SeqQuad, Quad4, T, Flags>},
      {"52 as 50, dense states (as 12)", kSeqSub, selective_scan_seq_fwd_run<SeqTraits<128, 8, 2>, T, Flags, kSeqSub>,
       selective_scan_seq_bwd_run<SeqTraits<128, 8, 2>, SeqBwdPlan<SeqBwdEightLanesDense>, T, Flags>},
      seq_version<SeqQuadNarrow, kSeqSub, SeqBwdPlan<SeqBwdOneWaveDenseNarrow>>("58 as 12, 16-channel blocks"),
  };
  for (auto part : {block_forward_versions_a, block_forward_versions_b, block_forward_versions_c,
                    block_forward_versions_d})
    for (Version& v : part()) out.push_back(std::move(v));  // block_versions_{a,b,c,d}.cu
  return out;
}

// bf16 copies of a version's activations (u, Δ, z, B, C) and a bf16 output, for the versions timed
// in bf16 too (the library's block forward: the model's prefill runs it in bf16).
__global__ void to_bf16_kernel(const float* a, __nv_bfloat16* b, size_t n) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) b[i] = __float2bfloat16(a[i]);
}
struct BufBf16 {
  __nv_bfloat16* p = nullptr;
  explicit BufBf16(const Buf& from) {
    LAB_CHECK(cudaMalloc(&p, from.n * sizeof(__nv_bfloat16)));
    to_bf16_kernel<<<unsigned((from.n + 255) / 256), 256>>>(from.p, p, from.n);
    LAB_CHECK(cudaGetLastError());
  }
  ~BufBf16() { cudaFree(p); }
  BufBf16(const BufBf16&) = delete;
  BufBf16& operator=(const BufBf16&) = delete;
};

// ---------------------------------------------------------------- check and time
Host random_host(const Shape& s, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd;
  std::uniform_real_distribution<double> ud;
  auto randn = [&](int64_t n, double scale) {
    std::vector<double> v(n);
    for (auto& x : v) x = scale * nd(rng);
    return v;
  };
  Host h;
  const int64_t ble = s.b * s.e * s.l, bnl = s.b * s.n * s.l;
  h.u = randn(ble, 1), h.delta = randn(ble, 0.5), h.z = randn(ble, 1), h.Bm = randn(bnl, 1), h.Cm = randn(bnl, 1);
  h.dout = randn(ble, 1), h.D = randn(s.e, 1);
  h.A.resize(s.e * s.n);
  for (int64_t e = 0; e < s.e; ++e)
    for (int64_t n = 0; n < s.n; ++n) h.A[e * s.n + n] = -std::exp(std::log(double(n + 1)) + 0.3 * nd(rng));
  h.bias.resize(s.e), h.mask.resize(s.e);
  for (int64_t e = 0; e < s.e; ++e) {
    const double dt = std::exp(ud(rng) * (std::log(0.1) - std::log(1e-3)) + std::log(1e-3));
    h.bias[e] = dt + std::log(-std::expm1(-dt));  // inverse softplus
    h.mask[e] = e == s.e / 2 ? 0.0 : ud(rng);
  }
  return h;
}

double rel_err(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = a[i] - ref[i];
    num += std::isnan(a[i]) ? INFINITY : d * d;
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Forward and backward of every version that takes the shape against the float64 reference.
bool check(const Shape& s, const std::vector<Version>& vs) {
  const Host h = random_host(s, unsigned(s.b * 7 + s.l * 3 + s.e * 131 + s.n));
  const RefOut r = reference(h, s);
  Device d(s);
  auto ble = [&](const std::vector<double>& v) { return to_device_layout(v, s); };
  auto back = [&](const Buf& buf) { return from_device_layout(buf.get(), s); };
  d.u.put(ble(h.u)), d.delta.put(ble(h.delta)), d.z.put(ble(h.z)), d.Bm.put(h.Bm), d.Cm.put(h.Cm), d.A.put(h.A);
  d.D.put(h.D), d.bias.put(h.bias), d.mask.put(h.mask), d.dout.put(ble(h.dout));
  bool ok = true;
  for (const Version& v : vs) {
    if (s.n > kSeqMaxState && v.chunk != kScanChunk) continue;  // state-sequential: N ≤ 16
    if (s.n > v.max_state) continue;
    d.clear_grads();
    const SelectiveScanParams p = d.params(v.chunk);
    v.fwd(p);
    LAB_CHECK(cudaDeviceSynchronize());
    const std::vector<double> out = back(d.out);
    if (!v.bwd) {  // forward only
      const double err = rel_err(out, r.out);
      const bool pass = err < 1e-3;
      ok = ok && pass;
      std::printf("check B%ld L%ld E%ld N%ld  %-34s out %.1e (forward only)  %s\n", long(s.b), long(s.l), long(s.e),
                  long(s.n), v.name.c_str(), err, pass ? "ok" : "FAIL");
      continue;
    }
    v.bwd(p);
    LAB_CHECK(cudaDeviceSynchronize());
    const double errs[] = {rel_err(out, r.out),          rel_err(back(d.du), r.du),
                           rel_err(back(d.ddelta), r.ddelta), rel_err(back(d.dz), r.dz),
                           rel_err(d.dB.get(), r.dB),      rel_err(d.dC.get(), r.dC),
                           rel_err(d.dA.get(), r.dA),      rel_err(d.dD.get(), r.dD),
                           rel_err(d.dbias.get(), r.dbias), rel_err(d.dmask.get(), r.dmask)};
    const double worst = *std::max_element(std::begin(errs), std::end(errs));
    const bool pass = worst < 1e-3;  // fp32 against float64 (fast-math exp2): ~1e-6 … 1e-4
    ok = ok && pass;
    std::printf("check B%ld L%ld E%ld N%ld  %-34s out %.1e du %.1e dΔ %.1e dz %.1e dB %.1e dC %.1e dA %.1e dD %.1e "
                "dbias %.1e dmask %.1e  %s\n",
                long(s.b), long(s.l), long(s.e), long(s.n), v.name.c_str(), errs[0], errs[1], errs[2], errs[3], errs[4],
                errs[5], errs[6], errs[7], errs[8], errs[9], pass ? "ok" : "FAIL");
  }
  return ok;
}

// Median of `reps` CUDA-event timings of fn (after 3 warm-ups). Inputs are not rotated past L2:
// bench/bench_ops does that for the production algorithms; the lab compares versions.
float median_ms(const std::function<void()>& fn, int reps) {
  cudaEvent_t a, b;
  LAB_CHECK(cudaEventCreate(&a));
  LAB_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) fn();
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    LAB_CHECK(cudaEventRecord(a));
    fn();
    LAB_CHECK(cudaEventRecord(b));
    LAB_CHECK(cudaEventSynchronize(b));
    float t = 0;
    LAB_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool check_only = false;
  int reps = 30;
  Shape timed{8, 2048, 1536, 16};
  std::vector<std::string> only;  // version numbers to check and time (empty: all)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--check-only") check_only = true;
    else if (a == "--channel-last") g_channel_last = true;
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--shape" && i + 1 < argc) {
      long b, l, e, n;
      if (std::sscanf(argv[++i], "%ld,%ld,%ld,%ld", &b, &l, &e, &n) != 4) {
        std::fprintf(stderr, "scan_lab: --shape takes B,L,E,N\n");
        return 2;
      }
      timed = {b, l, e, n};
    } else if (a == "--only" && i + 1 < argc) {
      std::istringstream in(argv[++i]);
      for (std::string v; std::getline(in, v, ',');) only.push_back(v);
    } else {
      std::fprintf(stderr,
                   "scan_lab: unknown argument '%s' (valid: --check-only, --reps N, --shape B,L,E,N, --channel-last, "
                   "--only N,N,...)\n",
                   a.c_str());
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "scan_lab: no CUDA device\n");
    return 2;
  }
  std::vector<Version> vs = versions();
  if (!only.empty())
    vs.erase(std::remove_if(vs.begin(), vs.end(),
                            [&](const Version& v) {
                              const std::string number = v.name.substr(0, v.name.find(' '));
                              return std::find(only.begin(), only.end(), number) == only.end();
                            }),
             vs.end());
  // Sizes that are multiples of no tile, a closed mask gate, N = 16 and (time-parallel only) 64.
  bool ok = true;
  for (const Shape& s : {Shape{2, 1, 5, 16}, Shape{2, 300, 7, 16}, Shape{1, 2049, 40, 16}, Shape{3, 129, 17, 16},
                         Shape{2, 700, 19, 64}})
    ok = check(s, vs) && ok;
  std::printf("check: %s\n", ok ? "all versions within 1e-3 of float64" : "FAILED");
  if (check_only) return ok ? 0 : 1;
  const char* layout = g_channel_last ? " channel-last" : "";
  Device d(timed);
  std::vector<double> ones(timed.e, 1.0);
  for (Buf* b : {&d.u, &d.delta, &d.z, &d.Bm, &d.Cm, &d.dout}) {
    std::vector<double> v(b->n);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37 * double(i));
    b->put(v);
  }
  std::vector<double> A(timed.e * timed.n);
  for (size_t i = 0; i < A.size(); ++i) A[i] = -double(i % timed.n + 1);
  d.A.put(A), d.D.put(ones), d.mask.put(ones);
  d.bias.put(std::vector<double>(timed.e, -4.0));
  for (const Version& v : vs) {
    if (timed.n > kSeqMaxState && v.chunk != kScanChunk) continue;
    if (timed.n > v.max_state) continue;
    const SelectiveScanParams p = d.params(v.chunk);
    const float fwd = median_ms([&] { v.fwd(p); }, reps);
    if (v.fwd_bf16) {
      BufBf16 u(d.u), delta(d.delta), z(d.z), Bm(d.Bm), Cm(d.Cm), out(d.out);
      SelectiveScanParams q = p;
      q.dtype = DType::kBFloat16;
      q.u = u.p, q.delta = delta.p, q.z = z.p, q.Bm = Bm.p, q.Cm = Cm.p, q.out = out.p;
      const float f16 = median_ms([&] { v.fwd_bf16(q); }, reps);
      if (v.bwd_bf16) {  // the model's training dtype: dout, du, dΔ, dz in bf16 too (dB, dC, states fp32)
        BufBf16 dout(d.dout), du(d.du), ddelta(d.ddelta), dz(d.dz);
        q.dout = dout.p, q.du = du.p, q.ddelta = ddelta.p, q.dz = dz.p;
        const float both16 = median_ms([&] { v.fwd_bf16(q); v.bwd_bf16(q); }, reps);
        std::printf("time B%ld L%ld E%ld N%ld bf16%s  %-34s fwd %9.1f us  fwd+bwd %9.1f us\n", long(timed.b),
                    long(timed.l), long(timed.e), long(timed.n), layout, v.name.c_str(), f16 * 1e3, both16 * 1e3);
      } else {
        std::printf("time B%ld L%ld E%ld N%ld bf16%s  %-34s fwd %9.1f us  (forward only)\n", long(timed.b),
                    long(timed.l), long(timed.e), long(timed.n), layout, v.name.c_str(), f16 * 1e3);
      }
    }
    if (!v.bwd) {
      std::printf("time B%ld L%ld E%ld N%ld fp32%s  %-34s fwd %9.1f us  (forward only)\n", long(timed.b),
                  long(timed.l), long(timed.e), long(timed.n), layout, v.name.c_str(), fwd * 1e3);
      continue;
    }
    const float both = median_ms([&] { v.fwd(p); v.bwd(p); }, reps);
    std::printf("time B%ld L%ld E%ld N%ld fp32%s  %-34s fwd %9.1f us  fwd+bwd %9.1f us\n", long(timed.b),
                long(timed.l), long(timed.e), long(timed.n), layout, v.name.c_str(), fwd * 1e3, both * 1e3);
  }
  return ok ? 0 : 1;
}
