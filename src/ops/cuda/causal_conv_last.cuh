// Channel-contiguous causal conv kernels (the model's layout: x, out, dout and dx are (B, L, E)
// memory seen as (B, E, L), p.channel_last). Each thread owns kConvLastCh adjacent channels and
// walks kConvSeg timesteps with the previous kConvHalo inputs in registers, so x is read once
// (plus a 3-step halo per segment) with one 8- or 16-byte load per step, and nothing is staged
// through shared memory. Consecutive threads take consecutive channel groups: a warp's loads of
// one timestep are contiguous. Taps are right-aligned in a 4-tap window (tap j multiplies
// x[t − 3 + j]; the first 4 − K taps are 0), so one code path serves K = 1 … 4. Semantics of
// causal_conv.cuh's tile kernels. The backward's dweight/dbias are per-(batch, segment) partials
// (deterministic) or block sums added atomically (p.dweight set).
#pragma once

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {

constexpr int kConvLastThreads = 64;
constexpr int kConvLastSteps = 8;     // forward: timesteps loaded ahead of use (group by group: prefetching
                                      // the next group costs 33 registers and measured 20 % slower)
constexpr int kConvLastBwdSteps = 2;  // backward: steps per group (two inputs, and the next group in flight)

template <typename T>
struct alignas(kConvLastCh * sizeof(T)) ConvPack {
  T v[kConvLastCh];
};

// This thread's first channel, segment start and batch row.
struct ConvLastSlot {
  int64_t c0, t0, b;
};
__device__ __forceinline__ ConvLastSlot conv_last_slot() {
  return {(static_cast<int64_t>(blockIdx.x) * kConvLastThreads + threadIdx.x) * kConvLastCh,
          static_cast<int64_t>(blockIdx.y) * kConvSeg, static_cast<int64_t>(blockIdx.z)};
}

// Weights of channels c0 … c0 + 3 as a right-aligned 4-tap window, and their biases.
__device__ __forceinline__ void conv_last_weights(const CausalConvParams& p, int64_t c0, float (&w)[kConvLastCh][4],
                                                  float (&bias)[kConvLastCh]) {
  const int K = p.width;
#pragma unroll
  for (int i = 0; i < kConvLastCh; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int k = j - (4 - K);
      w[i][j] = k >= 0 ? p.weight[(c0 + i) * K + k] : 0.f;
    }
    bias[i] = p.bias != nullptr ? p.bias[c0 + i] : 0.f;
  }
}

// kConvLastCh channels at time t of a channel-contiguous row (t outside [0, len): zeros).
template <typename T>
__device__ __forceinline__ void conv_last_load(const T* __restrict__ row, int64_t s_time, int64_t t, int64_t len,
                                               float (&v)[kConvLastCh]) {
  if (t >= 0 && t < len) {
    const ConvPack<T> pk = *reinterpret_cast<const ConvPack<T>*>(row + t * s_time);
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) v[i] = to_float(pk.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) v[i] = 0.f;
  }
}

template <typename T>
__device__ __forceinline__ void conv_last_store(T* __restrict__ row, int64_t s_time, int64_t t,
                                                const float (&v)[kConvLastCh]) {
  ConvPack<T> pk;
#pragma unroll
  for (int i = 0; i < kConvLastCh; ++i) pk.v[i] = from_float<T>(v[i]);
  *reinterpret_cast<ConvPack<T>*>(row + t * s_time) = pk;
}

template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvLastThreads) causal_conv_fwd_last_kernel(CausalConvParams p) {
  const ConvLastSlot slot = conv_last_slot();
  if (slot.c0 >= p.dim) return;
  const int64_t c0 = slot.c0, t0 = slot.t0, b = slot.b;
  float w[kConvLastCh][4], bias[kConvLastCh];
  conv_last_weights(p, c0, w, bias);
  const T* x = static_cast<const T*>(p.x) + b * p.x_s.batch + c0;
  T* out = static_cast<T*>(p.out) + b * p.out_s.batch + c0;
  float win[3][kConvLastCh];  // x at t − 3, t − 2, t − 1
#pragma unroll
  for (int j = 0; j < 3; ++j) conv_last_load(x, p.x_s.time, t0 - 3 + j, p.len, win[j]);
  const int64_t t_end = t0 + kConvSeg < p.len ? t0 + kConvSeg : p.len;
  for (int64_t ts = t0; ts < t_end; ts += kConvLastSteps) {
    float xv[kConvLastSteps][kConvLastCh];
#pragma unroll
    for (int q = 0; q < kConvLastSteps; ++q) conv_last_load(x, p.x_s.time, ts + q < t_end ? ts + q : -1, p.len, xv[q]);
#pragma unroll
    for (int q = 0; q < kConvLastSteps; ++q) {
      float o[kConvLastCh];
#pragma unroll
      for (int i = 0; i < kConvLastCh; ++i) {
        float v = bias[i];
        v = fmaf(w[i][0], win[0][i], v);
        v = fmaf(w[i][1], win[1][i], v);
        v = fmaf(w[i][2], win[2][i], v);
        v = fmaf(w[i][3], xv[q][i], v);
        if constexpr (kSilu) v *= sigmoid_f(v);
        o[i] = v;
        win[0][i] = win[1][i];
        win[1][i] = win[2][i];
        win[2][i] = xv[q][i];
      }
      if (ts + q < t_end) conv_last_store(out, p.out_s.time, ts + q, o);
    }
  }
}

// Backward over one segment [t0, t0 + kConvSeg) of channels c0 … c0 + 3: dx of the segment, and the
// segment's dweight/dbias sums. d(pre) is formed for t up to t0 + kConvSeg + 2 (dx at s needs d(pre)
// at s … s + 3); dweight/dbias sum d(pre) over the segment only.
template <typename T, bool kSilu>
__device__ __forceinline__ void conv_bwd_last_segment(const CausalConvParams& p, int64_t c0, int64_t t0, int64_t b,
                                                      float (&dw)[kConvLastCh][4], float (&db)[kConvLastCh]) {
  float w[kConvLastCh][4], bias[kConvLastCh];
  conv_last_weights(p, c0, w, bias);
  const T* x = static_cast<const T*>(p.x) + b * p.x_s.batch + c0;
  const T* g = static_cast<const T*>(p.dout) + b * p.dout_s.batch + c0;
  T* dx = static_cast<T*>(p.dx) + b * p.dx_s.batch + c0;
  float xw[3][kConvLastCh];              // x at t − 3 … t − 1
  float dpw[3][kConvLastCh] = {};        // d(pre) at t − 3 … t − 1
#pragma unroll
  for (int j = 0; j < 3; ++j) conv_last_load(x, p.x_s.time, t0 - 3 + j, p.len, xw[j]);
  const int64_t seg_end = t0 + kConvSeg < p.len ? t0 + kConvSeg : p.len;
  // The next group's x and dout are loaded before this group is computed, so a thread always has
  // one group of loads in flight instead of waiting out a memory latency per group.
  float xn[kConvLastBwdSteps][kConvLastCh], gn[kConvLastBwdSteps][kConvLastCh];
  auto load_group = [&](int64_t ts) {
#pragma unroll
    for (int q = 0; q < kConvLastBwdSteps; ++q) {
      conv_last_load(x, p.x_s.time, ts + q, p.len, xn[q]);
      conv_last_load(g, p.dout_s.time, ts + q, p.len, gn[q]);
    }
  };
  load_group(t0);
  for (int64_t ts = t0; ts < seg_end + 3; ts += kConvLastBwdSteps) {
    float xv[kConvLastBwdSteps][kConvLastCh], gv[kConvLastBwdSteps][kConvLastCh];
#pragma unroll
    for (int q = 0; q < kConvLastBwdSteps; ++q) {
#pragma unroll
      for (int i = 0; i < kConvLastCh; ++i) {
        xv[q][i] = xn[q][i];
        gv[q][i] = gn[q][i];
      }
    }
    if (ts + kConvLastBwdSteps < seg_end + 3) load_group(ts + kConvLastBwdSteps);
#pragma unroll
    for (int q = 0; q < kConvLastBwdSteps; ++q) {
      const int64_t t = ts + q, s = t - 3;
      const bool in_seg = t < seg_end;
      float dxv[kConvLastCh];
#pragma unroll
      for (int i = 0; i < kConvLastCh; ++i) {
        float dp = gv[q][i];  // 0 past the end
        if constexpr (kSilu) {
          float v = bias[i];
          v = fmaf(w[i][0], xw[0][i], v);
          v = fmaf(w[i][1], xw[1][i], v);
          v = fmaf(w[i][2], xw[2][i], v);
          v = fmaf(w[i][3], xv[q][i], v);
          const float sg = sigmoid_f(v);
          dp *= sg * (1.f + v * (1.f - sg));
        }
        if (in_seg) {
          dw[i][0] = fmaf(dp, xw[0][i], dw[i][0]);
          dw[i][1] = fmaf(dp, xw[1][i], dw[i][1]);
          dw[i][2] = fmaf(dp, xw[2][i], dw[i][2]);
          dw[i][3] = fmaf(dp, xv[q][i], dw[i][3]);
          db[i] += dp;
        }
        // dx[s] = Σ_j w_j · d(pre)[s + 3 − j]
        float a = w[i][3] * dpw[0][i];
        a = fmaf(w[i][2], dpw[1][i], a);
        a = fmaf(w[i][1], dpw[2][i], a);
        dxv[i] = fmaf(w[i][0], dp, a);
        xw[0][i] = xw[1][i];
        xw[1][i] = xw[2][i];
        xw[2][i] = xv[q][i];
        dpw[0][i] = dpw[1][i];
        dpw[1][i] = dpw[2][i];
        dpw[2][i] = dp;
      }
      if (s >= t0 && s < seg_end) conv_last_store(dx, p.dx_s.time, s, dxv);
    }
  }
}

// Deterministic backward: one segment per thread; its dweight/dbias sums go to the partials of
// (batch, segment), which the host sums in a fixed order.
template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvLastThreads) causal_conv_bwd_last_kernel(CausalConvParams p) {
  const ConvLastSlot slot = conv_last_slot();
  if (slot.c0 >= p.dim) return;
  const int64_t c0 = slot.c0, b = slot.b;
  float dw[kConvLastCh][4] = {}, db[kConvLastCh] = {};
  conv_bwd_last_segment<T, kSilu>(p, c0, slot.t0, b, dw, db);
  const int64_t part = b * p.n_time_tiles + blockIdx.y;
  const int K = p.width;
#pragma unroll
  for (int i = 0; i < kConvLastCh; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int k = j - (4 - K);
      if (k >= 0) p.dweight_part[(part * p.dim + c0 + i) * K + k] = dw[i][j];
    }
    if (p.dbias_part != nullptr) p.dbias_part[part * p.dim + c0 + i] = db[i];
  }
}

// Atomic backward (the default): a block is kConvLastThreads channel groups × kConvBwdRows
// consecutive segments. The rows' dweight/dbias sums meet in shared memory and row 0 adds them into
// the zeroed fp32 p.dweight/p.dbias, so no partials are written and no reduction kernel follows
// (the order of the adds varies between runs).
constexpr int kConvBwdRows = 4;
template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvLastThreads* kConvBwdRows, 8 / kConvBwdRows) causal_conv_bwd_last_atomic_kernel(CausalConvParams p) {
  constexpr int kVals = kConvLastCh * 5;  // 4 taps and the bias per channel
  __shared__ float s_sum[kConvBwdRows - 1][kVals][kConvLastThreads];
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * kConvLastThreads + threadIdx.x) * kConvLastCh;
  const int64_t seg = static_cast<int64_t>(blockIdx.y) * kConvBwdRows + threadIdx.y, b = blockIdx.z;
  float dw[kConvLastCh][4] = {}, db[kConvLastCh] = {};
  if (c0 < p.dim && seg < p.n_time_tiles) conv_bwd_last_segment<T, kSilu>(p, c0, seg * kConvSeg, b, dw, db);
  if (threadIdx.y > 0) {
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) s_sum[threadIdx.y - 1][i * 5 + j][threadIdx.x] = dw[i][j];
      s_sum[threadIdx.y - 1][i * 5 + 4][threadIdx.x] = db[i];
    }
  }
  __syncthreads();
  if (threadIdx.y != 0 || c0 >= p.dim) return;
#pragma unroll
  for (int r = 0; r < kConvBwdRows - 1; ++r) {
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) dw[i][j] += s_sum[r][i * 5 + j][threadIdx.x];
      db[i] += s_sum[r][i * 5 + 4][threadIdx.x];
    }
  }
  const int K = p.width;
#pragma unroll
  for (int i = 0; i < kConvLastCh; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int k = j - (4 - K);
      if (k >= 0) atomicAdd(p.dweight + (c0 + i) * K + k, dw[i][j]);
    }
    if (p.dbias != nullptr) atomicAdd(p.dbias + c0 + i, db[i]);
  }
}

}  // namespace mcd::ops::cuda
