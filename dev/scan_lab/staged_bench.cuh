// What the standalone staged-forward programs (staging_pair.cu, staged_variants.cu) share: bf16 input sets on the
// device shaped as the model's prefill passes them (B = 1, time-contiguous rows), their scan parameters, and the
// timer (CUDA events, median of reps launches after 3 warm-up ones, input sets rotated past the 50 MB L2).
#pragma once
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/cuda/selective_scan_block_fwd.cuh"

namespace cu = mcd::ops::cuda;
using Flags = cu::ScanFlags<true, true, false>;
using T = __nv_bfloat16;

#define CHECK_CUDA(x)                                                                    \
  do {                                                                                   \
    cudaError_t e_ = (x);                                                                \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));    \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

// One input set on the device: u, δ, z (E, L), B, C (N, L) in bf16; A (E, N), D, bias (E) fp32; out (E, L).
struct Set {
  T *u, *dt, *z, *B, *C, *out;
  float *A, *D, *bias;
};

inline Set make_set(int64_t L, int64_t E, int64_t N, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto upload = [&](int64_t n, float scale, float shift) {
    std::vector<T> h(n);
    for (auto& v : h) v = __float2bfloat16(shift + scale * nd(g));
    T* d;
    CHECK_CUDA(cudaMalloc(&d, n * sizeof(T)));
    CHECK_CUDA(cudaMemcpy(d, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
  };
  auto upload_f = [&](int64_t n, auto gen) {
    std::vector<float> h(n);
    for (int64_t i = 0; i < n; ++i) h[i] = gen(i);
    float* d;
    CHECK_CUDA(cudaMalloc(&d, n * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
  };
  Set s;
  s.u = upload(E * L, 1.f, 0.f);
  s.dt = upload(E * L, 0.5f, -1.f);  // softplus(δ + bias) of typical Δ
  s.z = upload(E * L, 1.f, 0.f);
  s.B = upload(N * L, 1.f, 0.f);
  s.C = upload(N * L, 1.f, 0.f);
  CHECK_CUDA(cudaMalloc(&s.out, E * L * sizeof(T)));
  s.A = upload_f(E * N, [&](int64_t i) { return -float(1 + i % N); });  // S4D-real, as the model initialises A
  s.D = upload_f(E, [&](int64_t) { return nd(g); });
  s.bias = upload_f(E, [&](int64_t) { return 0.1f * nd(g); });
  return s;
}

inline cu::SelectiveScanParams params(const Set& s, int64_t L, int64_t E, int64_t N) {
  cu::SelectiveScanParams p;
  p.dtype = cu::DType::kBFloat16;
  p.batch = 1, p.dim = E, p.len = L, p.dstate = N;
  p.algorithm = cu::ScanAlgorithm::kBlockForwardStaged;
  const cu::Strides3 rows{E * L, L, 1}, bc{N * L, L, 1};
  p.u = s.u, p.u_s = rows;
  p.delta = s.dt, p.delta_s = rows;
  p.z = s.z, p.z_s = rows;
  p.Bm = s.B, p.B_s = bc;
  p.Cm = s.C, p.C_s = bc;
  p.A = s.A, p.D = s.D, p.delta_bias = s.bias;
  p.delta_softplus = true;
  p.out = s.out, p.out_s = rows;
  return p;
}

template <class Tr>
void run(const cu::SelectiveScanParams& p) {
  cu::selective_scan_block_fwd_run<Tr, T, Flags>(p);
}

struct Config {
  const char* name;
  void (*fn)(const cu::SelectiveScanParams&);
};

// Enough input sets that together they exceed 2.5× the L2 (each launch reads a set the last ones did not).
inline int rotated_sets(int64_t L, int64_t E, int64_t N) {
  const int64_t set_bytes = (4 * E + 2 * N) * L * int64_t(sizeof(T));
  return int(std::max<int64_t>(2, (int64_t(128) << 20) / set_bytes + 1));
}

inline void free_set(Set& s) {
  for (void* ptr : {(void*)s.u, (void*)s.dt, (void*)s.z, (void*)s.B, (void*)s.C, (void*)s.out, (void*)s.A, (void*)s.D,
                    (void*)s.bias})
    CHECK_CUDA(cudaFree(ptr));
}

// c's output on in[0] (its out buffer poisoned first: NaN wherever c writes nothing).
inline std::vector<T> output_of(const Config& c, const Set& s, int64_t L, int64_t E, int64_t N) {
  const int64_t n_out = E * L;
  std::vector<T> out(n_out);
  CHECK_CUDA(cudaMemset(s.out, 0xFF, n_out * sizeof(T)));
  c.fn(params(s, L, E, N));
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaMemcpy(out.data(), s.out, n_out * sizeof(T), cudaMemcpyDeviceToHost));
  return out;
}

// Median, min and max of reps timed launches of c (after 3 untimed), each on the next input set.
struct Timing {
  float median, min, max;
};
inline Timing time_config(const Config& c, const std::vector<Set>& in, int64_t L, int64_t E, int64_t N, int reps) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  std::vector<float> us;
  for (int r = 0; r < reps + 3; ++r) {
    const auto p = params(in[r % in.size()], L, E, N);
    CHECK_CUDA(cudaEventRecord(a));
    c.fn(p);
    CHECK_CUDA(cudaEventRecord(b));
    CHECK_CUDA(cudaEventSynchronize(b));
    float ms;
    CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    if (r >= 3) us.push_back(1000.f * ms);
  }
  CHECK_CUDA(cudaEventDestroy(a));
  CHECK_CUDA(cudaEventDestroy(b));
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us.front(), us.back()};
}
