// Fused residual-add + RMSNorm, forward and backward (see add_norm_params.h). One warp per row,
// rows strided over the grid. Two versions of each kernel:
// - vectorised (p.vec4: D % 4 == 0 and aligned rows): each lane moves 4 consecutive elements per
//   access (16-byte fp32, 8-byte fp16/bf16) and keeps the first kAddNormCache of its 4-element
//   groups in registers, so a row of up to 1024 elements is read from global memory once; the
//   forward then issues every load of a row (residual, prev, weight) before its first store: with
//   loads and stores interleaved the compiler must assume they alias and walks a row's groups one
//   L2 round trip at a time (4.7 µs for 64 rows of 768, H200, PERF_NOTES "Twelfth session"); the
//   backward likewise issues a row's loads (dy, x, the incoming residual gradient) first;
// - scalar, any width: a row is read twice (the second read hits L1/L2).
// The weight gradient is summed per warp in shared memory, then per block in warp order
// (deterministic), and the host sums the per-block partials.
#include <string>
#include <type_traits>

#include "ops/cuda/add_norm_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {
namespace {

template <typename TOut, typename TPrev, typename TW>
__global__ void __launch_bounds__(32 * kAddNormWarps) add_norm_fwd_kernel(AddNormParams p) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t D = p.dim;
  const TW* weight = static_cast<const TW*>(p.weight);
  const TPrev* prev = static_cast<const TPrev*>(p.prev);
  TOut* normed = static_cast<TOut*>(p.normed);
  for (int64_t row = int64_t(blockIdx.x) * kAddNormWarps + warp; row < p.rows;
       row += int64_t(gridDim.x) * kAddNormWarps) {
    const int64_t o = row * D;
    float ss = 0.f;
    for (int64_t j = lane; j < D; j += 32) {
      float v = p.residual_in[o + j];
      if (prev != nullptr) v += to_float(prev[o + j]);
      p.residual_out[o + j] = v;
      ss = fmaf(v, v, ss);
    }
    const float r = rsqrtf(warp_sum(ss) / float(D) + p.eps);
    if (lane == 0) p.rstd[row] = r;
    for (int64_t j = lane; j < D; j += 32) normed[o + j] = from_float<TOut>(to_float(weight[j]) * (p.residual_out[o + j] * r));
  }
}

// The block's weight-gradient partial: its warps' rows of s_dw ([kAddNormWarps][D]) summed in warp
// order. Call after a barrier.
__device__ __forceinline__ void store_dweight_partial(const AddNormParams& p, const float* s_dw) {
  for (int64_t j = threadIdx.x; j < p.dim; j += 32 * kAddNormWarps) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < kAddNormWarps; ++w) s += s_dw[w * p.dim + j];
    p.dweight_part[int64_t(blockIdx.x) * p.dim + j] = s;
  }
}

template <typename TOut, typename TPrev>
__global__ void __launch_bounds__(32 * kAddNormWarps) add_norm_bwd_kernel(AddNormParams p) {
  extern __shared__ float s_dw[];  // [kAddNormWarps][D]
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float* weight = static_cast<const float*>(p.weight);  // fp32 in the backward
  const int64_t D = p.dim;
  const TOut* dy = static_cast<const TOut*>(p.dnormed);
  TPrev* dprev = static_cast<TPrev*>(p.dprev);
  float* my_dw = s_dw + warp * D;
  for (int64_t j = lane; j < D; j += 32) my_dw[j] = 0.f;
  for (int64_t row = int64_t(blockIdx.x) * kAddNormWarps + warp; row < p.rows;
       row += int64_t(gridDim.x) * kAddNormWarps) {
    const int64_t o = row * D;
    const float r = p.rstd[row];
    float dot = 0.f;  // Σ_j (dy·w)_j · x̂_j
    for (int64_t j = lane; j < D; j += 32)
      dot = fmaf(to_float(dy[o + j]) * weight[j], p.residual_out[o + j] * r, dot);
    dot = warp_sum(dot) / float(D);
    for (int64_t j = lane; j < D; j += 32) {
      const float g = to_float(dy[o + j]);
      const float xhat = p.residual_out[o + j] * r;
      float dx = r * fmaf(-xhat, dot, g * weight[j]);
      if (p.dresidual_out != nullptr) dx += p.dresidual_out[o + j];
      p.dresidual_in[o + j] = dx;
      if (dprev != nullptr) dprev[o + j] = from_float<TPrev>(dx);
      my_dw[j] = fmaf(g, xhat, my_dw[j]);
    }
  }
  __syncthreads();
  store_dweight_partial(p, s_dw);
}

// 4 consecutive elements at group index i4 (element 4·i4), as fp32.
__device__ __forceinline__ void load4(const float* base, int64_t i4, float (&v)[4]) {
  const float4 f = reinterpret_cast<const float4*>(base)[i4];
  v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
}
template <typename T>
__device__ __forceinline__ void load4(const T* base, int64_t i4, float (&v)[4]) {
  static_assert(sizeof(T) == 2, "16-bit element");
  union {
    uint2 u;
    T h[4];
  } pk;
  pk.u = reinterpret_cast<const uint2*>(base)[i4];
#pragma unroll
  for (int k = 0; k < 4; ++k) v[k] = to_float(pk.h[k]);
}
__device__ __forceinline__ void store4(float* base, int64_t i4, const float (&v)[4]) {
  reinterpret_cast<float4*>(base)[i4] = make_float4(v[0], v[1], v[2], v[3]);
}
template <typename T>
__device__ __forceinline__ void store4(T* base, int64_t i4, const float (&v)[4]) {
  union {
    uint2 u;
    T h[4];
  } pk;
#pragma unroll
  for (int k = 0; k < 4; ++k) pk.h[k] = from_float<T>(v[k]);
  reinterpret_cast<uint2*>(base)[i4] = pk.u;
}

// A lane's register cache of its first kAddNormCache 4-element groups of a row (group c = j4 / 32).
// The unrolled compare keeps every index a constant, so the cache stays in registers.
using GroupCache = float[kAddNormCache][4];
__device__ __forceinline__ void cache_put(GroupCache& cache, int64_t c, const float (&v)[4]) {
#pragma unroll
  for (int i = 0; i < kAddNormCache; ++i)
    if (c == i)
#pragma unroll
      for (int k = 0; k < 4; ++k) cache[i][k] = v[k];
}
// False (v untouched) when group c is past the cache.
__device__ __forceinline__ bool cache_get(const GroupCache& cache, int64_t c, float (&v)[4]) {
  if (c >= kAddNormCache) return false;
#pragma unroll
  for (int i = 0; i < kAddNormCache; ++i)
    if (c == i)
#pragma unroll
      for (int k = 0; k < 4; ++k) v[k] = cache[i][k];
  return true;
}

template <typename TOut, typename TPrev, typename TW>
__global__ void __launch_bounds__(32 * kAddNormWarps) add_norm_fwd_vec_kernel(AddNormParams p) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t D = p.dim, n4 = D / 4;
  const TW* weight = static_cast<const TW*>(p.weight);
  const TPrev* prev = static_cast<const TPrev*>(p.prev);
  TOut* normed = static_cast<TOut*>(p.normed);
  if (n4 <= 32 * kAddNormCache) {  // the whole row in registers: every load of a row before its first store
    for (int64_t row = int64_t(blockIdx.x) * kAddNormWarps + warp; row < p.rows;
         row += int64_t(gridDim.x) * kAddNormWarps) {
      const int64_t o4 = row * n4;
      float x[kAddNormCache][4], q[kAddNormCache][4], w[kAddNormCache][4];
#pragma unroll
      for (int c = 0; c < kAddNormCache; ++c) {
        const int64_t j4 = lane + 32 * c;
        if (j4 >= n4) break;
        load4(p.residual_in, o4 + j4, x[c]);
        if (prev != nullptr) load4(prev, o4 + j4, q[c]);
        else q[c][0] = q[c][1] = q[c][2] = q[c][3] = 0.f;  // (x + 0 as below: −0 becomes +0 there too)
        load4(weight, j4, w[c]);
      }
      float ss = 0.f;  // the sums in the order of the loop below (the same bits)
#pragma unroll
      for (int c = 0; c < kAddNormCache; ++c) {
        const int64_t j4 = lane + 32 * c;
        if (j4 >= n4) break;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          x[c][k] += q[c][k];
          ss = fmaf(x[c][k], x[c][k], ss);
        }
        store4(p.residual_out, o4 + j4, x[c]);
      }
      const float r = rsqrtf(warp_sum(ss) / float(D) + p.eps);
      if (lane == 0) p.rstd[row] = r;
#pragma unroll
      for (int c = 0; c < kAddNormCache; ++c) {
        const int64_t j4 = lane + 32 * c;
        if (j4 >= n4) break;
        float v[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) v[k] = w[c][k] * (x[c][k] * r);
        store4(normed, o4 + j4, v);
      }
    }
    return;
  }
  for (int64_t row = int64_t(blockIdx.x) * kAddNormWarps + warp; row < p.rows;
       row += int64_t(gridDim.x) * kAddNormWarps) {
    const int64_t o4 = row * n4;  // the row's first group
    GroupCache x;
    float ss = 0.f;
    for (int64_t j4 = lane; j4 < n4; j4 += 32) {
      float v[4], q[4] = {0.f, 0.f, 0.f, 0.f};
      load4(p.residual_in, o4 + j4, v);
      if (prev != nullptr) load4(prev, o4 + j4, q);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        v[k] += q[k];
        ss = fmaf(v[k], v[k], ss);
      }
      store4(p.residual_out, o4 + j4, v);
      cache_put(x, j4 / 32, v);
    }
    const float r = rsqrtf(warp_sum(ss) / float(D) + p.eps);
    if (lane == 0) p.rstd[row] = r;
    for (int64_t j4 = lane; j4 < n4; j4 += 32) {
      float v[4], w[4];
      if (!cache_get(x, j4 / 32, v)) load4(p.residual_out, o4 + j4, v);
      load4(weight, j4, w);
#pragma unroll
      for (int k = 0; k < 4; ++k) v[k] = w[k] * (v[k] * r);
      store4(normed, o4 + j4, v);
    }
  }
}

template <typename TOut, typename TPrev>
__global__ void __launch_bounds__(32 * kAddNormWarps) add_norm_bwd_vec_kernel(AddNormParams p) {
  extern __shared__ __align__(16) float s_dw[];  // [kAddNormWarps][D]
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float* weight = static_cast<const float*>(p.weight);  // fp32 in the backward
  const int64_t D = p.dim, n4 = D / 4;
  const TOut* dy = static_cast<const TOut*>(p.dnormed);
  TPrev* dprev = static_cast<TPrev*>(p.dprev);
  float* my_dw = s_dw + warp * D;
  for (int64_t j = lane; j < D; j += 32) my_dw[j] = 0.f;
  __syncwarp();
  if (n4 <= 32 * kAddNormCache) {
    // The whole row in registers, every global load of a row (dy, x, the incoming residual gradient)
    // issued before its first store: the loop below, with loads and stores interleaved, walked a row
    // one HBM round trip per 4-element group (72 µs for 16,384 rows of 768 on an H200, against ~45
    // for its 200 MB of traffic; PERF_NOTES "Fourteenth session" trace).
    for (int64_t row = int64_t(blockIdx.x) * kAddNormWarps + warp; row < p.rows;
         row += int64_t(gridDim.x) * kAddNormWarps) {
      const int64_t o4 = row * n4;
      const float r = p.rstd[row];
      float g[kAddNormCache][4], x[kAddNormCache][4], dr[kAddNormCache][4];
#pragma unroll
      for (int c = 0; c < kAddNormCache; ++c) {
        const int64_t j4 = lane + 32 * c;
        if (j4 >= n4) break;
        load4(dy, o4 + j4, g[c]);
        load4(p.residual_out, o4 + j4, x[c]);
        if (p.dresidual_out != nullptr) load4(p.dresidual_out, o4 + j4, dr[c]);
        else dr[c][0] = dr[c][1] = dr[c][2] = dr[c][3] = 0.f;
      }
      float dot = 0.f;  // Σ_j (dy·w)_j · x̂_j, in the order of the loop below (the same bits)
#pragma unroll
      for (int c = 0; c < kAddNormCache; ++c) {
        const int64_t j4 = lane + 32 * c;
        if (j4 >= n4) break;
        float w[4];
        load4(weight, j4, w);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          x[c][k] *= r;
          dot = fmaf(g[c][k] * w[k], x[c][k], dot);
        }
      }
      dot = warp_sum(dot) / float(D);
#pragma unroll
      for (int c = 0; c < kAddNormCache; ++c) {
        const int64_t j4 = lane + 32 * c;
        if (j4 >= n4) break;
        float w[4], dx[4];
        load4(weight, j4, w);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          dx[k] = fmaf(r, fmaf(-x[c][k], dot, g[c][k] * w[k]), dr[c][k]);
          my_dw[4 * j4 + k] = fmaf(g[c][k], x[c][k], my_dw[4 * j4 + k]);
        }
        store4(p.dresidual_in, o4 + j4, dx);
        if (dprev != nullptr) store4(dprev, o4 + j4, dx);
      }
    }
    __syncthreads();
    store_dweight_partial(p, s_dw);
    return;
  }
  for (int64_t row = int64_t(blockIdx.x) * kAddNormWarps + warp; row < p.rows;
       row += int64_t(gridDim.x) * kAddNormWarps) {
    const int64_t o4 = row * n4;
    const float r = p.rstd[row];
    GroupCache gc, xc;  // dy and x̂ of the cached groups
    float dot = 0.f;  // Σ_j (dy·w)_j · x̂_j
    for (int64_t j4 = lane; j4 < n4; j4 += 32) {
      float g[4], x[4], w[4];
      load4(dy, o4 + j4, g);
      load4(p.residual_out, o4 + j4, x);
      load4(weight, j4, w);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        x[k] *= r;
        dot = fmaf(g[k] * w[k], x[k], dot);
      }
      cache_put(gc, j4 / 32, g);
      cache_put(xc, j4 / 32, x);
    }
    dot = warp_sum(dot) / float(D);
    for (int64_t j4 = lane; j4 < n4; j4 += 32) {
      float g[4], x[4], w[4], dx[4], dr[4] = {0.f, 0.f, 0.f, 0.f};
      if (cache_get(gc, j4 / 32, g)) {
        cache_get(xc, j4 / 32, x);
      } else {
        load4(dy, o4 + j4, g);
        load4(p.residual_out, o4 + j4, x);
#pragma unroll
        for (int k = 0; k < 4; ++k) x[k] *= r;
      }
      load4(weight, j4, w);
      if (p.dresidual_out != nullptr) load4(p.dresidual_out, o4 + j4, dr);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        dx[k] = fmaf(r, fmaf(-x[k], dot, g[k] * w[k]), dr[k]);
        my_dw[4 * j4 + k] = fmaf(g[k], x[k], my_dw[4 * j4 + k]);
      }
      store4(p.dresidual_in, o4 + j4, dx);
      if (dprev != nullptr) store4(dprev, o4 + j4, dx);
    }
  }
  __syncthreads();
  store_dweight_partial(p, s_dw);
}

// dweight = Σ_blocks dweight_part in a fixed order (deterministic). A block sums kSumCols columns:
// its kSumSlices warps each take every kSumSlices-th partial row (one coalesced 128-byte load per
// warp and row, many rows in flight), then warp 0 adds the slices up. LibTorch's sum over dim 0
// took ~12 µs for the (528, 1024) partials of a 370M layer, all but ~1 µs of it latency.
constexpr int kSumCols = 32, kSumSlices = 32;
__global__ void __launch_bounds__(kSumCols* kSumSlices) add_norm_dweight_sum_kernel(AddNormParams p) {
  __shared__ float s_sum[kSumSlices][kSumCols + 1];
  const int col = threadIdx.x % kSumCols, slice = threadIdx.x / kSumCols;
  const int64_t j = int64_t(blockIdx.x) * kSumCols + col;
  float acc = 0.f;
  if (j < p.dim)
    for (int64_t b = slice; b < p.blocks; b += kSumSlices) acc += p.dweight_part[b * p.dim + j];
  s_sum[slice][col] = acc;
  __syncthreads();
  if (slice != 0 || j >= p.dim) return;
  float total = 0.f;
#pragma unroll
  for (int i = 0; i < kSumSlices; ++i) total += s_sum[i][col];
  p.dweight[j] = total;
}

template <class Fn>
void by_two_dtypes(const AddNormParams& p, Fn&& fn) {
  auto with_prev = [&](auto* out_tag) {
    using TOut = std::remove_pointer_t<decltype(out_tag)>;
    switch (p.prev_dtype) {
      case DType::kFloat32: return fn(static_cast<TOut*>(nullptr), static_cast<float*>(nullptr));
      case DType::kFloat16: return fn(static_cast<TOut*>(nullptr), static_cast<__half*>(nullptr));
      case DType::kBFloat16: return fn(static_cast<TOut*>(nullptr), static_cast<__nv_bfloat16*>(nullptr));
    }
    fail("add_rms_norm (CUDA): unsupported prev dtype code " + std::to_string(int(p.prev_dtype)));
  };
  switch (p.out_dtype) {
    case DType::kFloat32: return with_prev(static_cast<float*>(nullptr));
    case DType::kFloat16: return with_prev(static_cast<__half*>(nullptr));
    case DType::kBFloat16: return with_prev(static_cast<__nv_bfloat16*>(nullptr));
  }
  fail("add_rms_norm (CUDA): unsupported output dtype code " + std::to_string(int(p.out_dtype)));
}

}  // namespace

void add_norm_fwd(const AddNormParams& p) {
  by_two_dtypes(p, [&](auto* out_tag, auto* prev_tag) {
    using TOut = std::remove_pointer_t<decltype(out_tag)>;
    using TPrev = std::remove_pointer_t<decltype(prev_tag)>;
    auto launch = [&](auto* w_tag) {
      using TW = std::remove_pointer_t<decltype(w_tag)>;
      if (p.vec4) add_norm_fwd_vec_kernel<TOut, TPrev, TW><<<unsigned(p.blocks), 32 * kAddNormWarps, 0, p.stream>>>(p);
      else add_norm_fwd_kernel<TOut, TPrev, TW><<<unsigned(p.blocks), 32 * kAddNormWarps, 0, p.stream>>>(p);
    };
    switch (p.weight_dtype) {
      case DType::kFloat32: launch(static_cast<float*>(nullptr)); break;
      case DType::kFloat16: launch(static_cast<__half*>(nullptr)); break;
      case DType::kBFloat16: launch(static_cast<__nv_bfloat16*>(nullptr)); break;
      default: fail("add_rms_norm (CUDA): unsupported weight dtype code " + std::to_string(int(p.weight_dtype)));
    }
    MCD_CUDA_CHECK(cudaGetLastError());
  });
}

void add_norm_bwd(const AddNormParams& p) {
  MCD_CHECK(p.weight_dtype == DType::kFloat32, "add_rms_norm (CUDA): the backward takes an fp32 weight");
  by_two_dtypes(p, [&](auto* out_tag, auto* prev_tag) {
    using TOut = std::remove_pointer_t<decltype(out_tag)>;
    using TPrev = std::remove_pointer_t<decltype(prev_tag)>;
    const size_t smem = sizeof(float) * kAddNormWarps * size_t(p.dim);
    launch_with_smem(p.vec4 ? &add_norm_bwd_vec_kernel<TOut, TPrev> : &add_norm_bwd_kernel<TOut, TPrev>,
                     dim3(unsigned(p.blocks)), 32 * kAddNormWarps, smem, p.stream, p);
  });
  add_norm_dweight_sum_kernel<<<unsigned((p.dim + kSumCols - 1) / kSumCols), kSumCols * kSumSlices, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace mcd::ops::cuda
