// The time-contiguous causal conv forward (p.time_rows: x and out are (B, E, L) with unit time
// stride, any row and batch strides; the layout of the model's channel-major prefill, model/mamba.h). The tile kernel
// (causal_conv.cuh) stages 32 channels × 128 steps through shared memory with element-wise loads
// at any strides: 42 µs for 130M's (1, 1536, 4096) bf16 prefill conv on an H200, against ~5 µs for
// its 25 MB of traffic (docs/PERF_NOTES.md, "Eleventh session"). Here each thread owns
// kConvRowsVecs 16-byte vectors of consecutive steps of one row: it reads them and the 3 steps
// before (its halo: lines its neighbour reads too, so mostly L1 hits), forms every output in
// registers and writes them back as vectors; consecutive threads take consecutive stretches of a
// row. The same sums as the tile kernel in the same order (acc = bias, then tap k = 0 … K − 1 of
// x[t − (K − 1) + k] by fmaf, zero before t = 0; SiLU as v·σ(v)), so the same bits.
#pragma once

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {

constexpr int kConvRowsThreads = 128;
constexpr int kConvRowsVecs = 2;  // 16-byte vectors per thread: 16 bf16 steps, 8 fp32

// Steps per thread for T.
template <typename T>
__host__ __device__ constexpr int conv_rows_steps() {
  return kConvRowsVecs * int(16 / sizeof(T));
}

template <typename T, bool kSilu>
__global__ void __launch_bounds__(kConvRowsThreads) causal_conv_fwd_rows_kernel(CausalConvParams p) {
  constexpr int V = 16 / sizeof(T), S = conv_rows_steps<T>();
  const int64_t segs = (p.len + S - 1) / S;
  const int64_t i = int64_t(blockIdx.x) * kConvRowsThreads + threadIdx.x;
  if (i >= p.batch * p.dim * segs) return;
  const int64_t row = i / segs, t0 = (i - row * segs) * S;
  const int64_t b = row / p.dim, e = row - b * p.dim;
  const T* x = static_cast<const T*>(p.x) + b * p.x_s.batch + e * p.x_s.row;
  T* out = static_cast<T*>(p.out) + b * p.out_s.batch + e * p.out_s.row;
  // Taps right-aligned in a kConvMaxWidth window (tap j multiplies x[t − kHalo + j]; the first
  // kConvMaxWidth − K are skipped), so every register index is a constant for any K.
  const int K = p.width, skip = kConvMaxWidth - K;
  constexpr int kHalo = kConvMaxWidth - 1;
  // The weights in fp32, or in T (weight_in_dtype: the same fp32 values, converted here).
  const T* w_t = static_cast<const T*>(p.weight_in_dtype);
  const T* b_t = static_cast<const T*>(p.bias_in_dtype);
  float w[kConvMaxWidth];
#pragma unroll
  for (int j = 0; j < kConvMaxWidth; ++j)
    w[j] = j < skip ? 0.f : w_t != nullptr ? to_float(w_t[e * K + j - skip]) : p.weight[e * K + j - skip];
  const float bias = b_t != nullptr ? to_float(b_t[e]) : p.bias != nullptr ? p.bias[e] : 0.f;
  // win[j] = x[t0 − kHalo + j] as a float (0 before t = 0 and past the end).
  float win[kHalo + S];
#pragma unroll
  for (int j = 0; j < kHalo; ++j) {
    const int64_t t = t0 - kHalo + j;
    win[j] = t >= 0 ? to_float(x[t]) : 0.f;
  }
  // 16-byte vectors where the stretch is whole and both rows' addresses allow them (rows of any
  // length: a row's alignment follows its start), else one element at a time.
  const bool vec = t0 + S <= p.len && reinterpret_cast<uintptr_t>(x + t0) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(out + t0) % 16 == 0;
  if (vec) {
#pragma unroll
    for (int v = 0; v < kConvRowsVecs; ++v) {
      const uint4 raw = *reinterpret_cast<const uint4*>(x + t0 + v * V);
      const T* el = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int j = 0; j < V; ++j) win[kHalo + v * V + j] = to_float(el[j]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < S; ++j) win[kHalo + j] = t0 + j < p.len ? to_float(x[t0 + j]) : 0.f;
  }
  // The row's last stretch holds x[L − (K − 1) … L − 1] in win (its halo reaches 3 steps back, and
  // win is 0 before t = 0: the state's left padding): they become the conv state, in T again (exact).
  if (p.final_state != nullptr && t0 + S >= p.len) {
    T* st = static_cast<T*>(p.final_state) + b * p.final_state_s.batch + e * p.final_state_s.row;
    const int64_t first = p.len - (K - 1);  // the state's entry 0
#pragma unroll
    for (int j = 0; j < kHalo + S; ++j) {
      const int64_t t = t0 - kHalo + j;
      if (t >= first && t < p.len) st[(t - first) * p.final_state_s.time] = from_float<T>(win[j]);
    }
  }
  uint4 res[kConvRowsVecs];  // the outputs in T, as the vectors they are stored as
#pragma unroll
  for (int j = 0; j < S; ++j) {
    float acc = bias;
#pragma unroll
    for (int k = 0; k < kConvMaxWidth; ++k)
      if (k >= skip) acc = fmaf(w[k], win[j + k], acc);
    if constexpr (kSilu) acc *= sigmoid_f(acc);
    reinterpret_cast<T*>(&res[j / V])[j % V] = from_float<T>(acc);
  }
  if (vec) {
#pragma unroll
    for (int v = 0; v < kConvRowsVecs; ++v) *reinterpret_cast<uint4*>(out + t0 + v * V) = res[v];
  } else {
#pragma unroll
    for (int j = 0; j < S; ++j)
      if (t0 + j < p.len) out[t0 + j] = reinterpret_cast<const T*>(&res[j / V])[j % V];
  }
}

}  // namespace mcd::ops::cuda
