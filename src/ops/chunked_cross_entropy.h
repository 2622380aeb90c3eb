// Cross-entropy of a tied (or untied) LM head without materialising the (B·L, V) logits: rows
// are processed in chunks, and when a gradient is wanted the forward computes it right away —
// each chunk's logits are turned in place into (softmax − one-hot)/T and multiplied back into
// the hidden-state and weight gradients — so the logits are formed once and never recomputed.
// The backward only scales the two saved gradients by the incoming gradient. Peak extra memory
// is one (chunk, V) block plus the (V, D) weight gradient, instead of B·L·V floats (3.3 GB for
// 8×2048 tokens of a 50k vocabulary in fp32). LibTorch products on any device; the row-wise
// softmax step is a CUDA kernel on CUDA, ops/cpu/cross_entropy_cpu.h on the CPU (fp32/fp64), and
// cross_entropy_rows_composite otherwise or under the `composite` ops backend.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

// hidden: (T, D); weight: (V, D); targets: (T) int64 in [0, V). Returns the mean over T of
// −log softmax(hidden·weightᵀ)[target], as a float32 (float64 for float64 inputs) scalar.
// Logits are computed in float32 (hidden and weight are upcast per chunk), like the full path;
// under CUDA autocast the matrix products run in autocast's dtype (bf16), with log-sum-exp and
// the gradient sums over chunks in float32. chunk_rows = 0 picks 4096 rows on CUDA, 1024 else.
at::Tensor chunked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                 const at::Tensor& targets, int64_t chunk_rows = 0);

// One chunk's row-wise step. logits: (rows, V) with unit column stride; targets: (rows) int64.
// Returns loss[r] = logsumexp(logits[r]) − logits[r, target[r]] in float32 (float64 for float64
// logits); with write_grad, logits is overwritten by (softmax(logits[r]) − one-hot)·grad_scale
// in its own dtype. The CUDA kernel (fp32/fp16/bf16) and the composite share these semantics.
at::Tensor cross_entropy_rows(const at::Tensor& logits, const at::Tensor& targets, double grad_scale,
                              bool write_grad);
at::Tensor cross_entropy_rows_composite(const at::Tensor& logits, const at::Tensor& targets, double grad_scale,
                                        bool write_grad);

}  // namespace mcd::ops
