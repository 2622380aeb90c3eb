// Channel-contiguous causal conv kernels (the model's layout: x, out, dout and dx are (B, L, E)
// memory seen as (B, E, L), p.channel_last). Each thread owns kConvLastCh adjacent channels and
// walks kConvSeg timesteps with the previous 3 inputs in registers, so x is read once (plus a
// 3-step halo per segment) with one 8- or 16-byte copy per step. The copies run ahead through a
// per-thread ring of shared-memory slots filled by cp.async (conv_ring_depth steps in flight, no
// registers held for them, no barrier), which keeps enough bytes in flight to approach HBM speed
// at the occupancy the registers allow. Consecutive threads take consecutive channel groups: a
// warp's copies of one timestep are contiguous. Taps are right-aligned in a 4-tap window (tap j
// multiplies x[t − 3 + j]; the first 4 − K taps are 0), so one code path serves K = 1 … 4. Semantics
// of causal_conv.cuh's tile kernels. The backward's dweight/dbias are per-(batch, segment) partials
// (deterministic) or block sums added atomically (p.dweight set).
#pragma once

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {

constexpr int kConvLastThreads = 64;

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

template <typename T>
__device__ __forceinline__ void conv_last_store(T* __restrict__ row, int64_t s_time, int64_t t,
                                                const float (&v)[kConvLastCh]) {
  ConvPack<T> pk;
#pragma unroll
  for (int i = 0; i < kConvLastCh; ++i) pk.v[i] = from_float<T>(v[i]);
  *reinterpret_cast<ConvPack<T>*>(row + t * s_time) = pk;
}

// cp.async of kBytes (4, 8 or 16) from global into shared memory; src_bytes < kBytes zero-fills.
template <int kBytes>
__device__ __forceinline__ void conv_cp_async(void* smem, const void* gmem, int src_bytes) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(s), "l"(gmem), "n"(kBytes), "r"(src_bytes));
}
__device__ __forceinline__ void conv_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void conv_cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Both kernels' per-thread load pipeline: conv_ring_depth steps in flight through cp.async into the
// thread's own ring of shared-memory slots (no registers held for them, no barrier: a thread reads
// only what it copied). 8 steps of 8-byte packs (16-bit types), 4 of 16 (fp32).
template <typename T>
constexpr int conv_ring_depth() {
  return sizeof(T) == 4 ? 4 : 8;
}
// The backward's ring for a block of kThreads threads: [depth][x, dout][thread].
template <typename T, int kThreads>
struct ConvBwdRing {
  ConvPack<T> slot[conv_ring_depth<T>()][2][kThreads];
};

// Forward over one segment: x[t0 − 3, seg_end) through the thread's cp.async ring, out[t0, seg_end).
template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvLastThreads) causal_conv_fwd_last_kernel(CausalConvParams p) {
  constexpr int kD = conv_ring_depth<T>(), kBytes = int(sizeof(ConvPack<T>));
  __shared__ ConvPack<T> ring[kD][kConvLastThreads];
  const ConvLastSlot slot = conv_last_slot();
  if (slot.c0 >= p.dim) return;
  const int64_t c0 = slot.c0, t0 = slot.t0, b = slot.b;
  float w[kConvLastCh][4], bias[kConvLastCh];
  conv_last_weights(p, c0, w, bias);
  const T* x = static_cast<const T*>(p.x) + b * p.x_s.batch + c0;
  T* out = static_cast<T*>(p.out) + b * p.out_s.batch + c0;
  const int64_t seg_end = t0 + kConvSeg < p.len ? t0 + kConvSeg : p.len;
  const int n = static_cast<int>(seg_end - (t0 - 3));  // steps t0 − 3 … seg_end − 1
  ConvPack<T>* const mine = &ring[0][threadIdx.x];
  auto issue = [&](int L) {  // step L (time t0 − 3 + L) into slot L % kD; zeros before the start
    if (L < n) {
      const int64_t t = t0 - 3 + L;
      conv_cp_async<kBytes>(mine + (L % kD) * kConvLastThreads, t >= 0 ? x + t * p.x_s.time : x, t >= 0 ? kBytes : 0);
    }
    conv_cp_commit();
  };
  auto read = [&](int L, float (&v)[kConvLastCh]) {
    const ConvPack<T> pk = mine[(L % kD) * kConvLastThreads];
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) v[i] = to_float(pk.v[i]);
  };
  for (int L = 0; L < kD - 1; ++L) issue(L);
  float win[3][kConvLastCh];  // x at t − 3, t − 2, t − 1
#pragma unroll
  for (int j = 0; j < 3; ++j) {
    issue(j + kD - 1);
    conv_cp_wait<kD - 1>();
    read(j, win[j]);
  }
#pragma unroll 4
  for (int L = 3; L < n; ++L) {
    issue(L + kD - 1);
    conv_cp_wait<kD - 1>();
    float xv[kConvLastCh], o[kConvLastCh];
    read(L, xv);
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) {
      float v = bias[i];
      v = fmaf(w[i][0], win[0][i], v);
      v = fmaf(w[i][1], win[1][i], v);
      v = fmaf(w[i][2], win[2][i], v);
      v = fmaf(w[i][3], xv[i], v);
      if constexpr (kSilu) v *= sigmoid_f(v);
      o[i] = v;
      win[0][i] = win[1][i];
      win[1][i] = win[2][i];
      win[2][i] = xv[i];
    }
    conv_last_store(out, p.out_s.time, t0 - 3 + L, o);
  }
  conv_cp_wait<0>();
}

// Backward over one segment [t0, t0 + kConvSeg) of channels c0 … c0 + 3: dx of the segment, and the
// segment's dweight/dbias sums. d(pre) is formed for t up to t0 + kConvSeg + 2 (dx at s needs d(pre)
// at s … s + 3); dweight/dbias sum d(pre) over the segment only. x and dout come through the
// thread's ring (`ring` points at its column [0][0][tid], `stride` = the block's thread count).
template <typename T, bool kSilu>
__device__ __forceinline__ void conv_bwd_last_segment(const CausalConvParams& p, int64_t c0, int64_t t0,
                                                            int64_t b, ConvPack<T>* ring, int stride,
                                                            float (&dw)[kConvLastCh][4], float (&db)[kConvLastCh]) {
  constexpr int kD = conv_ring_depth<T>(), kBytes = int(sizeof(ConvPack<T>));
  float w[kConvLastCh][4], bias[kConvLastCh];
  conv_last_weights(p, c0, w, bias);
  const T* x = static_cast<const T*>(p.x) + b * p.x_s.batch + c0;
  const T* g = static_cast<const T*>(p.dout) + b * p.dout_s.batch + c0;
  T* dx = static_cast<T*>(p.dx) + b * p.dx_s.batch + c0;
  const int64_t seg_end = t0 + kConvSeg < p.len ? t0 + kConvSeg : p.len;
  const int n = static_cast<int>(seg_end + 3 - (t0 - 3));  // steps t0 − 3 … seg_end + 2
  // Step L (time t0 − 3 + L) goes to slot L % kD; past either end of the sequence it is zeros.
  auto issue = [&](int L) {
    if (L < n) {
      const int64_t t = t0 - 3 + L;
      const bool in = t >= 0 && t < p.len;
      ConvPack<T>* sl = ring + (L % kD) * 2 * stride;
      conv_cp_async<kBytes>(sl, in ? x + t * p.x_s.time : x, in ? kBytes : 0);
      conv_cp_async<kBytes>(sl + stride, in ? g + t * p.dout_s.time : g, in ? kBytes : 0);
    }
    conv_cp_commit();  // an empty group past the end keeps the count uniform
  };
  auto read = [&](int L, float (&xv)[kConvLastCh], float (&gv)[kConvLastCh]) {
    const ConvPack<T>* sl = ring + (L % kD) * 2 * stride;
    const ConvPack<T> xp = sl[0], gp = sl[stride];
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) {
      xv[i] = to_float(xp.v[i]);
      gv[i] = to_float(gp.v[i]);
    }
  };
  // Iteration L first refills the slot that step L − 1 used (its values are in registers by then),
  // with step L + kD − 1, then waits for step L's group.
  for (int L = 0; L < kD - 1; ++L) issue(L);
  float xw[3][kConvLastCh];        // x at t − 3 … t − 1
  float dpw[3][kConvLastCh] = {};  // d(pre) at t − 3 … t − 1
#pragma unroll
  for (int j = 0; j < 3; ++j) {
    issue(j + kD - 1);
    conv_cp_wait<kD - 1>();
    float gv[kConvLastCh];
    read(j, xw[j], gv);
  }
#pragma unroll 2
  for (int L = 3; L < n; ++L) {
    issue(L + kD - 1);
    conv_cp_wait<kD - 1>();
    float xv[kConvLastCh], gv[kConvLastCh];
    read(L, xv, gv);
    const int64_t t = t0 - 3 + L, s = t - 3;
    const bool in_seg = t < seg_end;
    float dxv[kConvLastCh];
#pragma unroll
    for (int i = 0; i < kConvLastCh; ++i) {
      float dp = gv[i];  // 0 past the end
      if constexpr (kSilu) {
        float v = bias[i];
        v = fmaf(w[i][0], xw[0][i], v);
        v = fmaf(w[i][1], xw[1][i], v);
        v = fmaf(w[i][2], xw[2][i], v);
        v = fmaf(w[i][3], xv[i], v);
        const float sg = sigmoid_f(v);
        dp *= sg * (1.f + v * (1.f - sg));
      }
      if (in_seg) {
        dw[i][0] = fmaf(dp, xw[0][i], dw[i][0]);
        dw[i][1] = fmaf(dp, xw[1][i], dw[i][1]);
        dw[i][2] = fmaf(dp, xw[2][i], dw[i][2]);
        dw[i][3] = fmaf(dp, xv[i], dw[i][3]);
        db[i] += dp;
      }
      // dx[s] = Σ_j w_j · d(pre)[s + 3 − j]
      float a = w[i][3] * dpw[0][i];
      a = fmaf(w[i][2], dpw[1][i], a);
      a = fmaf(w[i][1], dpw[2][i], a);
      dxv[i] = fmaf(w[i][0], dp, a);
      xw[0][i] = xw[1][i];
      xw[1][i] = xw[2][i];
      xw[2][i] = xv[i];
      dpw[0][i] = dpw[1][i];
      dpw[1][i] = dpw[2][i];
      dpw[2][i] = dp;
    }
    if (s >= t0 && s < seg_end) conv_last_store(dx, p.dx_s.time, s, dxv);
  }
  conv_cp_wait<0>();  // no copy may land in the ring after the thread is done with it
}

// Deterministic backward: one segment per thread; its dweight/dbias sums go to the partials of
// (batch, segment), which the host sums in a fixed order.
template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvLastThreads) causal_conv_bwd_last_kernel(CausalConvParams p) {
  __shared__ ConvBwdRing<T, kConvLastThreads> ring;
  const ConvLastSlot slot = conv_last_slot();
  if (slot.c0 >= p.dim) return;
  const int64_t c0 = slot.c0, b = slot.b;
  float dw[kConvLastCh][4] = {}, db[kConvLastCh] = {};
  conv_bwd_last_segment<T, kSilu>(p, c0, slot.t0, b, &ring.slot[0][0][threadIdx.x], kConvLastThreads, dw, db);
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
__global__ void __launch_bounds__(kConvLastThreads* kConvBwdRows, 8 / kConvBwdRows)
    causal_conv_bwd_last_atomic_kernel(CausalConvParams p) {
  constexpr int kVals = kConvLastCh * 5;  // 4 taps and the bias per channel
  constexpr int kThreads = kConvLastThreads * kConvBwdRows;
  __shared__ float s_sum[kConvBwdRows - 1][kVals][kConvLastThreads];
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * kConvLastThreads + threadIdx.x) * kConvLastCh;
  const int64_t seg = static_cast<int64_t>(blockIdx.y) * kConvBwdRows + threadIdx.y, b = blockIdx.z;
  float dw[kConvLastCh][4] = {}, db[kConvLastCh] = {};
  __shared__ ConvBwdRing<T, kThreads> ring;
  const int tid = threadIdx.y * kConvLastThreads + threadIdx.x;
  if (c0 < p.dim && seg < p.n_time_tiles)
    conv_bwd_last_segment<T, kSilu>(p, c0, seg * kConvSeg, b, &ring.slot[0][0][tid], kThreads, dw, db);
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
