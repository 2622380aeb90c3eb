// Causal depthwise conv1d (+ optional SiLU) as the model calls it: dispatch to the CPU
// plain-loop reference (autograd-wrapped), the LibTorch-ops composite (see ops/backend.h), or on
// CUDA the fused kernel of ops/cuda when built with it.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

// x: (B, E, L); weight: (E, K); bias: (E) or undefined. Returns (B, E, L). On CUDA with backend
// kAuto the fused kernel runs (float32/float16/bfloat16, K ≤ 4; the output keeps x's memory
// layout); otherwise the composite.
at::Tensor causal_conv1d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                         bool silu);

// The same in LibTorch ops (grouped conv1d with K−1 left padding), differentiable by autograd.
at::Tensor causal_conv1d_composite(const at::Tensor& x, const at::Tensor& weight,
                                   const at::Tensor& bias, bool silu);

// One recurrent step (no grad). conv_state: (B, E, K−1) holds the last K−1 inputs, oldest
// first, and is shifted in place; x: (B, E). Returns (B, E). On CUDA with backend kAuto one
// kernel runs (ops/cuda/decode_step_params.h) where it takes the tensors.
at::Tensor causal_conv1d_step(at::Tensor& conv_state, const at::Tensor& x,
                              const at::Tensor& weight, const at::Tensor& bias, bool silu);

// The conv state after consuming x (B, E, L): its last K−1 columns, zero-padded on the left.
at::Tensor causal_conv1d_final_state(const at::Tensor& x, int64_t kernel_size);

// Inference (no grad): causal_conv1d(x, weight, bias, silu), and x's conv state
// (causal_conv1d_final_state) written into final_state (B, E, K−1) in place — on CUDA, where the
// state has x's dtype and x unit time stride (a prefill's layout), by the conv kernel itself (no copy
// kernels); elsewhere the two ops and a copy.
at::Tensor causal_conv1d_with_final_state(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                          bool silu, at::Tensor& final_state);

}  // namespace mcd::ops
