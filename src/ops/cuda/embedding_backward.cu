// The token-embedding gradient (see embedding_params.h). LibTorch's CUDA embedding backward sorts
// the ids and then runs partial-segment kernels over a zeroed (vocab, dim) gradient: ~290 µs per
// 130M training step (8 × 2048 ids, 50,280 × 768) on an H200 plus the memset (PERF_NOTES,
// "Twentieth session"). Here: one kernel marks where each id's run starts and ends in the sorted
// ids, and one warp per vocabulary row adds its run's gradient rows in input order and writes the
// row once, zeros included — the (vocab, dim) output is written once and never zeroed first.
#include <string>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/embedding_params.h"

namespace mcd::ops::cuda {
namespace {

__global__ void embedding_segments_kernel(EmbeddingBackwardParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n) return;
  const int32_t v = p.sorted_ids[i];
  if (v < 0 || v >= p.vocab) return;
  if (i == 0 || p.sorted_ids[i - 1] != v) p.seg_begin[v] = static_cast<int32_t>(i);
  if (i == p.n - 1 || p.sorted_ids[i + 1] != v) p.seg_end[v] = static_cast<int32_t>(i + 1);
}

template <bool kVec4>
__global__ void __launch_bounds__(32 * kEmbeddingRowsPerBlock) embedding_rows_kernel(EmbeddingBackwardParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t v = int64_t(blockIdx.x) * kEmbeddingRowsPerBlock + threadIdx.x / 32;
  if (v >= p.vocab) return;
  const int32_t lo = p.seg_begin[v], hi = p.seg_end[v];  // both 0 where v does not occur
  if constexpr (kVec4) {
    const int64_t d4 = p.dim / 4;
    const float4* g = reinterpret_cast<const float4*>(p.grad);
    float4* out = reinterpret_cast<float4*>(p.out) + v * d4;
    for (int64_t c = lane; c < d4; c += 32) {
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int32_t r = lo; r < hi; ++r) {
        const float4 x = g[p.positions[r] * d4 + c];
        acc.x += x.x;
        acc.y += x.y;
        acc.z += x.z;
        acc.w += x.w;
      }
      out[c] = acc;
    }
  } else {
    float* out = p.out + v * p.dim;
    for (int64_t c = lane; c < p.dim; c += 32) {
      float acc = 0.f;
      for (int32_t r = lo; r < hi; ++r) acc += p.grad[p.positions[r] * p.dim + c];
      out[c] = acc;
    }
  }
}

}  // namespace

void embedding_backward(const EmbeddingBackwardParams& p) {
  if (p.vocab == 0 || p.dim == 0) return;
  MCD_CHECK(p.n <= 2147483647LL && p.vocab <= 2147483647LL, "embedding_backward (CUDA): too many ids or rows");
  if (p.n > 0) {
    constexpr int kThreads = 256;
    embedding_segments_kernel<<<unsigned((p.n + kThreads - 1) / kThreads), kThreads, 0, p.stream>>>(p);
    MCD_CUDA_CHECK(cudaGetLastError());
  }
  const unsigned blocks = unsigned((p.vocab + kEmbeddingRowsPerBlock - 1) / kEmbeddingRowsPerBlock);
  if (p.vec4) embedding_rows_kernel<true><<<blocks, 32 * kEmbeddingRowsPerBlock, 0, p.stream>>>(p);
  else embedding_rows_kernel<false><<<blocks, 32 * kEmbeddingRowsPerBlock, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace mcd::ops::cuda
