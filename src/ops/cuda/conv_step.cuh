// One channel's conv step, shared by the conv-step kernel (decode_step.cu) and the conv step inside
// in_proj's fused kernel (decode_linear.cu), so both give the same bits:
//   out = act(bias + Σ_k w[k]·[state, x][k]), the sum taken from the newest end (as the composite),
//   then state ← the newest K − 1 entries of [state, x].
// Plain CUDA, no LibTorch.
#pragma once

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {

// One channel's step in two halves, so that a kernel can issue the loads early and finish later
// (the fused in_proj kernel loads its channels' windows before the norm and the product):
// load_conv_channel reads the state (K − 1 entries, `ts` apart, oldest first), the K weights w (unit
// stride) and the bias (null: none); finish_conv_channel appends the new input x, sums, applies the
// activation, writes the newest K − 1 entries back and returns the output as a float (the caller
// rounds it to T). Every load comes before the first store.
template <typename T>
struct ConvChannelInputs {
  T win[kConvMaxWidth];  // [state, x], oldest first (entry K − 1 is x, set by finish_conv_channel)
  float wk[kConvMaxWidth];
  float bias;
};

template <typename T, typename W>
__device__ __forceinline__ void load_conv_channel(const T* __restrict__ state, int64_t ts, const W* __restrict__ w,
                                                  const W* __restrict__ bias, int K, ConvChannelInputs<T>& in) {
#pragma unroll
  for (int k = 0; k < kConvMaxWidth; ++k) {
    if (k < K - 1) in.win[k] = state[k * ts];  // (entries past K − 1 are x's and never used)
    in.wk[k] = k < K ? to_float(w[k]) : 0.f;
  }
  in.bias = bias != nullptr ? to_float(*bias) : 0.f;
}

template <typename T>
__device__ __forceinline__ float finish_conv_channel(ConvChannelInputs<T>& in, T* __restrict__ state, int64_t ts, T x,
                                                     int K, bool silu) {
#pragma unroll
  for (int k = 0; k < kConvMaxWidth; ++k)
    if (k >= K - 1) in.win[k] = x;
  float acc = in.bias;
  float sum = 0.f;  // Σ_k w[k]·win[k] from the newest end
#pragma unroll
  for (int k = kConvMaxWidth - 1; k >= 0; --k)
    if (k < K) sum = fmaf(to_float(in.win[k]), in.wk[k], sum);
  acc += sum;
  if (silu) acc *= sigmoid_f(acc);
#pragma unroll
  for (int k = 0; k + 1 < kConvMaxWidth; ++k)
    if (k + 1 < K) state[k * ts] = in.win[k + 1];  // keep the newest K−1
  return acc;
}

// The whole step of one channel in place (both halves at once).
template <typename T, typename W>
__device__ __forceinline__ float conv_step_channel(T* __restrict__ state, int64_t ts, const W* __restrict__ w,
                                                   const W* __restrict__ bias, T x, int K, bool silu) {
  ConvChannelInputs<T> in;
  load_conv_channel<T, W>(state, ts, w, bias, K, in);
  return finish_conv_channel<T>(in, state, ts, x, K, silu);
}

}  // namespace mcd::ops::cuda
