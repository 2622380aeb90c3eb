// Row-wise cross-entropy of the LM head (see cross_entropy_params.h). One block per row, two
// passes over it: an online (max, Σ exp) in log2 units, then — for the gradient — softmax minus
// the one-hot, scaled and written over the logits. A row of a 50k vocabulary is 100 KB in bf16,
// so the second pass mostly hits L2. Replaces the log-softmax/softmax passes that wrote fp32
// (rows, vocab) tensors and the casts back: one read (loss only) or two reads and one write.
#include <cmath>
#include <string>

#include "ops/cuda/cross_entropy_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {
namespace {

struct MaxSum {
  float m, s;  // running max (log2 units) and Σ 2^(x − m)
};

__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.f};
  return {m, a.s * exp2f(a.m - m) + b.s * exp2f(b.m - m)};
}

// A group of k values (already in log2 units) into the running (max, sum).
template <int k>
__device__ __forceinline__ void absorb(MaxSum& acc, const float (&x)[k]) {
  float mv = x[0];
#pragma unroll
  for (int i = 1; i < k; ++i) mv = fmaxf(mv, x[i]);
  if (mv > acc.m) {
    acc.s *= exp2f(acc.m - mv);  // acc.m = −inf: 0 · 0
    acc.m = mv;
  }
  if (acc.m == -INFINITY) return;
#pragma unroll
  for (int i = 0; i < k; ++i) acc.s += exp2f(x[i] - acc.m);
}

template <typename T>
struct Vec {  // 16 bytes of T
  static constexpr int kN = 16 / sizeof(T);
  union {
    uint4 raw;
    T v[kN];
  };
};

template <typename T>
__global__ void __launch_bounds__(kCrossEntropyThreads) cross_entropy_rows_kernel(CrossEntropyRowsParams p) {
  constexpr int kN = Vec<T>::kN;
  __shared__ MaxSum s_part[kCrossEntropyThreads / 32];
  __shared__ float s_lse2;
  const int64_t row = blockIdx.x;
  T* x = static_cast<T*>(p.logits) + row * p.row_stride;
  const int64_t V = p.vocab;
  const int64_t n_vec = p.vectorized ? V / kN : 0;
  const int64_t tail0 = n_vec * kN;

  MaxSum acc{-INFINITY, 0.f};
  for (int64_t i = threadIdx.x; i < n_vec; i += kCrossEntropyThreads) {
    Vec<T> v;
    v.raw = reinterpret_cast<const uint4*>(x)[i];
    float f[kN];
#pragma unroll
    for (int k = 0; k < kN; ++k) f[k] = to_float(v.v[k]) * kLog2e;
    absorb(acc, f);
  }
  for (int64_t i = tail0 + threadIdx.x; i < V; i += kCrossEntropyThreads) {
    const float f[1] = {to_float(x[i]) * kLog2e};
    absorb(acc, f);
  }
#pragma unroll
  for (int d = 16; d >= 1; d /= 2) {
    const MaxSum o{__shfl_xor_sync(kFullMask, acc.m, d), __shfl_xor_sync(kFullMask, acc.s, d)};
    acc = combine(acc, o);
  }
  if (threadIdx.x % 32 == 0) s_part[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    MaxSum t = s_part[0];
    for (int w = 1; w < kCrossEntropyThreads / 32; ++w) t = combine(t, s_part[w]);
    const float lse2 = t.m + log2f(t.s);
    const int64_t tgt = p.targets[row];
    const bool ok = tgt >= 0 && tgt < V;
    p.loss[row] = ok ? lse2 * (1.f / kLog2e) - to_float(x[ok ? tgt : 0]) : NAN;
    s_lse2 = lse2;
  }
  if (!p.write_grad) return;
  __syncthreads();
  const float lse2 = s_lse2, scale = p.grad_scale;
  const int64_t tgt = p.targets[row];
  for (int64_t i = threadIdx.x; i < n_vec; i += kCrossEntropyThreads) {
    Vec<T> v;
    v.raw = reinterpret_cast<const uint4*>(x)[i];
#pragma unroll
    for (int k = 0; k < kN; ++k) {
      float g = exp2f(fmaf(to_float(v.v[k]), kLog2e, -lse2)) * scale;
      if (i * kN + k == tgt) g -= scale;
      v.v[k] = from_float<T>(g);
    }
    reinterpret_cast<uint4*>(x)[i] = v.raw;
  }
  for (int64_t i = tail0 + threadIdx.x; i < V; i += kCrossEntropyThreads) {
    float g = exp2f(fmaf(to_float(x[i]), kLog2e, -lse2)) * scale;
    if (i == tgt) g -= scale;
    x[i] = from_float<T>(g);
  }
}

}  // namespace

void cross_entropy_rows(const CrossEntropyRowsParams& p) {
  if (p.rows == 0) return;
  MCD_CHECK(p.rows <= 2147483647LL, "cross_entropy_rows (CUDA): too many rows: ", p.rows);
  const dim3 grid(static_cast<unsigned>(p.rows));
  switch (p.dtype) {
    case DType::kFloat32:
      cross_entropy_rows_kernel<float><<<grid, kCrossEntropyThreads, 0, p.stream>>>(p);
      break;
    case DType::kFloat16:
      cross_entropy_rows_kernel<__half><<<grid, kCrossEntropyThreads, 0, p.stream>>>(p);
      break;
    case DType::kBFloat16:
      cross_entropy_rows_kernel<__nv_bfloat16><<<grid, kCrossEntropyThreads, 0, p.stream>>>(p);
      break;
    default:
      fail("cross_entropy_rows (CUDA): unsupported dtype code " + std::to_string(int(p.dtype)));
  }
  MCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace mcd::ops::cuda
