// Whether autograd will want a gradient through any of an op's inputs: grad mode on and some defined
// input requiring one. The forward-only kernels (no backward of their own) run only when it does not;
// otherwise the differentiable path does.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

template <class... Tensors>
bool gradient_wanted(const Tensors&... inputs) {
  return at::GradMode::is_enabled() && ((inputs.defined() && inputs.requires_grad()) || ...);
}

}  // namespace mcd::ops
