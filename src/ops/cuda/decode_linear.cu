// The few-row linear layer of a decode step (decode_linear_params.h): one warp per output column,
// its lanes splitting the inner dimension (16-byte loads of the weight row and of each x row, or
// one element at a time when unaligned), a warp sum per row, and lane r writing row r. The fused
// variant first forms its rows (residual add + RMSNorm) in shared memory, then runs the same loop.
#include <string>
#include <type_traits>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_linear_params.h"

namespace mcd::ops::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int d = 16; d >= 1; d /= 2) v += __shfl_xor_sync(kFullMask, v, d);
  return v;
}

// V consecutive elements of T (16 bytes) as floats; kGlobal: through the read-only cache.
template <typename T, int V, bool kGlobal>
__device__ __forceinline__ void load_vec(const T* ptr, float (&out)[V]) {
  static_assert(sizeof(T) * V == 16, "16-byte loads");
  uint4 raw;
  if constexpr (kGlobal) raw = __ldg(reinterpret_cast<const uint4*>(ptr));
  else raw = *reinterpret_cast<const uint4*>(ptr);
  const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < V; ++i) out[i] = to_float(v[i]);
}

// One output column for every row: acc[r] = Σ_k w[k]·x[r·x_stride + k], summed over the warp,
// written (+ bias) by lane r.
template <typename T, bool kVec, bool kXGlobal>
__device__ __forceinline__ void column(const DecodeLinearParams& p, int64_t col, const T* x, int64_t x_stride,
                                       int lane) {
  const T* w = static_cast<const T*>(p.weight) + col * p.w_row_stride;
  const int rows = static_cast<int>(p.rows);
  float acc[kDecodeLinearMaxRows];
#pragma unroll
  for (int r = 0; r < kDecodeLinearMaxRows; ++r) acc[r] = 0.f;
  if constexpr (kVec) {
    constexpr int V = 16 / sizeof(T);
    // Unrolled so that a row's loads are in flight together (1536 bf16 elements: 6 per lane).
#pragma unroll 4
    for (int64_t k = int64_t(lane) * V; k < p.in_features; k += 32 * V) {
      float wv[V];
      load_vec<T, V, true>(w + k, wv);
#pragma unroll
      for (int r = 0; r < kDecodeLinearMaxRows; ++r) {
        if (r >= rows) break;
        float xv[V];
        load_vec<T, V, kXGlobal>(x + r * x_stride + k, xv);
#pragma unroll
        for (int i = 0; i < V; ++i) acc[r] = fmaf(wv[i], xv[i], acc[r]);
      }
    }
  } else {
#pragma unroll 4
    for (int64_t k = lane; k < p.in_features; k += 32) {
      const float wv = to_float(w[k]);
#pragma unroll
      for (int r = 0; r < kDecodeLinearMaxRows; ++r) {
        if (r >= rows) break;
        acc[r] = fmaf(wv, to_float(x[r * x_stride + k]), acc[r]);
      }
    }
  }
  const float b = p.bias != nullptr ? to_float(static_cast<const T*>(p.bias)[col]) : 0.f;
#pragma unroll
  for (int r = 0; r < kDecodeLinearMaxRows; ++r) {
    if (r >= rows) break;
    const float s = warp_sum(acc[r]);
    if (lane == r) static_cast<T*>(p.out)[r * p.out_features + col] = from_float<T>(s + b);
  }
}

template <typename T, bool kVec>
__global__ void __launch_bounds__(32 * kDecodeLinearWarps) decode_linear_kernel(DecodeLinearParams p) {
  const int64_t col = int64_t(blockIdx.x) * kDecodeLinearWarps + threadIdx.x / 32;
  if (col >= p.out_features) return;  // the whole warp
  column<T, kVec, true>(p, col, static_cast<const T*>(p.x), p.x_row_stride, threadIdx.x % 32);
}

template <typename T, bool kVec, typename TNorm>
__global__ void __launch_bounds__(32 * kDecodeLinearWarps) add_norm_decode_linear_kernel(DecodeLinearParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* xs = reinterpret_cast<T*>(smem_raw);  // [rows][in]: the normed rows
  __shared__ float s_rstd[kDecodeLinearMaxRows];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t D = p.in_features, n = p.rows * D;
  const T* prev = static_cast<const T*>(p.prev);
  const TNorm* nw = static_cast<const TNorm*>(p.norm_weight);
  // rstd of each row (ops/cuda/add_norm.cu's formula), the whole block summing: one warp per row
  // walked its 768 elements 24 loads deep and made the fused kernel 8 µs (H200, 130M, fifth session).
  __shared__ float s_part[kDecodeLinearWarps][kDecodeLinearMaxRows];
  const int rows = static_cast<int>(p.rows);
  float ss[kDecodeLinearMaxRows];
#pragma unroll
  for (int r = 0; r < kDecodeLinearMaxRows; ++r) ss[r] = 0.f;
#pragma unroll 4
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
#pragma unroll
    for (int r = 0; r < kDecodeLinearMaxRows; ++r) {
      if (r >= rows) break;
      const float v = p.residual_in[r * D + k] + (prev != nullptr ? to_float(prev[r * D + k]) : 0.f);
      ss[r] = fmaf(v, v, ss[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < kDecodeLinearMaxRows; ++r) {
    if (r >= rows) break;
    const float t = warp_sum(ss[r]);
    if (lane == 0) s_part[warp][r] = t;
  }
  __syncthreads();
  if (threadIdx.x < rows) {
    float t = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeLinearWarps; ++w) t += s_part[w][threadIdx.x];
    s_rstd[threadIdx.x] = rsqrtf(t / float(D) + p.eps);
  }
  __syncthreads();
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t r = i / D, k = i - r * D;
    const float v = p.residual_in[i] + (prev != nullptr ? to_float(prev[i]) : 0.f);
    if (blockIdx.x == 0) p.residual_out[i] = v;
    xs[i] = from_float<T>(to_float(nw[k]) * (v * s_rstd[r]));
  }
  __syncthreads();
  const int64_t col = int64_t(blockIdx.x) * kDecodeLinearWarps + warp;
  if (col >= p.out_features) return;
  column<T, kVec, false>(p, col, xs, D, lane);
}

unsigned column_blocks(const DecodeLinearParams& p) {
  return unsigned((p.out_features + kDecodeLinearWarps - 1) / kDecodeLinearWarps);
}

template <typename T>
void launch(const DecodeLinearParams& p) {
  if (p.vec) decode_linear_kernel<T, true><<<column_blocks(p), 32 * kDecodeLinearWarps, 0, p.stream>>>(p);
  else decode_linear_kernel<T, false><<<column_blocks(p), 32 * kDecodeLinearWarps, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void launch_fused(const DecodeLinearParams& p) {
  const size_t smem = size_t(p.rows * p.in_features) * sizeof(T);
  auto go = [&](auto* norm_tag) {
    using TNorm = std::remove_pointer_t<decltype(norm_tag)>;
    if (p.vec) add_norm_decode_linear_kernel<T, true, TNorm><<<column_blocks(p), 32 * kDecodeLinearWarps, smem, p.stream>>>(p);
    else add_norm_decode_linear_kernel<T, false, TNorm><<<column_blocks(p), 32 * kDecodeLinearWarps, smem, p.stream>>>(p);
  };
  if (p.norm_weight_fp32) go(static_cast<float*>(nullptr));
  else go(static_cast<T*>(nullptr));
  MCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void decode_linear(const DecodeLinearParams& p) {
  MCD_CHECK(p.rows >= 1 && p.rows <= kDecodeLinearMaxRows, "decode_linear: rows must be 1..", kDecodeLinearMaxRows);
  if (p.out_features == 0) return;
  switch (p.dtype) {
    case DType::kFloat32: return launch<float>(p);
    case DType::kFloat16: return launch<__half>(p);
    case DType::kBFloat16: return launch<__nv_bfloat16>(p);
  }
  fail("decode_linear: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

void add_norm_decode_linear(const DecodeLinearParams& p) {
  MCD_CHECK(p.rows >= 1 && p.rows <= kDecodeLinearMaxRows, "add_norm_decode_linear: rows must be 1..",
            kDecodeLinearMaxRows);
  MCD_CHECK(p.out_features >= 1, "add_norm_decode_linear: no output columns (block 0 writes the residual)");
  switch (p.dtype) {
    case DType::kFloat32: return launch_fused<float>(p);
    case DType::kFloat16: return launch_fused<__half>(p);
    case DType::kBFloat16: return launch_fused<__nv_bfloat16>(p);
  }
  fail("add_norm_decode_linear: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace mcd::ops::cuda
