// Parameters of the token-embedding gradient on CUDA (ops/cuda/embedding_backward.cu), filled by the
// host op (ops/cuda/embedding_cuda.cpp). For ids (n) in [0, vocab) and grad (n, dim) fp32:
//   out[v, :] = Σ_{i : ids[i] = v} grad[i, :]      (fp32, added in increasing i: deterministic)
// with every row of out written (zeros where v does not occur). The host sorts the ids stably
// first; ids outside [0, vocab) are skipped (the forward's lookup refuses them).
// Semantics of LibTorch's embedding backward without padding index or frequency scaling (the CPU
// path, ops/embedding.cpp).
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kEmbeddingRowsPerBlock = 8;  // one warp per vocabulary row

struct EmbeddingBackwardParams {
  int64_t n = 0, dim = 0, vocab = 0;
  const int32_t* sorted_ids = nullptr;  // (n) the ids in increasing order, ties in input order
  const int64_t* positions = nullptr;   // (n) each sorted id's position in the input
  const float* grad = nullptr;          // (n, dim) row-major
  int32_t* seg_begin = nullptr;         // (vocab) scratch, zeroed by the host: first sorted index of v
  int32_t* seg_end = nullptr;           // (vocab) scratch, zeroed by the host: one past its last
  float* out = nullptr;                 // (vocab, dim) row-major
  bool vec4 = false;                    // dim % 4 == 0 and grad / out 16-byte aligned
  cudaStream_t stream = nullptr;
};

void embedding_backward(const EmbeddingBackwardParams& p);

}  // namespace mcd::ops::cuda
