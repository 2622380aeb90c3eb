// In the library as the ops option `decode_narrow_linear` (x_proj above the few-row limit) in the thirty-fifth
// session, back in the lab in the thirty-sixth: on one H100 the model's batch-64 graph decode was 10–12 % slower with
// it (130M 0.765 → 0.861 ms per token, 370M 1.758 → 1.930) and its float64 test failed at the inner lengths 384 and
// 1,152 (errors 1.0–1.65× its bound); docs/results/2026-12-07c_gemm_slices/README.md.
// The narrow product at batch rows (narrow_linear_params.h): a cluster of kNarrowLinearSplit blocks per
// kNarrowLinearCols output columns, block s of a cluster the inner slice [s·S, (s + 1)·S), S = in / kNarrowLinearSplit.
// A block stages its slice of x's 64 rows (zeros past `rows`) and of its columns' weight rows (zeros past
// out_features) in shared memory with cp.async, in four commit groups (quarters of the slice's 16-element k-steps),
// and its two groups of four warps start on a quarter as soon as it lands: warp w takes rows 16·(w % 4) … + 15 and
// the quarter's k-steps w / 4, w / 4 + 2, … (m16n8k16 bf16 products, fp32 sums, ldmatrix fragments). The two groups'
// partial tiles are added in group order in shared memory; after a cluster barrier block s adds the eight blocks'
// sums for rows 8s … 8s + 7 in rank order over distributed shared memory and stores bf16. Every sum has one fixed
// order, so results do not depend on timing. As an overlapped launch (cuda_common.cuh) a block requests its weight
// rows before waiting for the previous kernel: no kernel of a decode step writes weights (the rule's exception for
// inputs known to be settled).
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <algorithm>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/mma_bf16.cuh"
#include "narrow_linear_params.h"

namespace mcd::ops::cuda {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kRows = kNarrowLinearMaxRows, kCols = kNarrowLinearCols, kSplit = kNarrowLinearSplit;
constexpr int kGroups = 2, kThreads = 128 * kGroups, kWarps = kThreads / 32, kQuarters = 4, kPad = 8;
static_assert(kRows == 64 && kCols == 16, "the warp layout: four warps of 16 rows, one ldmatrix.x4 of 16 columns");
static_assert(kRows % kSplit == 0 && (kRows / kSplit) * kCols <= kThreads, "one output per thread in the cluster sum");

// Shared memory: the staged rows (row stride slice + kPad elements, so ldmatrix's eight row addresses fall in
// distinct banks), or the groups' partials and the block's sum, whichever is larger.
size_t smem_bytes(int64_t slice) {
  const size_t staged = size_t(kRows + kCols) * size_t(slice + kPad) * sizeof(bf16);
  const size_t sums = size_t(kGroups + 1) * kRows * kCols * sizeof(float);
  return std::max(staged, sums);
}

__global__ void __launch_bounds__(kThreads) narrow_linear_kernel(NarrowLinearParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(16) unsigned char smem[];
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = int(cluster.block_rank());
  const int slice = int(p.in_features / kSplit), ld = slice + kPad, steps = slice / 16;
  const int col0 = int(blockIdx.y) * kCols, cols_valid = min(kCols, int(p.out_features) - col0);
  const int rows = int(p.rows), k0 = rank * slice;
  const bf16* x = static_cast<const bf16*>(p.x) + k0;
  const bf16* w = static_cast<const bf16*>(p.weight) + size_t(col0) * size_t(p.w_row_stride) + k0;
  bf16* xs = reinterpret_cast<bf16*>(smem);
  bf16* ws = xs + kRows * ld;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  // Quarter q: the k-steps [q·steps/4, (q + 1)·steps/4) (empty quarters when steps < 4), as 16-byte pieces; a warp
  // per row, its lanes along the row.
  auto request = [&](bool weights, int q) {
    const int p0 = 2 * (q * steps / kQuarters), pieces = 2 * ((q + 1) * steps / kQuarters) - p0;
    const int first = weights ? kRows : 0, last = weights ? kRows + kCols : kRows;
    for (int r = first + warp; r < last; r += kWarps) {
      const bool is_x = r < kRows;
      const bool valid = is_x ? r < rows : r - kRows < cols_valid;
      const bf16* g = is_x ? x + size_t(r) * size_t(p.x_row_stride) : w + size_t(r - kRows) * size_t(p.w_row_stride);
      bf16* s = is_x ? xs + r * ld : ws + (r - kRows) * ld;
      const bf16* base = is_x ? x : w;  // a row past the tensor copies nothing (zeros) but is given a valid address
      for (int i = lane; i < pieces; i += 32) {
        const int e = 8 * (p0 + i);
        cp_async16(s + e, valid ? g + e : base, valid ? 16 : 0);
      }
    }
  };
  if (p.overlap) {
    for (int q = 0; q < kQuarters; ++q) request(true, q);
    cp_async_commit();
  }
  wait_for_previous_kernel();
  allow_next_kernel();
  for (int q = 0; q < kQuarters; ++q) {
    request(false, q);
    if (!p.overlap) request(true, q);
    cp_async_commit();
  }
  float acc[2][4] = {};
  const int group = warp / 4;
  // ldmatrix row addresses: x, lanes 0–15 rows 0–15 at k + 0, lanes 16–31 the same rows at k + 8; W (rows =
  // output columns), lanes 0–7 / 8–15 columns 0–7 at k + 0 / k + 8, lanes 16–31 columns 8–15 likewise.
  const bf16* a_row = xs + (16 * (warp % 4) + lane % 16) * ld + 8 * (lane / 16);
  const bf16* b_row = ws + (8 * (lane / 16) + lane % 8) * ld + 8 * ((lane / 8) % 2);
  auto products = [&](int q) {
    for (int s = q * steps / kQuarters + group; s < (q + 1) * steps / kQuarters; s += kGroups) {
      uint32_t a[4], b[4];
      ldmatrix_x4(a, a_row + 16 * s);
      ldmatrix_x4(b, b_row + 16 * s);
      mma_bf16_16x8x16(acc[0], a, b[0], b[1]);
      mma_bf16_16x8x16(acc[1], a, b[2], b[3]);
    }
  };
  // Groups committed: the four quarters (x and weights), or (overlap) the weights then the four quarters of x; either
  // way quarter q has landed once at most 3 − q of this thread's newest groups are in flight.
  cp_async_wait_group<3>();
  __syncthreads();
  products(0);
  cp_async_wait_group<2>();
  __syncthreads();
  products(1);
  cp_async_wait_group<1>();
  __syncthreads();
  products(2);
  cp_async_wait_group<0>();
  __syncthreads();
  products(3);
  __syncthreads();  // every warp done with the staged rows before they are overwritten
  float* part = reinterpret_cast<float*>(smem);  // (kGroups, 64, 16) partials, then the block's (64, 16) sum
  float* sum = part + kGroups * kRows * kCols;
  {
    const int g = lane / 4, t = lane % 4, r0 = 16 * (warp % 4) + g;
    float* mine = part + group * kRows * kCols;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const int c = 8 * nt + 2 * t;
      *reinterpret_cast<float2*>(mine + r0 * kCols + c) = make_float2(acc[nt][0], acc[nt][1]);
      *reinterpret_cast<float2*>(mine + (r0 + 8) * kCols + c) = make_float2(acc[nt][2], acc[nt][3]);
    }
  }
  __syncthreads();
  for (int i = int(threadIdx.x); i < kRows * kCols; i += kThreads) {
    float v = part[i];
#pragma unroll
    for (int g = 1; g < kGroups; ++g) v += part[g * kRows * kCols + i];
    sum[i] = v;
  }
  cluster.sync();  // every block's sums written and visible across the cluster
  constexpr int kRowsEach = kRows / kSplit;
  if (int(threadIdx.x) < kRowsEach * kCols) {
    const int r = rank * kRowsEach + int(threadIdx.x) / kCols, c = int(threadIdx.x) % kCols;
    float v = 0.f;
#pragma unroll
    for (int b = 0; b < kSplit; ++b) v += cluster.map_shared_rank(sum, b)[r * kCols + c];  // rank order
    if (r < rows && c < cols_valid)
      static_cast<bf16*>(p.out)[size_t(r) * size_t(p.out_features) + col0 + c] = __float2bfloat16(v);
  }
  cluster.sync();  // no block leaves (freeing its shared memory) while another still reads it
#endif
}

}  // namespace

void narrow_linear(const NarrowLinearParams& p) {
  launch_in_clusters(narrow_linear_kernel, dim3(unsigned(kSplit), unsigned((p.out_features + kCols - 1) / kCols)),
                     kThreads, smem_bytes(p.in_features / kSplit), p.stream, unsigned(kSplit), p.overlap, p);
}

}  // namespace mcd::ops::cuda
