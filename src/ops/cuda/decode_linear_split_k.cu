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

// The fused norm's staging (DecodeSplitKParams::norm): thread i takes row i / 4 and a quarter of the
// slice, forms r = residual_in + prev there (writing r to residual_out when `write_residual`), stores
// T(norm_weight ⊙ r) into xs and sums r² in element order; the row's four quarters are then added in a
// fixed pattern (shuffles), so its partial sum of squares — returned to the quarter-0 thread — does not
// depend on timing. Rows at or past `rows` stage zeros.
template <typename T, typename TNorm, int kSlice>
__device__ __forceinline__ float stage_normed_slice(const DecodeLinearParams& p, T* __restrict__ xs, int64_t k0,
                                                   int rows, bool write_residual) {
  static_assert(kThreads == 4 * kDecodeSplitKRows, "four threads per row");
  constexpr int kQuarter = kSlice / 4;
  const int r = threadIdx.x / 4, q = threadIdx.x % 4;
  const int64_t D = p.in_features, base = int64_t(r) * D + k0 + q * kQuarter;
  const T* prev = static_cast<const T*>(p.prev);
  const TNorm* nw = static_cast<const TNorm*>(p.norm_weight) + k0 + q * kQuarter;
  T* dst = xs + r * (kSlice + kPad) + q * kQuarter;
  float ss = 0.f;
  if (r < rows) {
    float v[kQuarter], g[kQuarter];
#pragma unroll
    for (int j = 0; j < kQuarter; ++j) {  // every load first: one round trip
      v[j] = p.residual_in[base + j] + (prev != nullptr ? to_float(prev[base + j]) : 0.f);
      g[j] = to_float(nw[j]);
    }
#pragma unroll
    for (int j = 0; j < kQuarter; ++j) {
      if (write_residual) p.residual_out[base + j] = v[j];
      dst[j] = from_float<T>(g[j] * v[j]);
      ss = fmaf(v[j], v[j], ss);
    }
  } else {
#pragma unroll
    for (int j = 0; j < kQuarter; ++j) dst[j] = from_float<T>(0.f);
  }
  ss += __shfl_xor_sync(0xffffffffu, ss, 1);
  ss += __shfl_xor_sync(0xffffffffu, ss, 2);
  return ss;
}

// kNorm: DecodeSplitKParams::norm with a norm weight of type TNorm (fp32 or T).
template <typename T, int kSlice, bool kConv, bool kNorm, typename TNorm>
__global__ void __launch_bounds__(kThreads) decode_linear_split_k_kernel(DecodeSplitKParams q) {
  const DecodeLinearParams& p = q.base;
  constexpr int ld = kSlice + kPad;
  __shared__ __align__(16) T xs[kDecodeSplitKRows * ld];
  __shared__ __align__(16) T ws[kDecodeSplitKCols * ld];
  __shared__ bool last;
  __shared__ float s_rstd[kDecodeSplitKRows];  // kNorm: the rows' 1/√(Σ r²/in + eps), in the last block
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
  const int64_t N = p.out_features;
  float* sq = q.partials + int64_t(splits) * kDecodeSplitKRows * N;  // kNorm: (S, 64) partial Σ r²
  if constexpr (kNorm) {
    const float ss = stage_normed_slice<T, TNorm, kSlice>(p, xs, k0, rows, tile == 0 && p.residual_out != nullptr);
    if (threadIdx.x % 4 == 0 && threadIdx.x / 4 < rows) sq[s * kDecodeSplitKRows + threadIdx.x / 4] = ss;
  } else {
    stage_rows<T, kSlice, kDecodeSplitKRows, kThreads, kPad>(xs, static_cast<const T*>(p.x) + k0, p.x_row_stride, rows);
  }
  stage_rows<T, kSlice, kDecodeSplitKCols, kThreads, kPad>(ws, w, p.w_row_stride, cols);
  __syncthreads();
  float acc[2][2][4] = {};
  tile_product_64x64<T, kSlice, kPad>(xs, ws, acc);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int m0 = (warp % 2) * 32, n0 = (warp / 2) * 16;
  // This block's partial tile: only the (row, column) pairs that exist (the rest are never read).
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
  if constexpr (kNorm) {  // each row's Σ r² over the slices in slice order (add_norm.cu's rstd formula)
    if (threadIdx.x < rows) {
      float t = 0.f;
      for (int k = 0; k < splits; ++k) t += __ldcg(sq + k * kDecodeSplitKRows + threadIdx.x);
      s_rstd[threadIdx.x] = rsqrtf(t / float(p.in_features) + p.eps);
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rows * cols; i += kThreads) {
    const int r = i / cols, c = i - r * cols;
    float sum = 0.f;
    for (int k = 0; k < splits; ++k) sum += __ldcg(q.partials + (int64_t(k) * kDecodeSplitKRows + r) * N + col0 + c);
    const int64_t col = col0 + c;
    const float b = p.bias != nullptr ? to_float(static_cast<const T*>(p.bias)[col]) : 0.f;
    if constexpr (kNorm) sum *= s_rstd[r];
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

template <typename T, int kSlice, bool kConv, bool kNorm, typename TNorm>
void launch(const DecodeSplitKParams& q) {
  const dim3 grid(static_cast<unsigned>(q.base.in_features / kSlice),
                  static_cast<unsigned>(decode_split_k_tiles(q.base.out_features)));
  launch_overlapped(&decode_linear_split_k_kernel<T, kSlice, kConv, kNorm, TNorm>, grid, kThreads, 0, q.base.stream,
                    q.base.overlap, q);
}

template <typename T, bool kConv, bool kNorm, typename TNorm>
void launch_slice(const DecodeSplitKParams& q) {
  switch (decode_split_k_slice(q.base.in_features)) {
    case 128: return launch<T, 128, kConv, kNorm, TNorm>(q);
    case 96: return launch<T, 96, kConv, kNorm, TNorm>(q);
    default: return launch<T, 64, kConv, kNorm, TNorm>(q);
  }
}

template <typename T, bool kConv>
void launch_norm(const DecodeSplitKParams& q) {
  if (!q.norm) return launch_slice<T, kConv, false, float>(q);
  if (q.base.norm_weight_fp32) return launch_slice<T, kConv, true, float>(q);
  return launch_slice<T, kConv, true, T>(q);
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
  MCD_CHECK(!q.norm || (p.residual_in != nullptr && p.norm_weight != nullptr && p.token_ids == nullptr),
            "decode_linear (split-K): the fused norm needs residual rows and a norm weight (no embedding rows)");
  if (p.out_features == 0) return;
  switch (p.dtype) {
    case DType::kFloat16: return p.conv ? launch_norm<__half, true>(q) : launch_norm<__half, false>(q);
    case DType::kBFloat16:
      return p.conv ? launch_norm<__nv_bfloat16, true>(q) : launch_norm<__nv_bfloat16, false>(q);
    case DType::kFloat32: break;
  }
  fail("decode_linear (split-K): fp16 or bf16 only, got dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace mcd::ops::cuda
