// A linear layer under CUDA autocast whose fp32 weight receives its gradient in fp32 straight from
// the product. Autocast's own path (torch::nn::Linear under autocast) computes the weight gradient
// in bf16 and converts it to fp32 in a separate pass, the backward of its weight cast (13 µs per
// Mamba-370M in_proj, every layer and step, docs/PERF_NOTES.md). Otherwise the same arithmetic:
// x, W and b cast to autocast's dtype, the product and the output in it, dx in x's dtype.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

// Whether autocast_linear applies: backend auto (ops/backend.h), CUDA autocast on, x on CUDA in a
// floating dtype other than float64, weight (and bias) fp32. Callers use torch::nn::Linear's
// forward otherwise.
bool autocast_linear_applies(const at::Tensor& x, const at::Tensor& weight);

// y = x·Wᵀ + b in autocast's dtype; x: (…, in), weight (out, in), bias (out) or undefined.
at::Tensor autocast_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace mcd::ops
