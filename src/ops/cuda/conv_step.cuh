// One channel's conv step value, shared by the conv-step kernel (decode_step.cu) and the conv step
// folded into x_proj (decode_linear.cu), so both give the same bits:
//   out = act(bias + Σ_k w[k]·[state, x][k]), the sum taken from the newest end (as the composite).
// Plain CUDA, no LibTorch.
#pragma once

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"

namespace mcd::ops::cuda {

// win: the K window entries [state (K−1, oldest first), x] as loaded; wk: the channel's K weights;
// bias: the channel's bias (0 without one).
template <typename T>
__device__ __forceinline__ float conv_step_value(const T (&win)[kConvMaxWidth], const float (&wk)[kConvMaxWidth],
                                                 float bias, int K, bool silu) {
  float acc = bias;
  float sum = 0.f;
#pragma unroll
  for (int k = kConvMaxWidth - 1; k >= 0; --k)
    if (k < K) sum = fmaf(to_float(win[k]), wk[k], sum);
  acc += sum;
  if (silu) acc *= sigmoid_f(acc);
  return acc;
}

}  // namespace mcd::ops::cuda
