// The batch decode's scan step with each thread taking kRows batch rows of its channel, against the library's
// scan_step_kernel (one row per thread): a standalone program (it includes ops/cuda/decode_step.cu itself, so the
// library's kernel and launcher are in this translation unit; no LibTorch, no mcd_kernels) for one short device call.
// Why: at batch 64 the library's step (the model's configuration: Δ's low-rank product inside, 16-byte loads,
// A_log and the weights in bf16) runs 64 × E / 32 blocks of 128 threads — 3,072 at E = 1,536, ~2.9 waves at its
// 56–64 registers — and every block re-reads its 32 channels' A and dt_proj rows (~160 bytes per channel and row, from
// L2: ~16 MB per 130M layer beside the 12.6 MB of state). It took 7.8 µs per 130M layer on an H100 (thirty-first
// session's traces) against ~4 µs of state traffic. With kRows rows per thread the weights are read once per kRows
// rows and the grid shrinks kRows-fold (kRows = 4: 768 blocks, one wave).
// Prediction: a kRows variant ≥ 15 % faster than the library's at (64, 1536, 16, R 48) and (64, 2048, 16, R 64); the
// per-row arithmetic is the library's, so outputs and states must equal its bits.
// Outcome (thirty-fourth session, H200): every variant bit for bit the library's and every one slower (64, 1536:
// 15.2 µs for the library, 17.2–21.9 for the variants; docs/PERF_NOTES.md) — the prediction failed.
// Since then the library's kernel is also checked against a float64 reference of the step (reference_step), so
// builds with the thirty-fourth session's lab switches (docs/results/2026-12-07b_scan_step_registers/: launch
// bounds, lanes per channel) are checked too; with other than 4 lanes the rows variants (4 states per lane) are left out.
// Variants: rows loaded all before any arithmetic (kPreload: the library's "every load first", over the rows; more
// registers) or one row after another (the weights kept, each row's loads after the last row's stores).
//   nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math --expt-relaxed-constexpr -I src dev/scan_lab/scan_step_rows.cu
//   ./a.out [--reps N]
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "lab_timing.cuh"
#include "ops/cuda/decode_step.cu"

namespace cu = mcd::ops::cuda;
using T = __nv_bfloat16;
using W = __nv_bfloat16;

namespace lab {
using namespace mcd::ops::cuda;

constexpr int kMaxRankPerLane = 16;  // R ≤ 64

// One (sequence, channel) row's inputs as the library's kernel loads them (its model configuration).
struct RowIn {
  float hs[4], bs[4], cs[4], low[kMaxRankPerLane];
  float u = 0.f, zv = 0.f;
};

template <int kRows, bool kPreload>
__global__ void __launch_bounds__(kStepThreads) scan_step_rows_kernel(ScanStepParams p) {
  const int lane = threadIdx.x % kScanStepLanes;
  const int64_t e_raw = int64_t(blockIdx.x) * (kStepThreads / kScanStepLanes) + threadIdx.x / kScanStepLanes;
  const bool ok = e_raw < p.dim;
  const int64_t e = ok ? e_raw : 0;
  const int N = static_cast<int>(p.dstate);
  const int per_lane = (N + kScanStepLanes - 1) / kScanStepLanes, n0 = lane * per_lane;
  const int mine = ok ? max(0, min(per_lane, N - n0)) : 0;  // (N = 16: 4 each)
  const bool head = ok && lane == 0;
  const int R = ok ? static_cast<int>(p.rank) : 0, per = R / kScanStepLanes, r0 = lane * per;
  // The channel's weights, once for all its rows.
  float as[4], wv[kMaxRankPerLane];
  if (mine > 0) load4(static_cast<const W*>(p.A) + e * N + n0, as);
#pragma unroll
  for (int c = 0; c < kMaxRankPerLane; c += 4)
    if (c < per) load4(static_cast<const W*>(p.delta_proj) + e * p.rank + r0 + c, wv + c);
  const float bias = ok ? to_float(static_cast<const W*>(p.dt_bias)[e]) : 0.f;
  const float d_skip = head ? to_float(static_cast<const W*>(p.D)[e]) : 0.f;
  wait_for_previous_kernel();
  allow_next_kernel();
  float an[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) an[j] = -__expf(as[j]);  // a_is_log (the model's)
  auto load_row = [&](int64_t b, RowIn& in) {
    if (mine > 0) {
      load4(p.state + (b * p.dim + e) * N + n0, in.hs);
      load4(static_cast<const T*>(p.B) + b * p.B_batch_stride + n0, in.bs);
      load4(static_cast<const T*>(p.C) + b * p.C_batch_stride + n0, in.cs);
    }
    if (ok) in.u = to_float(static_cast<const T*>(p.u)[b * p.u_batch_stride + e]);
    if (head) in.zv = to_float(static_cast<const T*>(p.z)[b * p.z_batch_stride + e]);
    const T* low = static_cast<const T*>(p.delta) + b * p.delta_batch_stride + r0;
#pragma unroll
    for (int c = 0; c < kMaxRankPerLane; c += 4)
      if (c < per) load4(low + c, in.low + c);
  };
  auto finish_row = [&](int64_t b, RowIn& in) {  // the library kernel's arithmetic, in its order
    float part = 0.f;
#pragma unroll
    for (int c = 0; c < kMaxRankPerLane; c += 4)
      if (c < per)
#pragma unroll
        for (int k = 0; k < 4; ++k) part = fmaf(in.low[c + k], wv[c + k], part);
    float dt = warp_sum<kScanStepLanes>(part);
    if (ok) dt += bias;
    dt = softplus_f(dt);
    const float du = dt * in.u;
    float y = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (j >= mine) break;
      in.hs[j] = fmaf(__expf(dt * an[j]), in.hs[j], du * in.bs[j]);
      y = fmaf(in.hs[j], in.cs[j], y);
    }
    if (mine > 0)
      *reinterpret_cast<float4*>(p.state + (b * p.dim + e) * N + n0) = make_float4(in.hs[0], in.hs[1], in.hs[2], in.hs[3]);
    y = warp_sum<kScanStepLanes>(y);
    if (!head) return;
    y = fmaf(d_skip, in.u, y);
    y *= in.zv * sigmoid_f(in.zv);
    static_cast<T*>(p.out)[b * p.dim + e] = from_float<T>(y);
  };
  const int64_t b0 = int64_t(blockIdx.y) * kRows;
  if constexpr (kPreload) {
    RowIn in[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      if (b0 + r < p.batch) load_row(b0 + r, in[r]);
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      if (b0 + r < p.batch) finish_row(b0 + r, in[r]);
  } else {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (b0 + r >= p.batch) break;  // uniform over the block
      RowIn in;
      load_row(b0 + r, in);
      finish_row(b0 + r, in);
    }
  }
}

template <int kRows, bool kPreload>
void launch_rows(const ScanStepParams& p) {
  const dim3 grid(unsigned((p.dim + kStepThreads / kScanStepLanes - 1) / (kStepThreads / kScanStepLanes)),
                  unsigned((p.batch + kRows - 1) / kRows));
  scan_step_rows_kernel<kRows, kPreload><<<grid, kStepThreads, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}
}  // namespace lab

struct Config {
  const char* name;
  void (*fn)(const cu::ScanStepParams&);
};

// One input set on the device: the model's batch decode operands (bf16 activations and weights, fp32 state).
struct Set {
  float* state;
  T *x_dbl, *u, *xz, *out;
  W *A_log, *D, *dt_bias, *dt_proj;
};

template <typename V>
V* upload(const std::vector<V>& h) {
  V* d;
  MCD_CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(V)));
  MCD_CUDA_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(V), cudaMemcpyHostToDevice));
  return d;
}

Set make_set(int64_t Bn, int64_t E, int64_t N, int64_t R, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> ud(0.f, 2.5f);
  auto bf = [&](int64_t n, float scale) {
    std::vector<T> h(n);
    for (auto& v : h) v = __float2bfloat16(scale * nd(g));
    return upload(h);
  };
  std::vector<float> st(Bn * E * N);
  for (auto& v : st) v = nd(g);
  std::vector<W> a(E * N);
  for (auto& v : a) v = __float2bfloat16(ud(g));
  Set s;
  s.state = upload(st);
  s.x_dbl = bf(Bn * (R + 2 * N), 1.f);
  s.u = bf(Bn * E, 1.f);
  s.xz = bf(Bn * 2 * E, 1.f);
  s.out = bf(Bn * E, 0.f);
  s.A_log = upload(a);
  s.D = bf(E, 1.f);
  s.dt_bias = bf(E, 0.1f);
  s.dt_proj = bf(E * R, 0.5f);
  return s;
}

template <typename V>
std::vector<float> download(const V* d, int64_t n) {
  std::vector<V> h(n);
  MCD_CUDA_CHECK(cudaMemcpy(h.data(), d, n * sizeof(V), cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<V, float>) f[i] = h[i];
    else f[i] = __bfloat162float(h[i]);
  }
  return f;
}

struct HostInputs {  // a set's inputs on the host, widened to float, downloaded once for both reference steps
  std::vector<float> x_dbl, u, xz, A_log, D, dt_bias, dt_proj;
};

HostInputs download_inputs(const Set& s, int64_t Bn, int64_t E, int64_t N, int64_t R) {
  return {download(s.x_dbl, Bn * (R + 2 * N)), download(s.u, Bn * E), download(s.xz, Bn * 2 * E),
          download(s.A_log, E * N), download(s.D, E), download(s.dt_bias, E), download(s.dt_proj, E * R)};
}

// One step in float64 from the set's inputs (the model's semantics: softplus(Δ_low · dt_projᵀ + dt_bias), A =
// −exp(A_log), h ← exp(Δ·A)·h + Δ·u·B, y = C·h + D·u, y · SiLU(z)); state is updated in place, out returned.
// Beside it a bound on what fp32 arithmetic may differ by, carried from step to step (tol_state, same layout; zero
// before the first step) and given per output (tol_out):
//   Δ: an fp32 sum of R products, error ≤ 4·R·2⁻²⁴·(Σ|low·w| + |bias|) (γ_R with 4× slack); softplus's slope ≤ 1,
//      its fp32 evaluation ≤ 1e-6·Δ;
//   h: the carried error times the decay, plus the Δ error through both terms (|h·decay·A| and |u·B|), plus 1e-6 of
//      the two terms' magnitudes (fp32 products, __expf's ~2⁻²² and its argument's rounding);
//   y: Σ|C|·(h's bound) plus 2e-6 of the magnitudes summed (16 fp32 additions), times |SiLU(z)|; then bf16's
//      rounding, at most half its 2⁻⁸ relative spacing, allowed in full.
std::vector<double> reference_step(const HostInputs& in, std::vector<double>& state, std::vector<double>& tol_state,
                                   int64_t Bn, int64_t E, int64_t N, int64_t R, std::vector<double>& tol_out) {
  const auto &x_dbl = in.x_dbl, &u = in.u, &xz = in.xz, &A_log = in.A_log, &D = in.D, &dt_bias = in.dt_bias,
             &dt_proj = in.dt_proj;
  std::vector<double> out(Bn * E);
  tol_out.assign(Bn * E, 0.0);
  for (int64_t b = 0; b < Bn; ++b)
    for (int64_t e = 0; e < E; ++e) {
      const float* row = x_dbl.data() + b * (R + 2 * N);
      double dt = dt_bias[e], dt_mag = std::abs(dt_bias[e]);
      for (int64_t r = 0; r < R; ++r) {
        dt += double(row[r]) * dt_proj[e * R + r];
        dt_mag += std::abs(double(row[r]) * dt_proj[e * R + r]);
      }
      dt = dt > 20.0 ? dt : std::log1p(std::exp(dt));
      const double dt_err = 4.0 * double(R) * 0x1p-24 * dt_mag + 1e-6 * dt;
      const double ub = u[b * E + e];
      double y = 0.0, mag = 0.0, y_err = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        const size_t k = size_t((b * E + e) * N + n);
        const double an = -std::exp(double(A_log[e * N + n])), decay = std::exp(dt * an);
        const double kept = decay * state[k], fed = dt * ub * row[R + n];
        tol_state[k] = decay * tol_state[k] + (std::abs(kept * an) + std::abs(ub * row[R + n])) * dt_err +
                       1e-6 * (std::abs(kept) + std::abs(fed));
        state[k] = kept + fed;
        const double c = row[R + N + n];
        y += state[k] * c;
        mag += std::abs(state[k] * c);
        y_err += std::abs(c) * tol_state[k];
      }
      const double z = xz[b * 2 * E + E + e], silu = z / (1.0 + std::exp(-z));
      out[b * E + e] = (y + D[e] * ub) * silu;
      tol_out[b * E + e] = std::abs(silu) * (y_err + 2e-6 * (mag + std::abs(D[e] * ub))) +
                           0x1p-8 * std::abs(out[b * E + e]);
    }
  return out;
}

cu::ScanStepParams params(const Set& s, int64_t Bn, int64_t E, int64_t N, int64_t R) {
  cu::ScanStepParams p;  // as selective_scan_step_projected fills it for a bf16 model at batch > 8
  p.dtype = cu::DType::kBFloat16;
  p.weight_dtype = cu::DType::kBFloat16;
  p.batch = Bn, p.dim = E, p.dstate = N;
  p.state = s.state;
  p.u = s.u, p.u_batch_stride = E;
  p.delta = s.x_dbl, p.delta_batch_stride = R + 2 * N;
  p.delta_proj = s.dt_proj, p.rank = R;
  p.B = s.x_dbl + R, p.B_batch_stride = R + 2 * N;
  p.C = s.x_dbl + R + N, p.C_batch_stride = R + 2 * N;
  p.z = s.xz + E, p.z_batch_stride = 2 * E;
  p.A = s.A_log, p.a_is_log = true;
  p.D = s.D, p.dt_bias = s.dt_bias, p.softplus = true;
  p.out = s.out;
  return p;
}

int main(int argc, char** argv) {
  int reps = 40;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else return std::fprintf(stderr, "usage: scan_step_rows [--reps N]\n"), 2;
  }
  std::vector<Config> configs = {{"library (1 row per thread)", &cu::launch_scan<T, W>}};
  // The rows kernels hold 4 states per lane; a build with another lane count (the thirty-fourth session's lab
  // switch MCD_LAB_SCAN_STEP_LANES) times the library's kernel alone, checked against the float64 reference.
  if (cu::kScanStepLanes == 4)
    configs.insert(configs.end(), {{"2 rows, preloaded", &lab::launch_rows<2, true>},
                                   {"2 rows, in turn", &lab::launch_rows<2, false>},
                                   {"4 rows, preloaded", &lab::launch_rows<4, true>},
                                   {"4 rows, in turn", &lab::launch_rows<4, false>},
                                   {"8 rows, in turn", &lab::launch_rows<8, false>}});
  std::printf("lanes per channel %d\n", cu::kScanStepLanes);
  cudaDeviceProp prop;
  MCD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s\n", prop.name);
  bool all_same = true;
  struct Shape {
    int64_t B, E, N, R;
  };
  for (const Shape sh : {Shape{64, 1536, 16, 48}, Shape{64, 2048, 16, 64}, Shape{13, 1536, 16, 48}}) {
    const int64_t Bn = sh.B, E = sh.E, N = sh.N, R = sh.R;
    // Input sets past the 50 MB L2 (the state is read from DRAM, as a token after the last one reads it).
    const int64_t set_bytes = Bn * E * N * 4 + Bn * (R + 2 * N + 4 * E) * 2;
    const int sets = int(std::max<int64_t>(2, (int64_t(128) << 20) / set_bytes + 1));
    std::vector<Set> in;
    for (int k = 0; k < sets; ++k) in.push_back(make_set(Bn, E, N, R, 77u + k));
    // Bits: each configuration two steps from the same state, outputs and states against the library's.
    const size_t n_state = size_t(Bn * E * N), n_out = size_t(Bn * E);
    std::vector<float> state0(n_state), ref_state(n_state), got_state(n_state);
    std::vector<T> ref_out(n_out), got_out(n_out);
    MCD_CUDA_CHECK(cudaMemcpy(state0.data(), in[0].state, n_state * 4, cudaMemcpyDeviceToHost));
    for (size_t ci = 0; ci < configs.size(); ++ci) {
      MCD_CUDA_CHECK(cudaMemcpy(in[0].state, state0.data(), n_state * 4, cudaMemcpyHostToDevice));
      for (int step = 0; step < 2; ++step) {
        MCD_CUDA_CHECK(cudaMemset(in[0].out, 0xFF, n_out * sizeof(T)));  // poisoned: NaN unless written
        configs[ci].fn(params(in[0], Bn, E, N, R));
      }
      MCD_CUDA_CHECK(cudaDeviceSynchronize());
      auto& st = ci == 0 ? ref_state : got_state;
      auto& out = ci == 0 ? ref_out : got_out;
      MCD_CUDA_CHECK(cudaMemcpy(st.data(), in[0].state, n_state * 4, cudaMemcpyDeviceToHost));
      MCD_CUDA_CHECK(cudaMemcpy(out.data(), in[0].out, n_out * sizeof(T), cudaMemcpyDeviceToHost));
      if (ci == 0) {
        // The library's kernel against float64, two steps from state0, each value within the bound reference_step
        // carries (its derivation there); printed as the worst ratio of difference to bound.
        std::vector<double> h64(state0.begin(), state0.end()), tol_h(n_state, 0.0), o64, tol_o;
        const HostInputs host = download_inputs(in[0], Bn, E, N, R);
        for (int step = 0; step < 2; ++step) o64 = reference_step(host, h64, tol_h, Bn, E, N, R, tol_o);
        double worst_h = 0.0, worst_o = 0.0;
        for (size_t i = 0; i < n_state; ++i)
          worst_h = std::max(worst_h, std::abs(st[i] - h64[i]) / (tol_h[i] + 1e-30));
        for (size_t i = 0; i < n_out; ++i)
          worst_o = std::max(worst_o, std::abs(double(__bfloat162float(out[i])) - o64[i]) / (tol_o[i] + 1e-30));
        const bool close = worst_h <= 1.0 && worst_o <= 1.0;
        all_same = all_same && close;
        std::printf("B%ld E%ld N%ld R%ld  library against float64: state %.2f, output %.2f of their bounds: %s\n",
                    long(Bn), long(E), long(N), long(R), worst_h, worst_o, close ? "ok" : "FAILED");
      }
      int64_t nan = 0;
      for (const T& v : out) nan += __bfloat162float(v) != __bfloat162float(v);
      const bool same = ci == 0 || (std::memcmp(ref_state.data(), got_state.data(), n_state * 4) == 0 &&
                                    std::memcmp(ref_out.data(), got_out.data(), n_out * sizeof(T)) == 0);
      all_same = all_same && same && nan == 0;
      std::printf("B%ld E%ld N%ld R%ld  %-28s two steps: %s, %ld NaN\n", long(Bn), long(E), long(N), long(R),
                  configs[ci].name, ci == 0 ? "(reference)" : same ? "outputs and states bit for bit the library's" : "DIFFER",
                  long(nan));
    }
    for (int round = 0; round < 2; ++round)
      for (const Config& c : configs) {
        const Timing t = time_launches(reps, [&](int r) { c.fn(params(in[r % sets], Bn, E, N, R)); });
        std::printf("B%ld E%ld N%ld R%ld round %d  %-28s median %.2f us  (min %.2f, max %.2f)\n", long(Bn), long(E),
                    long(N), long(R), round + 1, c.name, t.median, t.min, t.max);
      }
    for (auto& s : in)
      for (void* ptr : {(void*)s.state, (void*)s.x_dbl, (void*)s.u, (void*)s.xz, (void*)s.out, (void*)s.A_log,
                        (void*)s.D, (void*)s.dt_bias, (void*)s.dt_proj})
        MCD_CUDA_CHECK(cudaFree(ptr));
  }
  std::printf("check: %s\n", all_same ? "the library within its float64 bounds, every variant bit for bit the library's, no NaN" : "FAILED");
  return all_same ? 0 : 1;
}
