// Optional tensors through torch::autograd::Function::apply. See [Note: optional tensors
// through autograd]: LibTorch 1.13 cannot take an undefined tensor argument there, so optional
// inputs cross `apply` as zero-element placeholders and become undefined again inside the node.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

inline at::Tensor placeholder_if_undefined(const at::Tensor& t) { return t.defined() ? t : torch::empty({0}); }
inline at::Tensor undefined_if_placeholder(const at::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t : at::Tensor();
}

}  // namespace mcd::ops
