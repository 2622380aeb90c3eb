// Parameters of the row-wise cross-entropy kernel of the LM head (ops/cuda/cross_entropy.cu),
// filled by the host op (ops/cuda/cross_entropy_cuda.cpp). For each row r of a (rows, vocab)
// logits block and its target t_r:
//   loss[r] = logsumexp(logits[r, :]) − logits[r, t_r]                         (fp32)
// and, when write_grad, the logits are overwritten in place by the loss's gradient
//   logits[r, v] ← (softmax(logits[r, :])[v] − [v = t_r]) · grad_scale        (in dtype)
// Semantics of cross_entropy_rows_composite (ops/chunked_cross_entropy.h). A target outside
// [0, vocab) gives a NaN loss and no one-hot term.
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kCrossEntropyThreads = 256;      // one block per row (rows read twice from global memory)
constexpr int kCrossEntropySmemThreads = 512;  // one block per row kept in shared memory
// Largest row (whole 16-byte vectors) kept in shared memory: two such blocks per SM on sm_90
// (227 KB of shared memory per block, 228 KB per SM); a GPT-2 vocabulary in bf16 is 100,560 bytes.
constexpr long long kCrossEntropyRowSmemBytes = 110 * 1024;

// Whether a row of `vocab` elements of `elem_bytes` goes through the shared-memory kernel.
inline bool cross_entropy_rows_in_smem(bool vectorized, long long vocab, int elem_bytes) {
  return vectorized && vocab * elem_bytes >= 16 && (vocab * elem_bytes / 16) * 16 <= kCrossEntropyRowSmemBytes;
}

struct CrossEntropyRowsParams {
  DType dtype = DType::kFloat32;
  int64_t rows = 0, vocab = 0;
  int64_t row_stride = 0;      // elements between rows (≥ vocab)
  bool vectorized = false;     // 16-byte loads: the host checked base and row-stride alignment
  void* logits = nullptr;      // (rows, vocab) in dtype
  const int64_t* targets = nullptr;  // (rows)
  float* loss = nullptr;       // (rows) fp32
  bool write_grad = false;
  float grad_scale = 1.f;
  cudaStream_t stream = nullptr;
};

void cross_entropy_rows(const CrossEntropyRowsParams& p);

}  // namespace mcd::ops::cuda
