// Fused residual-add + RMSNorm, forward and backward (see add_norm_params.h). One warp per row,
// rows strided over a fixed grid; a row is read from global memory twice (the second read hits
// L1/L2), so any width works. The weight gradient is summed per warp in shared memory, then per
// block in warp order (deterministic), and the host sums the per-block partials.
#include <string>
#include <type_traits>

#include "ops/cuda/add_norm_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int d = 16; d >= 1; d /= 2) v += __shfl_xor_sync(kFullMask, v, d);
  return v;
}

template <typename TOut, typename TPrev>
__global__ void __launch_bounds__(32 * kAddNormWarps) add_norm_fwd_kernel(AddNormParams p) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t D = p.dim;
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
    for (int64_t j = lane; j < D; j += 32) normed[o + j] = from_float<TOut>(p.weight[j] * (p.residual_out[o + j] * r));
  }
}

template <typename TOut, typename TPrev>
__global__ void __launch_bounds__(32 * kAddNormWarps) add_norm_bwd_kernel(AddNormParams p) {
  extern __shared__ float s_dw[];  // [kAddNormWarps][D]
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
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
      dot = fmaf(to_float(dy[o + j]) * p.weight[j], p.residual_out[o + j] * r, dot);
    dot = warp_sum(dot) / float(D);
    for (int64_t j = lane; j < D; j += 32) {
      const float g = to_float(dy[o + j]);
      const float xhat = p.residual_out[o + j] * r;
      float dx = r * fmaf(-xhat, dot, g * p.weight[j]);
      if (p.dresidual_out != nullptr) dx += p.dresidual_out[o + j];
      p.dresidual_in[o + j] = dx;
      if (dprev != nullptr) dprev[o + j] = from_float<TPrev>(dx);
      my_dw[j] = fmaf(g, xhat, my_dw[j]);
    }
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < D; j += 32 * kAddNormWarps) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < kAddNormWarps; ++w) s += s_dw[w * D + j];
    p.dweight_part[int64_t(blockIdx.x) * D + j] = s;
  }
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
    add_norm_fwd_kernel<TOut, TPrev><<<unsigned(p.blocks), 32 * kAddNormWarps, 0, p.stream>>>(p);
    MCD_CUDA_CHECK(cudaGetLastError());
  });
}

void add_norm_bwd(const AddNormParams& p) {
  by_two_dtypes(p, [&](auto* out_tag, auto* prev_tag) {
    using TOut = std::remove_pointer_t<decltype(out_tag)>;
    using TPrev = std::remove_pointer_t<decltype(prev_tag)>;
    const size_t smem = sizeof(float) * kAddNormWarps * size_t(p.dim);
    launch_with_smem(&add_norm_bwd_kernel<TOut, TPrev>, dim3(unsigned(p.blocks)), 32 * kAddNormWarps, smem,
                     p.stream, p);
  });
}

}  // namespace mcd::ops::cuda
