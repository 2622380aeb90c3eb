// The linear layers of a decode step: y = x·Wᵀ (+ b) for a few rows (a batch of one token per
// sequence), without gradients. On CUDA with backend kAuto, rows ≤ 8, x, W, b of one kernel dtype and
// autocast off, one kernel with a block per 1 or 4 output columns and fp32 sums
// (ops/cuda/decode_linear_params.h says why not cuBLAS there); otherwise torch's linear, the same
// values up to the order of the fp32 sums.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

// x (rows, in), weight (out, in), bias (out) or undefined → (rows, out) in x's dtype.
at::Tensor decode_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// A block's residual add and norm fused into its in_proj (no gradients): exactly
//   {normed, residual} = add_rms_norm(residual_in, prev, norm_weight, eps, weight's dtype);
//   out = decode_linear(normed, weight, bias)
// with normed never leaving the kernel on CUDA (one launch instead of two; the norm of a batch-1
// step took 3.5 µs of its own, docs/PERF_NOTES.md). Elsewhere those two ops themselves.
struct NormLinearOut {
  at::Tensor out;       // (rows, out) in the weight's dtype
  at::Tensor residual;  // residual_in + prev (rows, D), fp32
};
NormLinearOut add_rms_norm_decode_linear(const at::Tensor& residual_in, const at::Tensor& prev,
                                         const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                         const at::Tensor& bias = {});

// A decode step's conv step folded into the product that follows it (x_proj; no gradients):
//   u = causal_conv1d_step_output(conv_state, x, conv_weight, conv_bias, silu)  (conv_state untouched)
//   out = decode_linear(u, weight)
// On CUDA at ≤ 8 rows one kernel: every block forms all of u in shared memory (block 0 writes it
// out), then its columns; one launch instead of two. The caller shifts x into conv_state afterwards
// (selective_scan_step's conv_shift, inside the step that follows): every block reads the whole old
// state, so none of them may write it. Elsewhere those two ops themselves.
struct ConvLinearOut {
  at::Tensor u;    // (rows, E) in x's dtype
  at::Tensor out;  // (rows, out)
};
ConvLinearOut conv_step_decode_linear(const at::Tensor& conv_state, const at::Tensor& x, const at::Tensor& conv_weight,
                                      const at::Tensor& conv_bias, bool silu, const at::Tensor& weight);
// Whether conv_step_decode_linear runs as one kernel for these tensors (else it is the composite,
// slower than the conv-step kernel and a product: a caller then keeps those).
bool conv_step_decode_linear_is_fused(const at::Tensor& conv_state, const at::Tensor& x, const at::Tensor& conv_weight,
                                      const at::Tensor& conv_bias, const at::Tensor& weight);

}  // namespace mcd::ops
