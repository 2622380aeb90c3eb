// The batch-64 decode step's layers as S independent row groups run side by side (S = 1, 2, 4, 8 branches of a CUDA
// graph, each on its own stream and cuBLAS handle) against the one 64-row chain (a lab; no LibTorch).
//
// Why: at batch 64 a 130M layer takes ~28 µs in six kernels, most of them latency-bound: cuBLAS's products take
// ~4.5 µs whatever their size and fill few SMs (thirteenth session), and a 64-row product is no faster at 16 rows.
// Rows never interact inside a layer, so S chains of 64 / S rows can run concurrently; where a kernel's time is
// latency and the SMs are idle, S of them take about the time of one. The scan step is the exception (it streams the
// 6.3 MB SSM state per 130M layer and fills the GPU): split, its parts share the same bandwidth. Upper estimate: a
// layer near the 8-row chain's time (0.61–0.63 ms per 130M token at batch 8 against 0.765 at 64, H200, twenty-fifth
// session), i.e. ≤ 0.85× the one chain's time per 64-row token.
//
// Checked: after one token of all layers from the same states, every split's hidden output and states against the
// one chain's (the same kernels on fewer rows; cuBLAS may pick another algorithm for fewer rows, so fp32 summation
// order differs: reported as max |Δ| / rms and the fraction beyond 2⁻⁸·rms, with a bound that only a wrong row or a
// race would cross: max ≤ 2⁻³·rms).
//
//   nvcc -std=c++17 -O3 -arch=sm_90 -lineinfo --expt-relaxed-constexpr -I src -I dev dev/decode_lab/split_batch_lab.cu \
//        src/ops/cuda/decode_step.cu dev/gemm_lab/narrow_linear.cu src/ops/cuda/add_norm.cu -lcublas -o split_batch_lab
//   ./split_batch_lab [--reps N]
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "decode_lab/graph_timing.cuh"
#include "decode_lab/library_chain.cuh"
#include "ops/cuda/cuda_common.cuh"

namespace {

using bf16 = __nv_bfloat16;
constexpr int kRows = 64, kConvW = 4, kMaxSplit = 8;

// Deterministic pseudo-random fill on the device: a hash of the index, uniform in [-1, 1), times scale, plus shift.
__device__ __forceinline__ float hash_uniform(unsigned long long i, unsigned seed) {
  unsigned long long x = i * 0x9E3779B97F4A7C15ull + seed * 0xD1B54A32D192ED03ull;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return float(x >> 40) / float(1ull << 23) - 1.f;
}
template <class T>
__global__ void fill_kernel(T* p, size_t n, unsigned seed, float scale, float shift) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = T(shift + scale * hash_uniform(i, seed));
}
// A_log[e, n] = log(n + 1) (Mamba's initialisation), any layer and channel.
__global__ void a_log_kernel(bf16* p, size_t n, int N) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(logf(float(i % N + 1)));
}

template <class T>
T* alloc(size_t n) {
  T* p;
  MCD_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  return p;
}
template <class T>
T* filled(size_t n, unsigned seed, float scale, float shift = 0.f) {
  T* p = alloc<T>(n);
  fill_kernel<<<256, 256>>>(p, n, seed, scale, shift);
  MCD_CUDA_CHECK(cudaGetLastError());
  return p;
}

struct Shape {
  const char* name;
  int D, E, N, R, L;
};

// max |a − b| / rms(b) and the fraction of entries further than 2⁻⁸·rms(b).
struct Diff {
  double max_rel = 0.0, frac_far = 0.0;
  bool finite = true;
};
Diff diff(const std::vector<float>& a, const std::vector<float>& b) {
  double ss = 0.0;
  for (float x : b) ss += double(x) * x;
  const double rms = std::sqrt(ss / double(b.size())) + 1e-30;
  Diff d;
  size_t far = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    d.finite = d.finite && std::isfinite(a[i]);
    const double r = std::fabs(double(a[i]) - b[i]) / rms;
    d.max_rel = std::max(d.max_rel, r);
    far += r > std::ldexp(1.0, -8);
  }
  d.frac_far = double(far) / double(b.size());
  return d;
}

std::vector<float> to_float(const bf16* dev, size_t n) {
  std::vector<bf16> h(n);
  MCD_CUDA_CHECK(cudaMemcpy(h.data(), dev, n * 2, cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = __bfloat162float(h[i]);
  return f;
}
std::vector<float> to_float(const float* dev, size_t n) {
  std::vector<float> f(n);
  MCD_CUDA_CHECK(cudaMemcpy(f.data(), dev, n * 4, cudaMemcpyDeviceToHost));
  return f;
}

// 0: every split within the bound, 1: one was not.
int run_shape(const Shape& sh, int reps, cudaStream_t main_stream) {
  const int D = sh.D, E = sh.E, N = sh.N, R = sh.R, L = sh.L, XN = R + 2 * N, CW = kConvW - 1;
  std::printf("shape %s: D %d, E %d, N %d, R %d, %d layers, %d rows\n", sh.name, D, E, N, R, L, kRows);
  // Weights, scaled as a trained model's are (rows of the products ~unit norm after the 1/sqrt(fan-in)).
  const float sD = 1.f / std::sqrt(float(D)), sE = 1.f / std::sqrt(float(E)), sR = 1.f / std::sqrt(float(R));
  bf16* norm_w = filled<bf16>(size_t(L) * D, 1, 0.1f, 1.f);
  bf16* w_in = filled<bf16>(size_t(L) * 2 * E * D, 2, 1.7f * sD);
  bf16* conv_w = filled<bf16>(size_t(L) * E * kConvW, 3, 0.8f);
  bf16* conv_b = filled<bf16>(size_t(L) * E, 4, 0.2f);
  bf16* w_x = filled<bf16>(size_t(L) * XN * E, 5, 1.7f * sE);
  bf16* w_dt = filled<bf16>(size_t(L) * E * R, 6, 0.8f * sR);
  bf16* dt_b = filled<bf16>(size_t(L) * E, 7, 1.0f, -4.6f);  // softplus(−4.6 ± 1): dt ≈ 0.004–0.027
  bf16* a_log = alloc<bf16>(size_t(L) * E * N);
  a_log_kernel<<<256, 256>>>(a_log, size_t(L) * E * N, N);
  bf16* d_skip = filled<bf16>(size_t(L) * E, 8, 0.1f, 1.f);
  bf16* w_out = filled<bf16>(size_t(L) * D * E, 9, 1.7f * sE);
  float* emb = filled<float>(size_t(kRows) * D, 10, 1.f);
  // Initial states (the timing runs let them evolve; the check restarts from these).
  const size_t n_ssm = size_t(L) * kRows * E * N, n_conv = size_t(L) * kRows * E * CW;
  float* ssm0 = filled<float>(n_ssm, 11, 0.8f);
  bf16* conv0 = filled<bf16>(n_conv, 12, 1.f);
  float* ssm = alloc<float>(n_ssm);
  bf16* conv = alloc<bf16>(n_conv);
  float* resid = alloc<float>(size_t(kRows) * D);
  bf16* hidden = alloc<bf16>(size_t(kRows) * D);
  // Scratch for all 64 rows; branch k of a split uses its rows' part of each buffer.
  bf16* h = alloc<bf16>(size_t(kRows) * D);
  bf16* xz = alloc<bf16>(size_t(kRows) * 2 * E);
  bf16* xc = alloc<bf16>(size_t(kRows) * E);
  bf16* xd = alloc<bf16>(size_t(kRows) * XN);
  bf16* y = alloc<bf16>(size_t(kRows) * E);
  float* rstd = alloc<float>(kRows);
  MCD_CUDA_CHECK(cudaDeviceSynchronize());

  cudaStream_t streams[kMaxSplit];
  cublasHandle_t handles[kMaxSplit];  // one per branch: a handle's workspace must not be shared by concurrent kernels
  cudaEvent_t fork, join[kMaxSplit];
  MCD_CUDA_CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
  for (int k = 0; k < kMaxSplit; ++k) {
    MCD_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[k], cudaStreamNonBlocking));
    MCD_CUDA_CHECK(cudaEventCreateWithFlags(&join[k], cudaEventDisableTiming));
    cublasCreate(&handles[k]);
  }
  const mcd::dev::ChainShape cs{D, E, N, R, kConvW};
  // One token of all layers, the rows split into S groups of 64 / S, each group's layers on its own stream, forked
  // from and joined back into main_stream (so a capture on main_stream records S parallel branches).
  auto token = [&](int S) {
    const int rows = kRows / S;
    MCD_CUDA_CHECK(cudaEventRecord(fork, main_stream));
    for (int k = 0; k < S; ++k) {
      cudaStream_t st = S == 1 ? main_stream : streams[k];
      if (S > 1) MCD_CUDA_CHECK(cudaStreamWaitEvent(st, fork, 0));
      const int r0 = k * rows;
      const mcd::dev::ChainScratch sc{h + size_t(r0) * D, xz + size_t(r0) * 2 * E, xc + size_t(r0) * E,
                                      xd + size_t(r0) * XN, y + size_t(r0) * E, rstd + r0};
      for (int l = 0; l < L; ++l) {
        const mcd::dev::ChainWeights w{norm_w + size_t(l) * D, w_in + size_t(l) * 2 * E * D,
                                       conv_w + size_t(l) * E * kConvW, conv_b + size_t(l) * E,
                                       w_x + size_t(l) * XN * E, w_dt + size_t(l) * E * R, dt_b + size_t(l) * E,
                                       a_log + size_t(l) * E * N, d_skip + size_t(l) * E, w_out + size_t(l) * D * E};
        float* res = resid + size_t(r0) * D;
        bf16* hid = hidden + size_t(r0) * D;
        mcd::dev::library_layer(cs, w, rows, l == 0 ? emb + size_t(r0) * D : res, l == 0 ? nullptr : hid, res, hid,
                                conv + (size_t(l) * kRows + r0) * E * CW, ssm + (size_t(l) * kRows + r0) * E * N, sc,
                                false, st, handles[S == 1 ? 0 : k]);
      }
      if (S > 1) {
        MCD_CUDA_CHECK(cudaEventRecord(join[k], st));
        MCD_CUDA_CHECK(cudaStreamWaitEvent(main_stream, join[k], 0));
      }
    }
  };
  auto reset = [&] {
    MCD_CUDA_CHECK(cudaMemcpyAsync(ssm, ssm0, n_ssm * 4, cudaMemcpyDeviceToDevice, main_stream));
    MCD_CUDA_CHECK(cudaMemcpyAsync(conv, conv0, n_conv * 2, cudaMemcpyDeviceToDevice, main_stream));
    MCD_CUDA_CHECK(cudaStreamSynchronize(main_stream));
  };
  // ---- Check: one token from the same states, each split against S = 1.
  reset();
  token(1);
  MCD_CUDA_CHECK(cudaStreamSynchronize(main_stream));
  const std::vector<float> ref_hid = to_float(hidden, size_t(kRows) * D), ref_ssm = to_float(ssm, n_ssm),
                           ref_conv = to_float(conv, n_conv), ref_res = to_float(resid, size_t(kRows) * D);
  bool ok = true;
  const int splits[] = {2, 4, 8};
  for (int S : splits) {
    reset();
    token(S);
    MCD_CUDA_CHECK(cudaStreamSynchronize(main_stream));
    const Diff d[] = {diff(to_float(hidden, size_t(kRows) * D), ref_hid), diff(to_float(resid, size_t(kRows) * D), ref_res),
                      diff(to_float(ssm, n_ssm), ref_ssm), diff(to_float(conv, n_conv), ref_conv)};
    const char* names[] = {"hidden (last out_proj)", "residual", "ssm state", "conv state"};
    for (int i = 0; i < 4; ++i) {
      const bool good = d[i].finite && d[i].max_rel <= 0.125;
      ok = ok && good;
      std::printf("check %s split %d %-24s against one chain: max %.3e·rms, %.4f %% beyond 2^-8: %s\n", sh.name, S,
                  names[i], d[i].max_rel, 100 * d[i].frac_far, good ? "ok" : "FAILED");
    }
  }
  // ---- Timing: graph replays of `reps` tokens per split (states evolve), the one chain first and last.
  reset();
  double t[kMaxSplit + 1] = {};
  const double t1 = mcd::dev::graph_us(main_stream, reps, [&](int) { token(1); });
  for (int S : splits) t[S] = mcd::dev::graph_us(main_stream, reps, [&](int) { token(S); });
  const double t1b = mcd::dev::graph_us(main_stream, reps, [&](int) { token(1); });
  const double base = std::min(t1, t1b);
  std::printf("time %s batch %d, %d layers per token (graph, median of 5 replays of %d tokens): one chain %.1f / %.1f "
              "us; split 2: %.1f (%.3f), split 4: %.1f (%.3f), split 8: %.1f (%.3f)\n",
              sh.name, kRows, L, reps, t1, t1b, t[2], t[2] / base, t[4], t[4] / base, t[8], t[8] / base);
  for (int k = 0; k < kMaxSplit; ++k) {
    cublasDestroy(handles[k]);
    MCD_CUDA_CHECK(cudaStreamDestroy(streams[k]));
    MCD_CUDA_CHECK(cudaEventDestroy(join[k]));
  }
  MCD_CUDA_CHECK(cudaEventDestroy(fork));
  for (void* p : {(void*)norm_w, (void*)w_in, (void*)conv_w, (void*)conv_b, (void*)w_x, (void*)w_dt, (void*)dt_b,
                  (void*)a_log, (void*)d_skip, (void*)w_out, (void*)emb, (void*)ssm0, (void*)conv0, (void*)ssm,
                  (void*)conv, (void*)resid, (void*)hidden, (void*)h, (void*)xz, (void*)xc, (void*)xd, (void*)y,
                  (void*)rstd})
    MCD_CUDA_CHECK(cudaFree(p));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
  cudaDeviceProp prop{};
  MCD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  cudaStream_t s;
  MCD_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const Shape shapes[] = {{"130M", 768, 1536, 16, 48, 24}, {"370M", 1024, 2048, 16, 64, 48}};
  int bad = 0;
  for (const Shape& sh : shapes) bad += run_shape(sh, reps, s);
  std::printf("%s\n", bad == 0 ? "check: all ok" : "check: FAILED");
  return bad == 0 ? 0 : 1;
}
