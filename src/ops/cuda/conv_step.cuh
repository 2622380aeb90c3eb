// One channel's conv step, shared by the conv-step kernel (decode_step.cu) and the conv step inside
// in_proj's fused kernel (decode_linear.cu), so both give the same bits:
//   out = act(bias + Σ_k w[k]·[state, x][k]), the sum taken from the newest end (as the composite),
//   then state ← the newest K − 1 entries of [state, x].
// Plain CUDA, no LibTorch.
#pragma once

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {

// The whole step of one channel in place: state (K − 1 entries, `ts` apart, oldest first), its K
// weights w (unit stride) and bias (null: none), the new input x. Every load comes before the first
// store. Returns the output as a float (the caller rounds it to T).
template <typename T, typename W>
__device__ __forceinline__ float conv_step_channel(T* __restrict__ state, int64_t ts, const W* __restrict__ w,
                                                   const W* __restrict__ bias, T x, int K, bool silu) {
  T win[kConvMaxWidth];  // [state, x], oldest first
  float wk[kConvMaxWidth];
#pragma unroll
  for (int k = 0; k < kConvMaxWidth; ++k) {
    win[k] = k < K - 1 ? state[k * ts] : x;  // (entries past K − 1 are x and never used)
    wk[k] = k < K ? to_float(w[k]) : 0.f;
  }
  float acc = bias != nullptr ? to_float(*bias) : 0.f;
  float sum = 0.f;  // Σ_k w[k]·win[k] from the newest end
#pragma unroll
  for (int k = kConvMaxWidth - 1; k >= 0; --k)
    if (k < K) sum = fmaf(to_float(win[k]), wk[k], sum);
  acc += sum;
  if (silu) acc *= sigmoid_f(acc);
#pragma unroll
  for (int k = 0; k + 1 < kConvMaxWidth; ++k)
    if (k + 1 < K) state[k * ts] = win[k + 1];  // keep the newest K−1
  return acc;
}

}  // namespace mcd::ops::cuda
