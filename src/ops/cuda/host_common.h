// Helpers every CUDA host op (ops/cuda/*.cpp) shares, in one place: the kernels' dtype codes,
// 3-d strides, output allocation in an input's memory layout, and the test-only NaN poisoning
// of fresh outputs (OpsOptions::poison_outputs). Includes LibTorch: host side only.
#pragma once

#include <cstdint>
#include <limits>

#include "ops/cuda/params_common.h"
#include "ops/options.h"
#include "util/error.h"
#include "util/torch_compat.h"

namespace mcd::ops::cuda {

// Whether the kernels take activations of this dtype.
inline bool kernel_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kHalf || t == at::kBFloat16; }

// The kernels' code for an activation dtype; `op` names the caller in the error.
inline DType dtype_code(at::ScalarType t, const char* op) {
  if (t == at::kFloat) return DType::kFloat32;
  if (t == at::kHalf) return DType::kFloat16;
  if (t == at::kBFloat16) return DType::kBFloat16;
  fail(cat(op, ": the CUDA kernels take float32, float16 or bfloat16 activations, got ", t));
}

// Element strides of a 3-d tensor.
inline Strides3 strides_of(const at::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// A freshly allocated output: NaN-filled when the options ask for it (tests), so an element a
// kernel forgets shows up.
inline at::Tensor fresh(at::Tensor t) {
  if (ops_options().poison_outputs) t.fill_(std::numeric_limits<float>::quiet_NaN());
  return t;
}

// Whether a pointer allows 16-byte loads.
inline bool aligned16(const void* q) { return reinterpret_cast<std::uintptr_t>(q) % 16 == 0; }

// An optional per-channel vector (D, a bias): absent, or (n) contiguous.
inline bool vector_ok(const at::Tensor& t, int64_t n) {
  return !t.defined() || (t.dim() == 1 && t.size(0) == n && t.is_contiguous());
}

// Whether a (B, ·, L) operand has unit time stride — or a single step (whose stride LibTorch leaves
// arbitrary), or is absent (an optional operand).
inline bool time_unit_stride(const at::Tensor& t) { return !t.defined() || t.size(2) <= 1 || t.stride(2) == 1; }

// A (B, E, L) buffer with the memory layout of `like`: time-contiguous when like is, otherwise
// channel-contiguous ((B, L, E) memory seen as (B, E, L)), so the model's transposed views and
// the next op's input stay copy-free. Not poisoned (wrap it in fresh()).
inline at::Tensor alloc_like_layout(const at::Tensor& like, at::ScalarType dtype) {
  const auto o = like.options().dtype(dtype);
  const int64_t b = like.size(0), e = like.size(1), l = like.size(2);
  if (like.stride(2) == 1) return at::empty({b, e, l}, o);
  return at::empty({b, l, e}, o).transpose(1, 2);
}

}  // namespace mcd::ops::cuda
