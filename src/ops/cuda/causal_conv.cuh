// Causal depthwise conv1d (+ optional SiLU) kernels and launch templates, instantiated once per
// dtype in causal_conv_{fp32,fp16,bf16}.cu (the channel-contiguous and time-contiguous kernels:
// causal_conv_last.cuh, causal_conv_rows.cuh). One block = one batch row × kConvChannels channels ×
// kConvTimeTile timesteps, staged through fp32 shared memory with a (K−1)-step halo; the
// backward recomputes the pre-activation, writes dx, and leaves one dweight/dbias partial per
// (batch, time tile) for the host to sum (fixed order, no atomics).
#pragma once

#include "ops/cuda/causal_conv_last.cuh"
#include "ops/cuda/causal_conv_rows.cuh"
#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {

constexpr int kConvChannels = 32;
constexpr int kConvThreads = 256;
constexpr int kConvHalo = kConvMaxWidth - 1;
// Row pitch (odd, so channel-contiguous tile loads spread over the banks): a tile of
// kConvTimeTile + 2 halos fits in it.
constexpr int kConvPitch = kConvTimeTile + 2 * kConvHalo + 1;
static_assert(kConvPitch % 2 == 1, "odd pitch");

struct ConvLayout {
  __device__ __forceinline__ static int at(int r, int c) { return r * kConvPitch + c; }
};

// Pre-activation at tile column `col` of s_x, whose column 0 is time t0 − kConvHalo.
__device__ __forceinline__ float conv_pre(const float* xr, const float* w, float bias, int width,
                                          int col) {
  float acc = bias;
#pragma unroll
  for (int k = 0; k < kConvMaxWidth; ++k)
    if (k < width) acc = fmaf(w[k], xr[col - (width - 1) + k], acc);
  return acc;
}

// The block's taps and biases (channels e0 … e0 + rows − 1) into shared memory, zeros past its rows,
// the width and a missing bias: the forward and backward tile kernels read them the same way.
__device__ __forceinline__ void stage_conv_taps(float* s_w, float* s_b, const CausalConvParams& p, int64_t e0,
                                                int rows) {
  const int K = p.width;
  for (int i = threadIdx.x; i < kConvChannels * kConvMaxWidth; i += kConvThreads) {
    const int r = i / kConvMaxWidth, k = i % kConvMaxWidth;
    s_w[i] = (r < rows && k < K) ? p.weight[(e0 + r) * K + k] : 0.f;
  }
  for (int r = threadIdx.x; r < kConvChannels; r += kConvThreads)
    s_b[r] = (p.bias != nullptr && r < rows) ? p.bias[e0 + r] : 0.f;
}

template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvThreads) causal_conv_fwd_kernel(CausalConvParams p) {
  __shared__ float s_x[kConvChannels * kConvPitch];  // time t0 − kConvHalo + column
  __shared__ float s_w[kConvChannels * kConvMaxWidth];
  __shared__ float s_b[kConvChannels];
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kConvChannels;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kConvTimeTile;
  const int64_t b = blockIdx.z;
  const int rows = static_cast<int>(p.dim - e0 < kConvChannels ? p.dim - e0 : kConvChannels);
  const int K = p.width;
  stage_conv_taps(s_w, s_b, p, e0, rows);
  const T* x_g = static_cast<const T*>(p.x) + b * p.x_s.batch + e0 * p.x_s.row;
  load_tile<kConvTimeTile + kConvHalo, kConvThreads, ConvLayout, 0>(
      s_x, x_g, p.x_s.row, p.x_s.time, kConvChannels, rows, t0 - kConvHalo, p.len);
  __syncthreads();
  // Other threads still read the inputs, so results go to registers first and over the tile
  // (columns 0 … kConvTimeTile − 1) after a barrier.
  constexpr int kPerThread = kConvChannels * kConvTimeTile / kConvThreads;
  float res[kPerThread];
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    const int idx = threadIdx.x + q * kConvThreads;
    const int r = idx / kConvTimeTile, t = idx % kConvTimeTile;
    float v = conv_pre(s_x + r * kConvPitch, s_w + r * kConvMaxWidth, s_b[r], K, kConvHalo + t);
    if constexpr (kSilu) v *= sigmoid_f(v);
    res[q] = v;
  }
  __syncthreads();
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    const int idx = threadIdx.x + q * kConvThreads;
    s_x[ConvLayout::at(idx / kConvTimeTile, idx % kConvTimeTile)] = res[q];
  }
  __syncthreads();
  T* out_g = static_cast<T*>(p.out) + b * p.out_s.batch + e0 * p.out_s.row;
  store_tile<kConvTimeTile, kConvThreads, ConvLayout>(out_g, s_x, p.out_s.row, p.out_s.time,
                                                      kConvChannels, rows, t0, p.len);
}

template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvThreads) causal_conv_bwd_kernel(CausalConvParams p) {
  __shared__ float s_x[kConvChannels * kConvPitch];   // time t0 − kConvHalo + column
  __shared__ float s_g[kConvChannels * kConvPitch];   // dout, then d(pre): time t0 + column
  __shared__ float s_w[kConvChannels * kConvMaxWidth];
  __shared__ float s_b[kConvChannels];
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kConvChannels;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kConvTimeTile;
  const int64_t b = blockIdx.z;
  const int rows = static_cast<int>(p.dim - e0 < kConvChannels ? p.dim - e0 : kConvChannels);
  const int K = p.width;
  stage_conv_taps(s_w, s_b, p, e0, rows);
  const T* x_g = static_cast<const T*>(p.x) + b * p.x_s.batch + e0 * p.x_s.row;
  const T* g_g = static_cast<const T*>(p.dout) + b * p.dout_s.batch + e0 * p.dout_s.row;
  load_tile<kConvTimeTile + 2 * kConvHalo, kConvThreads, ConvLayout, 0>(
      s_x, x_g, p.x_s.row, p.x_s.time, kConvChannels, rows, t0 - kConvHalo, p.len);
  load_tile<kConvTimeTile + kConvHalo, kConvThreads, ConvLayout, 0>(
      s_g, g_g, p.dout_s.row, p.dout_s.time, kConvChannels, rows, t0, p.len);
  __syncthreads();
  // d(pre) at times t0 … t0 + kConvTimeTile + kConvHalo − 1 (the halo feeds dx of this tile).
  if constexpr (kSilu) {
    for (int idx = threadIdx.x; idx < kConvChannels * (kConvTimeTile + kConvHalo); idx += kConvThreads) {
      const int r = idx / (kConvTimeTile + kConvHalo), t = idx % (kConvTimeTile + kConvHalo);
      const float v = conv_pre(s_x + r * kConvPitch, s_w + r * kConvMaxWidth, s_b[r], K, kConvHalo + t);
      const float sg = sigmoid_f(v);
      s_g[ConvLayout::at(r, t)] *= sg * (1.f + v * (1.f - sg));  // 0 stays 0 past the end
    }
    __syncthreads();
  }
  // dx(t) = Σ_k w[k]·dpre(t + K − 1 − k), into registers, then over s_x's centre after a barrier.
  constexpr int kPerThread = kConvChannels * kConvTimeTile / kConvThreads;
  float res[kPerThread];
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    const int idx = threadIdx.x + q * kConvThreads;
    const int r = idx / kConvTimeTile, t = idx % kConvTimeTile;
    const float* gr = s_g + r * kConvPitch;
    const float* w = s_w + r * kConvMaxWidth;
    float acc = 0.f;
#pragma unroll
    for (int k = 0; k < kConvMaxWidth; ++k)
      if (k < K) acc = fmaf(w[k], gr[t + K - 1 - k], acc);
    res[q] = acc;
  }
  // Weight and bias partials of this tile: Σ_t dpre(t)·x(t − (K−1) + k), t in the tile only.
  float wpart = 0.f;
  const int wr = threadIdx.x / kConvMaxWidth, wk = threadIdx.x % kConvMaxWidth;
  const bool w_thread = threadIdx.x < kConvChannels * kConvMaxWidth;
  const bool b_thread = !w_thread && threadIdx.x < kConvChannels * (kConvMaxWidth + 1);
  if (w_thread && wk < K) {
    const float* gr = s_g + wr * kConvPitch;
    const float* xr = s_x + wr * kConvPitch + kConvHalo - (K - 1) + wk;
    for (int t = 0; t < kConvTimeTile; ++t) wpart = fmaf(gr[t], xr[t], wpart);
  } else if (b_thread) {
    const float* gr = s_g + (threadIdx.x - kConvChannels * kConvMaxWidth) * kConvPitch;
    for (int t = 0; t < kConvTimeTile; ++t) wpart += gr[t];
  }
  __syncthreads();
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    const int idx = threadIdx.x + q * kConvThreads;
    s_x[ConvLayout::at(idx / kConvTimeTile, idx % kConvTimeTile)] = res[q];
  }
  const int64_t part = b * p.n_time_tiles + blockIdx.y;
  if (w_thread && wk < K && wr < rows) p.dweight_part[(part * p.dim + e0 + wr) * K + wk] = wpart;
  if (b_thread && p.dbias_part != nullptr) {
    const int r = threadIdx.x - kConvChannels * kConvMaxWidth;
    if (r < rows) p.dbias_part[part * p.dim + e0 + r] = wpart;
  }
  __syncthreads();
  T* dx_g = static_cast<T*>(p.dx) + b * p.dx_s.batch + e0 * p.dx_s.row;
  store_tile<kConvTimeTile, kConvThreads, ConvLayout>(dx_g, s_x, p.dx_s.row, p.dx_s.time,
                                                      kConvChannels, rows, t0, p.len);
}

// Grid of either kernel family: (channel blocks or channel-group blocks, time tiles, batch).
inline dim3 causal_conv_grid(const CausalConvParams& p) {
  const int64_t x = p.channel_last ? (p.dim / kConvLastCh + kConvLastThreads - 1) / kConvLastThreads
                                   : (p.dim + kConvChannels - 1) / kConvChannels;
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(p.n_time_tiles), static_cast<unsigned>(p.batch));
}

template <typename T>
void causal_conv_fwd_launch(const CausalConvParams& p) {
  const dim3 grid = causal_conv_grid(p);
  MCD_BOOL_SWITCH(p.silu, kSilu, [&] {
    if (p.time_rows) {
      const int64_t threads = p.batch * p.dim * ((p.len + conv_rows_steps<T>() - 1) / conv_rows_steps<T>());
      causal_conv_fwd_rows_kernel<T, kSilu>
          <<<unsigned((threads + kConvRowsThreads - 1) / kConvRowsThreads), kConvRowsThreads, 0, p.stream>>>(p);
    } else if (p.channel_last) causal_conv_fwd_last_kernel<T, kSilu><<<grid, kConvLastThreads, 0, p.stream>>>(p);
    else causal_conv_fwd_kernel<T, kSilu><<<grid, kConvThreads, 0, p.stream>>>(p);
    MCD_CUDA_CHECK(cudaGetLastError());
  });
}

template <typename T>
void causal_conv_bwd_launch(const CausalConvParams& p) {
  dim3 grid = causal_conv_grid(p);
  MCD_BOOL_SWITCH(p.silu, kSilu, [&] {
    if (p.channel_last && p.dweight != nullptr) {
      grid.y = static_cast<unsigned>((p.n_time_tiles + kConvBwdRows - 1) / kConvBwdRows);
      causal_conv_bwd_last_atomic_kernel<T, kSilu><<<grid, dim3(kConvLastThreads, kConvBwdRows), 0, p.stream>>>(p);
    } else if (p.channel_last) {
      causal_conv_bwd_last_kernel<T, kSilu><<<grid, kConvLastThreads, 0, p.stream>>>(p);
    } else {
      causal_conv_bwd_kernel<T, kSilu><<<grid, kConvThreads, 0, p.stream>>>(p);
    }
    MCD_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace mcd::ops::cuda
