// Token-embedding lookup whose backward is the deterministic per-id sum of the output gradient's
// rows. On CUDA (fp32 gradients) the sum is ops/cuda/embedding_backward.cu: a stable sort of the ids
// and one pass that writes every row of the table's gradient once, instead of LibTorch's
// partial-segment kernels over a zeroed table (PERF_NOTES, "Twentieth session"); elsewhere, and
// under the `composite` ops backend, LibTorch's embedding backward (same sums, same order).
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

// weight: (V, D); ids: any shape of int64 (or int32) in [0, V). Returns weight[ids], shape
// ids.shape + (D), differentiable in weight (no padding index, no frequency scaling).
at::Tensor embedding(const at::Tensor& weight, const at::Tensor& ids);

// The table's gradient: (V, D) with row v = Σ over positions i with ids[i] = v of grad[i, :],
// added in increasing i. grad: ids.shape + (D).
at::Tensor embedding_backward(const at::Tensor& grad, const at::Tensor& ids, int64_t vocab);

}  // namespace mcd::ops
