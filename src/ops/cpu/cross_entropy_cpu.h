// The LM head's row-wise cross-entropy step on the CPU (ops/chunked_cross_entropy.h,
// cross_entropy_rows): the semantics of cross_entropy_rows_composite, a few rows at a time and in
// place. The composite makes several full-size temporaries of each (rows, V) chunk (log-sum-exp's,
// x − lse, its exp: ~200 MB each for 1,024 rows of a 50k vocabulary); here each block of rows is
// read and written in cache and nothing chunk-sized is allocated ([Note: CPU cross-entropy rows]
// in docs/NOTES.md: half the peak memory of a small CPU pre-training run).
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops::cpu {

// logits on the CPU, float32 or float64, (rows, V) with unit column stride.
bool cross_entropy_rows_supported(const at::Tensor& logits);

// loss[r] = log Σ_v exp(x[r, v] − m_r) − (x[r, target[r]] − m_r), m_r = max_v x[r, v], in the
// logits' dtype; with write_grad, x[r] becomes (softmax(x[r]) − one-hot(target[r]))·grad_scale.
// A target outside [0, V) is an error (before anything is written).
at::Tensor cross_entropy_rows(const at::Tensor& logits, const at::Tensor& targets, double grad_scale, bool write_grad);

}  // namespace mcd::ops::cpu
