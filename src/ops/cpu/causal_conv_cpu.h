// Plain-loop CPU reference of the causal depthwise conv1d (+ optional SiLU), forward and
// backward: out[b,e,t] = act(bias[e] + Σ_k w[e,k]·x[b,e,t−(K−1)+k]), zero left padding.
// The autograd wrapper and the LibTorch-ops composite live in ops/causal_conv1d.cpp.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops::cpu {

// x: (B, E, L); weight: (E, K); bias: (E) or undefined. Returns (B, E, L).
at::Tensor causal_conv1d_forward(const at::Tensor& x, const at::Tensor& weight,
                                 const at::Tensor& bias, bool silu);

struct ConvGrads {
  at::Tensor dx, dweight, dbias;  // dbias undefined when bias was
};
ConvGrads causal_conv1d_backward(const at::Tensor& dout, const at::Tensor& x,
                                 const at::Tensor& weight, const at::Tensor& bias, bool silu);

}  // namespace mcd::ops::cpu
