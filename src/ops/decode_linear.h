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
// Whether decode_linear(x, weight, bias) runs its CUDA kernel (which writes only its output and lets
// the next overlapped launch start only after everything before it has finished:
// selective_scan_step_projected's promise to its step rests on this).
bool decode_linear_runs_kernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// The rows entering a fused norm below: the residual stream (rows, D) fp32, or — the first layer of
// a decode step — the token embeddings embedding.index_select(0, token_ids) widened to fp32, which the
// CUDA kernel gathers itself (the gather and the cast are two kernels fewer per step). Elsewhere the
// gathered rows (dense()).
struct NormInput {
  NormInput(const at::Tensor& residual) : residual(residual) {}  // NOLINT(runtime/explicit): the usual input
  static NormInput embedded(const at::Tensor& token_ids, const at::Tensor& embedding);
  at::Tensor dense() const;  // (rows, D) fp32 (the embedding's fp64 stays fp64)
  int64_t rows() const { return token_ids.defined() ? token_ids.size(0) : residual.size(0); }
  at::Tensor residual, token_ids, embedding;
};

// A block's residual add and norm fused into its in_proj (no gradients): exactly
//   {normed, residual} = add_rms_norm(residual_in, prev, norm_weight, eps, weight's dtype);
//   out = decode_linear(normed, weight, bias)
// with normed never leaving the kernel on CUDA (one launch instead of two; the norm of a batch-1
// step took 3.5 µs of its own, docs/PERF_NOTES.md). Elsewhere those two ops themselves.
struct NormLinearOut {
  at::Tensor out;       // (rows, out) in the weight's dtype
  at::Tensor residual;  // residual_in + prev (rows, D), fp32
};
NormLinearOut add_rms_norm_decode_linear(const NormInput& residual_in, const at::Tensor& prev,
                                         const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                         const at::Tensor& bias = {});

// The same followed by the conv step of x = out[:, :E] (E = conv_state.size(1); in_proj's xz):
//   r = add_rms_norm_decode_linear(...);
//   u = causal_conv1d_step(conv_state, r.out[:, :E], conv_weight, conv_bias, silu)  (x shifts into conv_state)
//   → {u, r.out[:, E:], r.residual}
// On CUDA, where the fused norm runs and the conv operands share the weight's dtype, in the same
// kernel: the thread that forms x[r, e] runs channel e's conv step and writes u in x's place (one
// launch less per layer; the conv-step kernel's arithmetic, so the same bits). Elsewhere those ops.
struct NormConvOut {
  at::Tensor u;         // (rows, E): the conv step's output
  at::Tensor rest;      // (rows, out − E): the product's other columns (in_proj's z)
  at::Tensor residual;  // residual_in + prev (rows, D), fp32
};
NormConvOut add_rms_norm_decode_linear_conv_step(const NormInput& residual_in, const at::Tensor& prev,
                                                 const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                                 const at::Tensor& bias, at::Tensor& conv_state,
                                                 const at::Tensor& conv_weight, const at::Tensor& conv_bias, bool silu);

// A decode step's LM head with greedy selection (no gradients), writing into fixed buffers (what a
// CUDA graph replays):
//   n = add_rms_norm(residual_in, prev, norm_weight, eps, weight's dtype);
//   logits.copy_(decode_linear(n.normed, weight))                     logits (rows, out) fp32 or fp64
//   tokens.copy_(logits.narrow(1, 0, argmax_columns).argmax(-1))      tokens (rows) int64
// On CUDA where the fused norm runs (rows ≤ 8) and logits are fp32, one kernel: each logit is the
// weight dtype's value widened (the same floats as the composition), each block's row maxima meet
// in `workspace` ((rows + 1) int64, zeros, left zeroed for the next call) and the last block writes
// the tokens: the first column of a row's maximum, NaN counting as the largest, as torch's argmax.
// It replaces four kernels after the final norm (the cast, the copy into the buffer, the argmax, the
// token's copy). Where that kernel does not run but the product's values and the buffers suit widen_argmax's
// kernel (more than 8 rows: cuBLAS's product), the two lines after the product are that one kernel.
// Elsewhere the composition above (workspace untouched).
void add_rms_norm_decode_linear_argmax(const at::Tensor& residual_in, const at::Tensor& prev,
                                       const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                       int64_t argmax_columns, at::Tensor& logits, at::Tensor& tokens,
                                       at::Tensor& workspace);

// The greedy selection after an LM head's product, writing into fixed buffers (what a CUDA graph replays):
//   logits.copy_(values);  tokens.copy_(logits.narrow(1, 0, argmax_columns).argmax(-1))
// values (rows, V), logits (rows, V) fp32 or fp64, tokens (rows) int64. On CUDA, for values in fp32/fp16/bf16
// with unit column stride and an fp32 logits buffer, one kernel (its blocks' row maxima meet in `workspace`,
// (rows + 1) int64 zeros, left zeroed; the first column of a row's maximum, NaN the largest, as torch's
// argmax): the cast, the argmax and the tokens' copy were three kernels. Elsewhere the two lines (workspace
// untouched).
void widen_argmax(const at::Tensor& values, int64_t argmax_columns, at::Tensor& logits, at::Tensor& tokens,
                  at::Tensor& workspace);

}  // namespace mcd::ops
