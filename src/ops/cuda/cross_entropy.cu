// Row-wise cross-entropy of the LM head (see cross_entropy_params.h). One block per row, two
// passes over it: an online (max, Σ exp) in log2 units, then — for the gradient — softmax minus
// the one-hot, scaled and written over the logits. Replaces the log-softmax/softmax passes that
// wrote fp32 (rows, vocab) tensors and the casts back.
// Two kernels:
// - the row kept in shared memory (16-byte rows of ≤ kCrossEntropyRowSmemBytes: a 50k vocabulary
//   in bf16 is 100 KB, two rows per SM): the row is read from global memory once, four 16-byte loads
//   in flight per thread, and the second pass reads shared memory. The first version below relied
//   on L2 for its second pass, but its ~1,000 resident 256-thread blocks had ~100 MB of rows in
//   flight against a 50 MB L2, so the second pass read HBM again (366 µs per 4,096 × 50,280 bf16
//   chunk on an H200, PERF_NOTES "Fourteenth session" trace, against ~170 µs for one read and one
//   write); this one takes 299.6 µs on an H100, whose traffic floor there is 246 µs ("Twentieth session");
// - otherwise (fp32 rows of a large vocabulary, unaligned rows) the two passes over global memory.
#include <cmath>
#include <string>
#include <type_traits>

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

// A block's (max, sum) partials combined: warp partials through shared memory, then warp 0's
// shuffles. Every thread returns the row's log2-sum-exp.
template <int kThreads>
__device__ __forceinline__ float block_lse2(MaxSum acc, MaxSum* s_part, float* s_lse2) {
#pragma unroll
  for (int d = 16; d >= 1; d /= 2) {
    const MaxSum o{__shfl_xor_sync(kFullMask, acc.m, d), __shfl_xor_sync(kFullMask, acc.s, d)};
    acc = combine(acc, o);
  }
  if (threadIdx.x % 32 == 0) s_part[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    constexpr int kWarps = kThreads / 32;
    MaxSum t = threadIdx.x < kWarps ? s_part[threadIdx.x] : MaxSum{-INFINITY, 0.f};
#pragma unroll
    for (int d = 16; d >= 1; d /= 2) {
      const MaxSum o{__shfl_xor_sync(kFullMask, t.m, d), __shfl_xor_sync(kFullMask, t.s, d)};
      t = combine(t, o);
    }
    if (threadIdx.x == 0) *s_lse2 = t.m + log2f(t.s);
  }
  __syncthreads();
  return *s_lse2;
}

// Thread 0 writes the row's loss (NaN for a target outside [0, V)) from its log2-sum-exp.
template <typename T>
__device__ __forceinline__ void store_row_loss(const CrossEntropyRowsParams& p, int64_t row, const T* x, float lse2,
                                               int64_t tgt) {
  if (threadIdx.x != 0) return;
  const bool ok = tgt >= 0 && tgt < p.vocab;
  p.loss[row] = ok ? lse2 * (1.f / kLog2e) - to_float(x[ok ? tgt : 0]) : NAN;
}

// d(loss · scale)/d(logit) of one element: softmax minus the one-hot.
__device__ __forceinline__ float logit_gradient(float logit, float lse2, float scale, bool is_target) {
  const float g = exp2f(fmaf(logit, kLog2e, -lse2)) * scale;
  return is_target ? g - scale : g;
}

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
  const float lse2 = block_lse2<kCrossEntropyThreads>(acc, s_part, &s_lse2);
  const int64_t tgt = p.targets[row];
  store_row_loss(p, row, x, lse2, tgt);
  if (!p.write_grad) return;
  __syncthreads();  // the target's logit is read above before any thread overwrites it
  const float scale = p.grad_scale;
  for (int64_t i = threadIdx.x; i < n_vec; i += kCrossEntropyThreads) {
    Vec<T> v;
    v.raw = reinterpret_cast<const uint4*>(x)[i];
#pragma unroll
    for (int k = 0; k < kN; ++k)
      v.v[k] = from_float<T>(logit_gradient(to_float(v.v[k]), lse2, scale, i * kN + k == tgt));
    reinterpret_cast<uint4*>(x)[i] = v.raw;
  }
  for (int64_t i = tail0 + threadIdx.x; i < V; i += kCrossEntropyThreads)
    x[i] = from_float<T>(logit_gradient(to_float(x[i]), lse2, scale, i == tgt));
}

// The row in shared memory (p.vectorized; row bytes ≤ kCrossEntropyRowSmemBytes): thread j owns
// the vectors j, j + kThreads, …; it reads them from global memory kUnroll at a time, keeps them in
// shared memory, and in the second pass reads back only its own vectors (no barrier needed for
// them). The vocabulary's last V mod kN elements (rows whose stride is a whole number of vectors)
// are read from global memory in both passes.
template <typename T>
__global__ void __launch_bounds__(kCrossEntropySmemThreads) cross_entropy_rows_smem_kernel(CrossEntropyRowsParams p) {
  constexpr int kN = Vec<T>::kN, kThreads = kCrossEntropySmemThreads, kUnroll = 4;
  extern __shared__ uint4 s_row[];
  __shared__ MaxSum s_part[kThreads / 32];
  __shared__ float s_lse2;
  const int64_t row = blockIdx.x;
  T* x = static_cast<T*>(p.logits) + row * p.row_stride;
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  const int n_vec = static_cast<int>(p.vocab / kN);
  const int64_t tail0 = int64_t(n_vec) * kN;

  MaxSum acc{-INFINITY, 0.f};
  for (int base = threadIdx.x; base < n_vec; base += kUnroll * kThreads) {
    Vec<T> v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kThreads;
      if (i < n_vec) v[u].raw = xv[i];
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kThreads;
      if (i >= n_vec) break;
      s_row[i] = v[u].raw;
      float f[kN];
#pragma unroll
      for (int k = 0; k < kN; ++k) f[k] = to_float(v[u].v[k]) * kLog2e;
      absorb(acc, f);
    }
  }
  for (int64_t i = tail0 + threadIdx.x; i < p.vocab; i += kThreads) {
    const float f[1] = {to_float(x[i]) * kLog2e};
    absorb(acc, f);
  }
  const float lse2 = block_lse2<kThreads>(acc, s_part, &s_lse2);
  const int64_t tgt = p.targets[row];
  store_row_loss(p, row, x, lse2, tgt);
  if (!p.write_grad) return;
  __syncthreads();  // the target's logit is read above before any thread overwrites it
  const float scale = p.grad_scale;
  uint4* xw = reinterpret_cast<uint4*>(x);
  for (int i = threadIdx.x; i < n_vec; i += kThreads) {
    Vec<T> v;
    v.raw = s_row[i];
    const int64_t tk = tgt - int64_t(i) * kN;  // the target's element of this vector, if in [0, kN)
#pragma unroll
    for (int k = 0; k < kN; ++k) v.v[k] = from_float<T>(logit_gradient(to_float(v.v[k]), lse2, scale, tk == k));
    xw[i] = v.raw;
  }
  for (int64_t i = tail0 + threadIdx.x; i < p.vocab; i += kThreads)
    x[i] = from_float<T>(logit_gradient(to_float(x[i]), lse2, scale, i == tgt));
}

}  // namespace

void cross_entropy_rows(const CrossEntropyRowsParams& p) {
  if (p.rows == 0) return;
  MCD_CHECK(p.rows <= 2147483647LL, "cross_entropy_rows (CUDA): too many rows: ", p.rows);
  const dim3 grid(static_cast<unsigned>(p.rows));
  auto launch = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const size_t row_bytes = size_t(p.vocab / Vec<T>::kN) * 16;
    if (cross_entropy_rows_in_smem(p.vectorized, p.vocab, sizeof(T))) {
      launch_with_smem(&cross_entropy_rows_smem_kernel<T>, grid, kCrossEntropySmemThreads, row_bytes, p.stream, p);
    } else {
      cross_entropy_rows_kernel<T><<<grid, kCrossEntropyThreads, 0, p.stream>>>(p);
      MCD_CUDA_CHECK(cudaGetLastError());
    }
  };
  switch (p.dtype) {
    case DType::kFloat32: launch(static_cast<float*>(nullptr)); break;
    case DType::kFloat16: launch(static_cast<__half*>(nullptr)); break;
    case DType::kBFloat16: launch(static_cast<__nv_bfloat16*>(nullptr)); break;
    default:
      fail("cross_entropy_rows (CUDA): unsupported dtype code " + std::to_string(int(p.dtype)));
  }
}

}  // namespace mcd::ops::cuda
