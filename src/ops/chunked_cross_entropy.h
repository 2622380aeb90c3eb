// Cross-entropy of a tied (or untied) LM head without materialising the (B·L, V) logits: rows
// are processed in chunks; the forward keeps only each row's log-sum-exp, the backward recomputes
// a chunk's logits to form its gradient. Peak extra memory is one (chunk, V) block instead of
// B·L·V floats (1.6 GB for 8×1024 tokens of a 50k vocabulary in fp32). LibTorch ops, any device.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

// hidden: (T, D); weight: (V, D); targets: (T) int64 in [0, V). Returns the mean over T of
// −log softmax(hidden·weightᵀ)[target], as a float32 (float64 for float64 inputs) scalar.
// Logits are computed in float32 (hidden and weight are upcast per chunk), like the full path;
// under CUDA autocast the matrix products run in autocast's dtype (bf16) in the forward and the
// backward alike, with log-sum-exp, softmax and the sums over chunks in float32.
at::Tensor chunked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                 const at::Tensor& targets, int64_t chunk_rows = 1024);

}  // namespace mcd::ops
