// The split-K tensor-core product of a decode step at a batch of sequences (decode_linear_params.h,
// DecodeSplitKParams; the dev/gemm_lab version "mma split-K, last block sums" with the library's
// operands). A block of 8 warps owns 64 output columns × 64 rows (rows past `rows` zero) over one
// inner slice: warp w takes rows (w % 2)·32 … and columns (w / 2)·16 … in m16n8k16 products.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "ops/cuda/conv_step.cuh"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_linear_params.h"
#include "ops/cuda/mma_tile.cuh"

namespace mcd::ops::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kPad = 8;  // elements after each staged row: 16-byte rows, a fragment's rows on other banks

template <typename T, int kSlice, bool kConv>
__global__ void __launch_bounds__(kThreads) decode_linear_split_k_kernel(DecodeSplitKParams q) {
  const DecodeLinearParams& p = q.base;
  constexpr int ld = kSlice + kPad;
  __shared__ __align__(16) T xs[kDecodeSplitKRows * ld];
  __shared__ __align__(16) T ws[kDecodeSplitKCols * ld];
  __shared__ bool last;
  const int splits = static_cast<int>(gridDim.x), s = static_cast<int>(blockIdx.x), tile = static_cast<int>(blockIdx.y);
  const int rows = static_cast<int>(p.rows);
  const int64_t col0 = int64_t(tile) * kDecodeSplitKCols, k0 = int64_t(s) * kSlice;
  const int64_t left = p.out_features - col0;
  const int cols = left < kDecodeSplitKCols ? static_cast<int>(left) : kDecodeSplitKCols;
  const T* w = static_cast<const T*>(p.weight) + col0 * p.w_row_stride + k0;
  // Before the wait (cuda_common.cuh's rules): only the weight slice's lines into L2.
  constexpr int kLines = kSlice * static_cast<int>(sizeof(T)) / 128 + 1;  // + 1: a slice may straddle one more
  for (int i = threadIdx.x; i < cols * kLines; i += kThreads) {
    const T* row = w + int64_t(i / kLines) * p.w_row_stride;
    const uintptr_t at = (reinterpret_cast<uintptr_t>(row) / 128 + i % kLines) * 128;
    if (at < reinterpret_cast<uintptr_t>(row + kSlice)) prefetch_l2(reinterpret_cast<const void*>(at));
  }
  wait_for_previous_kernel();
  allow_next_kernel();
  stage_rows<T, kSlice, kDecodeSplitKRows, kThreads, kPad>(xs, static_cast<const T*>(p.x) + k0, p.x_row_stride, rows);
  stage_rows<T, kSlice, kDecodeSplitKCols, kThreads, kPad>(ws, w, p.w_row_stride, cols);
  __syncthreads();
  float acc[2][2][4] = {};
  tile_product_64x64<T, kSlice, kPad>(xs, ws, acc);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int m0 = (warp % 2) * 32, n0 = (warp / 2) * 16;
  // This block's partial tile: only the (row, column) pairs that exist (the rest are never read).
  const int64_t N = p.out_features;
  float* part = q.partials + int64_t(s) * kDecodeSplitKRows * N + col0;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const int r = m0 + 16 * mt + g, c = n0 + 8 * nt + 2 * t;
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // rows r and r + 8
        const int rr = r + 8 * h;
        if (rr >= rows) continue;
        if (c < cols) part[rr * N + c] = acc[mt][nt][2 * h];
        if (c + 1 < cols) part[rr * N + c + 1] = acc[mt][nt][2 * h + 1];
      }
    }
  __threadfence();  // the partials visible device-wide before this block's arrival counts
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(q.counters + tile, 1u) == unsigned(splits - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();  // every other block's partials (counted before) are read after this
  for (int i = threadIdx.x; i < rows * cols; i += kThreads) {
    const int r = i / cols, c = i - r * cols;
    float sum = 0.f;
    for (int k = 0; k < splits; ++k) sum += __ldcg(q.partials + (int64_t(k) * kDecodeSplitKRows + r) * N + col0 + c);
    const int64_t col = col0 + c;
    const float b = p.bias != nullptr ? to_float(static_cast<const T*>(p.bias)[col]) : 0.f;
    T v = from_float<T>(sum + b);
    if constexpr (kConv) {
      if (col < p.conv_channels) {  // an x column of in_proj: its conv step, u replacing x (conv_step.cuh)
        T* state = static_cast<T*>(p.conv_state) + r * p.conv_state_s.batch + col * p.conv_state_s.row;
        const T* cw = static_cast<const T*>(p.conv_weight) + col * p.conv_weight_row_stride;
        const T* cb = p.conv_bias != nullptr ? static_cast<const T*>(p.conv_bias) + col : nullptr;
        v = from_float<T>(conv_step_channel<T, T>(state, p.conv_state_s.time, cw, cb, v, p.conv_width, p.conv_silu));
      }
    }
    static_cast<T*>(p.out)[r * N + col] = v;
  }
  if (threadIdx.x == 0) q.counters[tile] = 0u;  // every block of the tile has counted
}

template <typename T, int kSlice, bool kConv>
void launch(const DecodeSplitKParams& q) {
  const dim3 grid(static_cast<unsigned>(q.base.in_features / kSlice),
                  static_cast<unsigned>(decode_split_k_tiles(q.base.out_features)));
  launch_overlapped(&decode_linear_split_k_kernel<T, kSlice, kConv>, grid, kThreads, 0, q.base.stream, q.base.overlap,
                    q);
}

template <typename T, bool kConv>
void launch_slice(const DecodeSplitKParams& q) {
  switch (decode_split_k_slice(q.base.in_features)) {
    case 128: return launch<T, 128, kConv>(q);
    case 96: return launch<T, 96, kConv>(q);
    default: return launch<T, 64, kConv>(q);
  }
}

}  // namespace

void decode_linear_split_k(const DecodeSplitKParams& q) {
  const DecodeLinearParams& p = q.base;
  MCD_CHECK(p.rows > kDecodeLinearMaxRows && p.rows <= kDecodeSplitKRows && p.vec &&
                decode_split_k_slice(p.in_features) > 0 && p.out_features <= kDecodeSplitKMaxOut && q.partials &&
                q.counters,
            "decode_linear (split-K): needs ", kDecodeLinearMaxRows + 1, "..", kDecodeSplitKRows,
            " rows, 16-byte rows, an inner length divisible by 64 or 96, at most ", kDecodeSplitKMaxOut,
            " columns and a workspace; got rows ", p.rows, ", in ", p.in_features, ", out ", p.out_features);
  MCD_CHECK(!p.conv || (p.conv_channels <= p.out_features && p.conv_width >= 1 && p.conv_width <= kConvMaxWidth),
            "decode_linear (split-K): the conv step needs 1..", kConvMaxWidth, " taps on at most out_features channels");
  if (p.out_features == 0) return;
  switch (p.dtype) {
    case DType::kFloat16: return p.conv ? launch_slice<__half, true>(q) : launch_slice<__half, false>(q);
    case DType::kBFloat16:
      return p.conv ? launch_slice<__nv_bfloat16, true>(q) : launch_slice<__nv_bfloat16, false>(q);
    case DType::kFloat32: break;
  }
  fail("decode_linear (split-K): fp16 or bf16 only, got dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace mcd::ops::cuda
