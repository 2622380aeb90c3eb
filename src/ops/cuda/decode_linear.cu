// The few-row linear layer of a decode step (decode_linear_params.h): a block of kDecodeLinearWarps
// warps computes 1 or 4 output columns for every row, its threads splitting the inner dimension
// (16-byte loads of the weight rows and of each x row, or one element at a time when unaligned),
// summed per warp and then over the warps in a fixed order. Compiled for one row and for up to
// kDecodeLinearMaxRows: a kernel holds a sum per (column, row) it may take, and at batch 1 the
// 8-row version's registers (90 for in_proj's 4 columns: 5 blocks per SM, 660 on an H200) put 130M's
// 768 in_proj blocks in 1.16 waves; the one-row version holds far fewer. Each row's sum runs the same
// instructions in both, so they give the same bits. The fused variant first forms its rows
// (residual add + RMSNorm; the first layer's from its token embeddings) in shared memory, then runs
// the same loop; given a conv state, the thread that forms an x column's value (in_proj's first
// conv_channels columns) also runs that channel's conv step (conv_step.cuh), so u replaces x and no
// conv-step kernel follows; as the LM head of a greedy step it writes fp32 logits and each row's
// argmax (one wave of blocks walking the column groups, their maxima meeting in a workspace).
#include <string>
#include <type_traits>

#include "ops/cuda/conv_step.cuh"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_linear_params.h"

namespace mcd::ops::cuda {
namespace {

// 16 bytes of T as V floats.
template <typename T, int V>
__device__ __forceinline__ void unpack_vec(const uint4& raw, float (&out)[V]) {
  static_assert(sizeof(T) * V == 16, "16-byte loads");
  const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < V; ++i) out[i] = to_float(v[i]);
}

// V consecutive elements of T (16 bytes) as floats; kGlobal: through the read-only cache.
template <typename T, int V, bool kGlobal>
__device__ __forceinline__ void load_vec(const T* ptr, float (&out)[V]) {
  uint4 raw;
  if constexpr (kGlobal) raw = __ldg(reinterpret_cast<const uint4*>(ptr));
  else raw = *reinterpret_cast<const uint4*>(ptr);
  unpack_vec<T, V>(raw, out);
}

// A thread's first 16-byte slice of each of its block's kCols weight rows (inner elements
// threadIdx.x·V …), loaded before the fused kernel's norm so that their L2 round trip overlaps it
// instead of following it; zeros past the columns or the inner dimension.
template <int kCols>
struct FirstWeightSlice {
  uint4 raw[kCols];
};

template <typename T, int kCols>
__device__ __forceinline__ void load_first_weight_slice(const DecodeLinearParams& p, int64_t col0,
                                                        FirstWeightSlice<kCols>& slice) {
  constexpr int V = 16 / sizeof(T);
  const int64_t left = p.out_features - col0, k = int64_t(threadIdx.x) * V;
  const T* w0 = static_cast<const T*>(p.weight) + col0 * p.w_row_stride;
#pragma unroll
  for (int c = 0; c < kCols; ++c)
    slice.raw[c] = c < left && k < p.in_features ? __ldg(reinterpret_cast<const uint4*>(w0 + c * p.w_row_stride + k))
                                                 : make_uint4(0u, 0u, 0u, 0u);
}

// What a block does with each result: stores it; runs its conv step first (an x column of in_proj);
// or widens it to fp32 and takes it into its row's maximum (the LM head with greedy selection).
enum Epilogue { kStore, kConvStep, kArgmax };

// The key under which a row's columns compete for its argmax: the value's bits made to order as
// unsigned integers (NaN above every number, −0 as +0: torch's argmax counts NaN as the maximum and
// the zeros as equal) above the column's complement, so that the largest key is the maximum's first column.
__device__ __forceinline__ unsigned long long argmax_key(float f, int64_t col) {
  unsigned bits = f == 0.f ? 0u : __float_as_uint(f);
  bits = isnan(f) ? 0xFFFFFFFFu : (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<unsigned long long>(bits) << 32) | (0xFFFFFFFFu - static_cast<unsigned>(col));
}

// kCols output columns for every row, the block's threads splitting the inner dimension (thread t
// takes elements t·V …, t·V + V·blockDim …): a warp per column walked a 1,536-long row six loads
// deep alone on its scheduler (ncu: 63 % of its stalls on loads, 4.3 µs per product at 130M,
// fifth session). Sums: each thread's, then its warp's (shuffles), then the block's warps in order
// (shared memory), so a result does not depend on timing.
// kArgmax: s_best holds the block's key per row (zeros on entry).
// first (kVec only, else null): the thread's first slice of weights, already loaded
// (load_first_weight_slice); conv with conv_loaded (kConvStep): the conv inputs of the thread's own
// (column, row) item, threadIdx.x = column offset · rows + row, already loaded (load_conv_item; a
// flag, not a null pointer, so that the struct stays in registers). Neither changes an instruction
// of the sums, only where their loads were issued.
template <typename T, bool kVec, bool kXGlobal, int kCols, int kRows, int kEpilogue = kStore>
__device__ __forceinline__ void block_columns(const DecodeLinearParams& p, int64_t col0, const T* x, int64_t x_stride,
                                              float (&s_part)[kDecodeLinearWarps][kCols][kDecodeLinearMaxRows],
                                              unsigned long long* s_best = nullptr,
                                              const FirstWeightSlice<kCols>* first = nullptr,
                                              ConvChannelInputs<T>* conv = nullptr, bool conv_loaded = false) {
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int rows = static_cast<int>(p.rows);
  const int64_t left = p.out_features - col0;
  const int ncols = left < kCols ? static_cast<int>(left) : kCols;
  const T* w0 = static_cast<const T*>(p.weight) + col0 * p.w_row_stride;
  float acc[kCols][kRows];
#pragma unroll
  for (int c = 0; c < kCols; ++c)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[c][r] = 0.f;
  if constexpr (kVec) {
    constexpr int V = 16 / sizeof(T);
    // One slice's multiply-add into a sum, in element order — every path below sums through it, so all give the
    // same bits. live false (a column past ncols whose weights were read from column 0) adds zeros.
    const auto multiply_add = [](float& sum, const float (&wv)[V], const float (&xv)[V], bool live) {
#pragma unroll
      for (int i = 0; i < V; ++i) sum = fmaf(live ? wv[i] : 0.f, xv[i], sum);
    };
    const auto accumulate = [&](const float (&wv)[kCols][V], int64_t k) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r >= rows) break;
        float xv[V];
        load_vec<T, V, kXGlobal>(x + r * x_stride + k, xv);
#pragma unroll
        for (int c = 0; c < kCols; ++c) multiply_add(acc[c][r], wv[c], xv, true);
      }
    };
    int64_t k = int64_t(tid) * V;
    if (first != nullptr) {  // the first slice from registers (its zeros past ncols, as below)
      if (k < p.in_features) {
        float wv[kCols][V];
#pragma unroll
        for (int c = 0; c < kCols; ++c) unpack_vec<T, V>(first->raw[c], wv[c]);
        accumulate(wv, k);
      }
      k += int64_t(blockDim.x) * V;
    }
    // One row: a thread's next two slices of the inner dimension (weights and x) loaded before either is summed.
    // The loop below sums each slice before loading the next (its PTX keeps each slice's loads behind its bounds
    // branches), so a thread of out_proj or x_proj (K = 1,536 / 2,048: two slices of 1,024) waited two round
    // trips in a row. Measured (thirtieth session, H100, overlapped launches off): the plain one-row product
    // 2.68 → 2.39 µs (130M) and 3.05 → 2.65 µs (370M), a batch-1 token 0.313 → 0.297 / 0.708 → 0.688 ms
    // (docs/results/2026-12-06f_b1_decode_loads_first). The same products in the same order, so the same bits;
    // the loop below takes an odd last slice.
    if constexpr (kRows == 1) {
      const int64_t step = int64_t(blockDim.x) * V;
      for (; k + step < p.in_features; k += 2 * step) {
        uint4 wr[2][kCols], xr[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
          for (int c = 0; c < kCols; ++c)  // (a column past ncols reads column 0 and sums zeros, as below)
            wr[h][c] =
                __ldg(reinterpret_cast<const uint4*>(w0 + (c < ncols ? c : 0) * p.w_row_stride + k + h * step));
          if constexpr (kXGlobal) xr[h] = __ldg(reinterpret_cast<const uint4*>(x + k + h * step));
          else xr[h] = *reinterpret_cast<const uint4*>(x + k + h * step);
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float xv[V];
          unpack_vec<T, V>(xr[h], xv);
#pragma unroll
          for (int c = 0; c < kCols; ++c) {
            float wv[V];
            unpack_vec<T, V>(wr[h][c], wv);
            multiply_add(acc[c][0], wv, xv, c < ncols);
          }
        }
      }
    }
#pragma unroll 2
    for (; k < p.in_features; k += int64_t(blockDim.x) * V) {
      float wv[kCols][V];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        if (c < ncols) load_vec<T, V, true>(w0 + c * p.w_row_stride + k, wv[c]);
        else
#pragma unroll
          for (int i = 0; i < V; ++i) wv[c][i] = 0.f;
      }
      accumulate(wv, k);
    }
  } else {
    for (int64_t k = tid; k < p.in_features; k += blockDim.x) {
      float wv[kCols];
#pragma unroll
      for (int c = 0; c < kCols; ++c) wv[c] = c < ncols ? to_float(w0[c * p.w_row_stride + k]) : 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r >= rows) break;
        const float xv = to_float(x[r * x_stride + k]);
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[c][r] = fmaf(wv[c], xv, acc[c][r]);
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kCols; ++c)
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      const float v = warp_sum(acc[c][r]);
      if (lane == 0) s_part[warp][c][r] = v;
    }
  __syncthreads();
  for (int i = tid; i < ncols * rows; i += blockDim.x) {
    const int c = i / rows, r = i - c * rows;
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeLinearWarps; ++w) sum += s_part[w][c][r];
    const int64_t col = col0 + c;
    const float b = p.bias != nullptr ? to_float(static_cast<const T*>(p.bias)[col]) : 0.f;
    T v = from_float<T>(sum + b);
    if constexpr (kEpilogue == kArgmax) {
      const float f = to_float(v);
      static_cast<float*>(p.out)[r * p.out_features + col] = f;
      if (col < p.argmax_columns) atomicMax(s_best + r, argmax_key(f, col));
      continue;
    }
    if constexpr (kEpilogue == kConvStep) {  // an x column: its conv step (conv_step.cuh), u replacing x
      if (col < p.conv_channels) {
        T* state = static_cast<T*>(p.conv_state) + r * p.conv_state_s.batch + col * p.conv_state_s.row;
        if (conv_loaded && i == tid) {  // this thread's own item, its inputs loaded already
          v = from_float<T>(finish_conv_channel<T>(*conv, state, p.conv_state_s.time, v, p.conv_width, p.conv_silu));
        } else {
          const T* w = static_cast<const T*>(p.conv_weight) + col * p.conv_weight_row_stride;
          const T* cb = p.conv_bias != nullptr ? static_cast<const T*>(p.conv_bias) + col : nullptr;
          v = from_float<T>(conv_step_channel<T, T>(state, p.conv_state_s.time, w, cb, v, p.conv_width, p.conv_silu));
        }
      }
    }
    static_cast<T*>(p.out)[r * p.out_features + col] = v;
  }
}

// A block's best key for a row into the row's workspace key. A key only grows, so a block whose best is
// not above the one it reads (however stale) cannot raise it: most blocks skip the atomic on the row's one
// address.
__device__ __forceinline__ void merge_argmax_key(unsigned long long* key, unsigned long long best) {
  if (best > *static_cast<volatile unsigned long long*>(key)) atomicMax(key, best);
}

// After every merge_argmax_key of the block: the block is counted in the workspace (after a fence:
// threadFenceReduction's pattern), and the last of the grid's `blocks` to finish writes each row's column
// and zeros the workspace (rows keys, then the count) for the next call. kRowsFitBlock: rows ≤ blockDim.x
// (the fused head's ≤ 8), so each thread takes at most one row — no loop, which kept that kernel's registers.
template <bool kRowsFitBlock>
__device__ __forceinline__ void finish_argmax_rows(unsigned long long* workspace, int64_t rows, int64_t* argmax_out,
                                                   unsigned long long blocks) {
  __shared__ bool s_last;
  unsigned long long* finished = workspace + rows;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomicAdd(finished, 1ull) == blocks - 1;
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int64_t row = threadIdx.x; row < rows; row += blockDim.x) {
    const unsigned long long key = atomicExch(workspace + row, 0ull);
    argmax_out[row] = int64_t(0xFFFFFFFFu - static_cast<unsigned>(key & 0xFFFFFFFFull));
    if constexpr (kRowsFitBlock) break;
  }
  if (threadIdx.x == 0) *finished = 0;  // every block has counted
}

// After the kArgmax epilogue: the block's row maxima into the workspace, then finish_argmax_rows.
__device__ __forceinline__ void finish_argmax(const DecodeLinearParams& p, const unsigned long long* s_best) {
  __syncthreads();  // s_best complete
  if (threadIdx.x < p.rows) merge_argmax_key(p.argmax_workspace + threadIdx.x, s_best[threadIdx.x]);
  finish_argmax_rows<true>(p.argmax_workspace, p.rows, p.argmax_out, gridDim.x);
}

// widen_argmax (decode_linear_params.h): block (x, r) takes kWidenArgmaxThreads·kWidenArgmaxVectors·V columns of
// row r, V = one 16-byte load of T: thread t its vectors t, t + kWidenArgmaxThreads, … of that stretch (a warp's
// loads contiguous), all issued before the first is widened (element loads where the row is unaligned for
// vectors or at its partial end). It writes them widened and takes them into the row's key; the warps' keys meet
// in shared memory, the block's in the workspace (merge_argmax_key), and the last block to finish writes every
// row's column (finish_argmax_rows).
template <typename T>
__global__ void __launch_bounds__(kWidenArgmaxThreads) widen_argmax_kernel(WidenArgmaxParams p) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  constexpr int kVecs = kWidenArgmaxVectors;
  constexpr int kWarps = kWidenArgmaxThreads / 32;
  __shared__ unsigned long long s_warp[kWarps];
  const int64_t r = blockIdx.y;
  const T* __restrict__ src = static_cast<const T*>(p.values) + r * p.values_row_stride;
  float* __restrict__ dst = p.logits + r * p.columns;
  // A vector starts V elements after the last, 16 bytes of T and a multiple of 16 of fp32: the row's alignment
  // is every vector's.
  const bool aligned = reinterpret_cast<uintptr_t>(src) % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  const int64_t first = int64_t(blockIdx.x) * kWidenArgmaxThreads * kVecs + threadIdx.x;  // this thread's vector 0
  uint4 raw[kVecs];
#pragma unroll
  for (int q = 0; q < kVecs; ++q) {
    const int64_t c0 = (first + int64_t(q) * kWidenArgmaxThreads) * V;
    if (aligned && c0 + V <= p.columns) raw[q] = __ldg(reinterpret_cast<const uint4*>(src + c0));
  }
  unsigned long long best = 0;  // below every column's key (argmax_key's high word is never 0)
#pragma unroll
  for (int q = 0; q < kVecs; ++q) {
    const int64_t c0 = (first + int64_t(q) * kWidenArgmaxThreads) * V;
    if (c0 >= p.columns) break;  // (the later vectors lie further out)
    float f[V];
    const int n = p.columns - c0 < V ? static_cast<int>(p.columns - c0) : V;
    if (aligned && n == V) {
      unpack_vec<T, V>(raw[q], f);
#pragma unroll
      for (int j = 0; j < V / 4; ++j)
        reinterpret_cast<float4*>(dst + c0)[j] = make_float4(f[4 * j], f[4 * j + 1], f[4 * j + 2], f[4 * j + 3]);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) {
        f[i] = i < n ? to_float(src[c0 + i]) : 0.f;
        if (i < n) dst[c0 + i] = f[i];
      }
    }
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const unsigned long long key = argmax_key(f[i], c0 + i);
      if (i < n && c0 + i < p.argmax_columns && key > best) best = key;
    }
  }
#pragma unroll
  for (int o = 16; o >= 1; o /= 2) {
    const unsigned long long other = __shfl_xor_sync(kFullMask, best, o);
    best = other > best ? other : best;
  }
  if (threadIdx.x % 32 == 0) s_warp[threadIdx.x / 32] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
#pragma unroll
    for (int w = 1; w < kWarps; ++w) best = s_warp[w] > best ? s_warp[w] : best;
    merge_argmax_key(p.argmax_workspace + r, best);
  }
  finish_argmax_rows<false>(p.argmax_workspace, p.rows, p.argmax_out, static_cast<unsigned long long>(gridDim.x) * gridDim.y);
}

// The first layer's residual row r: its token's embedding row (an id outside the table traps, as an index
// kernel's assertion would).
template <typename T>
__device__ __forceinline__ const T* embedding_row(const DecodeLinearParams& p, int64_t r) {
  const int64_t id = __ldg(p.token_ids + r * p.token_ids_stride);
  if (id < 0 || id >= p.embedding_rows) __trap();
  return static_cast<const T*>(p.embedding) + id * p.embedding_row_stride;
}
// The residual stream's element (r, k) entering the fused norm: residual_in's, or the first layer's token
// embedding widened.
template <typename T>
__device__ __forceinline__ float residual_at(const DecodeLinearParams& p, int64_t r, int64_t k) {
  if (p.token_ids == nullptr) return p.residual_in[r * p.in_features + k];
  return to_float(embedding_row<T>(p, r)[k]);
}

// The conv inputs (conv_step.cuh) of this thread's epilogue item in block_columns — item threadIdx.x,
// column col0 + threadIdx.x / rows, row threadIdx.x % rows — when it is an x column; false otherwise.
template <typename T, int kCols>
__device__ __forceinline__ bool load_conv_item(const DecodeLinearParams& p, int64_t col0, ConvChannelInputs<T>& in) {
  const int rows = static_cast<int>(p.rows), tid = threadIdx.x;
  const int64_t left = p.out_features - col0;
  const int ncols = left < kCols ? static_cast<int>(left) : kCols;
  if (tid >= ncols * rows) return false;
  const int c = tid / rows, r = tid - c * rows;
  const int64_t col = col0 + c;
  if (col >= p.conv_channels) return false;
  const T* state = static_cast<const T*>(p.conv_state) + r * p.conv_state_s.batch + col * p.conv_state_s.row;
  const T* w = static_cast<const T*>(p.conv_weight) + col * p.conv_weight_row_stride;
  const T* cb = p.conv_bias != nullptr ? static_cast<const T*>(p.conv_bias) + col : nullptr;
  load_conv_channel<T, T>(state, p.conv_state_s.time, w, cb, p.conv_width, in);
  return true;
}

// Before an overlapped kernel waits for the previous one (cuda_common.cuh): the lines of this
// thread's weight elements into L2 (the weights are not what the previous kernel writes; the loads
// that follow the wait then find them in L2 instead of DRAM).
template <typename T, bool kVec, int kCols>
__device__ __forceinline__ void prefetch_columns(const DecodeLinearParams& p, int64_t col0) {
  const int64_t left = p.out_features - col0;
  const int ncols = left < kCols ? static_cast<int>(left) : kCols;
  const T* w0 = static_cast<const T*>(p.weight) + col0 * p.w_row_stride;
  // One prefetch per 128-byte line: from the thread whose element starts the line, or starts the row.
  constexpr int kStep = kVec ? 16 / sizeof(T) : 1;
  for (int64_t k = int64_t(threadIdx.x) * kStep; k < p.in_features; k += int64_t(blockDim.x) * kStep)
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const T* at = w0 + c * p.w_row_stride + k;
      if (c < ncols && (k == 0 || reinterpret_cast<uintptr_t>(at) % 128 < sizeof(T) * kStep)) prefetch_l2(at);
    }
}

template <typename T, bool kVec, int kCols, int kRows>
__global__ void __launch_bounds__(32 * kDecodeLinearWarps) decode_linear_kernel(DecodeLinearParams p) {
  __shared__ float s_part[kDecodeLinearWarps][kCols][kDecodeLinearMaxRows];
  prefetch_columns<T, kVec, kCols>(p, int64_t(blockIdx.x) * kCols);
  wait_for_previous_kernel();
  allow_next_kernel();
  block_columns<T, kVec, true, kCols, kRows>(p, int64_t(blockIdx.x) * kCols, static_cast<const T*>(p.x), p.x_row_stride,
                                      s_part);
}

// The one-row fused kernel's norm-phase loads, in flight at once (below), take registers (71 where a loop over
// them took 64, sm_90, bf16 with the conv step): 8 blocks per SM keep 370M's 1,024 in_proj blocks in one wave on
// a 132-SM card (7 would not), so ptxas is held to 64.
constexpr int kOneRowFusedBlocksPerSm = 8;

template <typename T, bool kVec, typename TNorm, int kCols, int kRows, int kEpilogue>
__global__ void __launch_bounds__(32 * kDecodeLinearWarps, kRows == 1 ? kOneRowFusedBlocksPerSm : 0)
    add_norm_decode_linear_kernel(DecodeLinearParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* xs = reinterpret_cast<T*>(smem_raw);  // [rows][in]: the normed rows
  __shared__ float s_rstd[kDecodeLinearMaxRows];
  __shared__ float s_part[kDecodeLinearWarps][kCols][kDecodeLinearMaxRows];
  __shared__ unsigned long long s_best[kDecodeLinearMaxRows];  // kArgmax
  if (kEpilogue == kArgmax && threadIdx.x < kDecodeLinearMaxRows) s_best[threadIdx.x] = 0;  // (synced below)
  prefetch_columns<T, kVec, kCols>(p, int64_t(blockIdx.x) * kCols);
  wait_for_previous_kernel();
  allow_next_kernel();
  // The loads that do not depend on the norm, issued first: the thread's first weight slice and its
  // conv item's window, weights and bias, whose round trips (the window's usually from DRAM: the
  // state was written a whole token ago) then overlap the norm's instead of following the product.
  // (The LM head's argmax variant walks its column groups and loads them as it goes.)
  constexpr bool kEarly = kVec && kEpilogue != kArgmax;
  FirstWeightSlice<kCols> first;
  if constexpr (kEarly) load_first_weight_slice<T, kCols>(p, int64_t(blockIdx.x) * kCols, first);
  ConvChannelInputs<T> conv_in;
  bool conv_loaded = false;
  if constexpr (kEpilogue == kConvStep) conv_loaded = load_conv_item<T, kCols>(p, int64_t(blockIdx.x) * kCols, conv_in);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t D = p.in_features;
  const T* prev = static_cast<const T*>(p.prev);
  const TNorm* nw = static_cast<const TNorm*>(p.norm_weight);
  // rstd of each row (ops/cuda/add_norm.cu's formula), the whole block summing (a warp per row walked
  // its 768 elements 24 loads deep). Where a row fits in kKeep elements per thread (D ≤ 1,024),
  // the norm weight's elements — and, in the one-row kernel, the row's — stay in registers between
  // the two passes: the weight was read after the two barriers below, a DRAM round trip (it was last
  // read a whole token ago) on every layer's critical path, and the row a second time. Each sum and
  // each element's arithmetic is the same, so the same bits.
  constexpr int kKeep = 8;
  const bool keep = D <= int64_t(kKeep) * blockDim.x;
  const int rows = static_cast<int>(p.rows);
  const auto row_value = [&](int r, int64_t k) {
    return residual_at<T>(p, r, k) + (prev != nullptr ? to_float(prev[r * D + k]) : 0.f);
  };
  float ss[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) ss[r] = 0.f;
  float w_keep[kKeep], v_keep[kKeep];
  if (keep && kRows == 1) {
    // Every load of the row first — its residual (or embedding) elements, prev's and the norm weight's — then
    // the sums. A loop over kKeep steps consumed each step's loads (behind the bounds and token-id branches,
    // which the compiler does not hoist loads across) before issuing the next: 6 / 8 L2 round trips in a row
    // before the first barrier (PTX; ncu: 7.9 of 15.6 cycles per issued instruction waiting on global loads).
    // Measured (thirtieth session, H100, overlapped launches off): this kernel 9.3 → 6.9 µs per 130M layer,
    // 11.5 → 8.3 µs per 370M layer; a batch-1 token 0.352 → 0.312 ms / 0.850 → 0.707 ms
    // (docs/results/2026-12-06f_b1_decode_loads_first). The same sums in the same order, so the same bits.
    // Elements past the row read element 0 and are dropped.
    const auto at = [&](int j) {
      const int64_t k = threadIdx.x + int64_t(j) * blockDim.x;
      return k < D ? k : int64_t(0);
    };
    float res[kKeep], pv[kKeep];
    if (p.token_ids == nullptr) {
#pragma unroll
      for (int j = 0; j < kKeep; ++j) res[j] = p.residual_in[at(j)];
    } else {
      const T* emb = embedding_row<T>(p, 0);  // (its id read and checked once, not per element)
#pragma unroll
      for (int j = 0; j < kKeep; ++j) res[j] = to_float(emb[at(j)]);
    }
#pragma unroll
    for (int j = 0; j < kKeep; ++j) {
      pv[j] = prev != nullptr ? to_float(prev[at(j)]) : 0.f;
      w_keep[j] = to_float(nw[at(j)]);
    }
#pragma unroll
    for (int j = 0; j < kKeep; ++j) {
      if (threadIdx.x + int64_t(j) * blockDim.x < D) {
        const float v = res[j] + pv[j];  // row_value's sum
        v_keep[j] = v;
        ss[0] = fmaf(v, v, ss[0]);
      }
    }
  } else if (keep) {
#pragma unroll
    for (int j = 0; j < kKeep; ++j) {
      const int64_t k = threadIdx.x + int64_t(j) * blockDim.x;
      if (k < D) {
        w_keep[j] = to_float(nw[k]);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          if (r >= rows) break;
          const float v = row_value(r, k);
          ss[r] = fmaf(v, v, ss[r]);
        }
      }
    }
  } else {
#pragma unroll 4
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r >= rows) break;
        const float v = row_value(r, k);
        ss[r] = fmaf(v, v, ss[r]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r >= rows) break;
    const float t = warp_sum(ss[r]);
    if (lane == 0) s_part[warp][0][r] = t;
  }
  __syncthreads();
  if (threadIdx.x < rows) {
    float t = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeLinearWarps; ++w) t += s_part[w][0][threadIdx.x];
    s_rstd[threadIdx.x] = rsqrtf(t / float(D) + p.eps);
  }
  __syncthreads();
  // The normed rows into shared memory (and block 0 writes the residual stream's new rows).
  const auto put = [&](int r, int64_t k, float v, float w) {
    if (blockIdx.x == 0 && p.residual_out != nullptr) p.residual_out[r * D + k] = v;
    xs[r * D + k] = from_float<T>(w * (v * s_rstd[r]));
  };
  if (keep) {
#pragma unroll
    for (int j = 0; j < kKeep; ++j) {
      const int64_t k = threadIdx.x + int64_t(j) * blockDim.x;
      if (k < D) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          if (r >= rows) break;
          if constexpr (kRows == 1) put(r, k, v_keep[j], w_keep[j]);
          else put(r, k, row_value(r, k), w_keep[j]);
        }
      }
    }
  } else {
#pragma unroll 2
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
      const float w = to_float(nw[k]);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r >= rows) break;
        put(r, k, row_value(r, k), w);
      }
    }
  }
  __syncthreads();  // (also: s_part is free again)
  if constexpr (kEpilogue == kArgmax) {
    // One wave of blocks walking the column groups (launch_add_norm_with): the finish below costs a
    // block a few dependent global round trips, which a block per group paid 12,570 times over the
    // LM head (130M batch-1 decode 0.394 → 0.445 ms per token, ninth session).
    const int64_t groups = (p.out_features + kCols - 1) / kCols;
    for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
      // The next group's weight lines on their way to L2 while this group's are summed.
      if (g + gridDim.x < groups) prefetch_columns<T, kVec, kCols>(p, (g + gridDim.x) * kCols);
      block_columns<T, kVec, false, kCols, kRows, kEpilogue>(p, g * kCols, xs, D, s_part, s_best);
      __syncthreads();  // s_part is the next group's
    }
    finish_argmax(p, s_best);
  } else {
    block_columns<T, kVec, false, kCols, kRows, kEpilogue>(p, int64_t(blockIdx.x) * kCols, xs, D, s_part, s_best,
                                                           kEarly ? &first : nullptr, &conv_in, conv_loaded);
  }
}

// Columns per block: 4 where there are enough columns to give every SM several blocks anyway
// (in_proj, the LM head), else 1 (x_proj's 80 columns, out_proj's 768: more blocks in flight).
constexpr int64_t kWideOutput = 2048;

unsigned column_blocks(const DecodeLinearParams& p, int cols) { return unsigned((p.out_features + cols - 1) / cols); }

// f(KernelShape<…>{}) with p's kernel shape as compile-time constants: 4 columns per block from
// kWideOutput columns on, else 1; the one-row kernel at one row, else the kDecodeLinearMaxRows one;
// 16-byte loads when p.vec.
template <int kCols_, int kRows_, bool kVec_>
struct KernelShape {
  static constexpr int kCols = kCols_, kRows = kRows_;
  static constexpr bool kVec = kVec_;
};
template <class F>
void with_kernel_shape(const DecodeLinearParams& p, F&& f) {
  MCD_BOOL_SWITCH(p.out_features >= kWideOutput, kWide, [&] {
    MCD_BOOL_SWITCH(p.rows == 1, kOneRow, [&] {
      MCD_BOOL_SWITCH(p.vec, kVec, [&] { f(KernelShape<kWide ? 4 : 1, kOneRow ? 1 : kDecodeLinearMaxRows, kVec>{}); });
    });
  });
}

template <typename T>
void launch(const DecodeLinearParams& p) {
  with_kernel_shape(p, [&](auto shape) {
    using S = decltype(shape);
    launch_overlapped(decode_linear_kernel<T, S::kVec, S::kCols, S::kRows>, dim3(column_blocks(p, S::kCols)),
                      32 * kDecodeLinearWarps, 0, p.stream, p.overlap, p);
  });
}

// The fused-norm kernel for p: the shape launch() takes, the norm weight fp32 or T, the epilogue
// p.conv or p.argmax asks for. Its rows take rows × in elements of T of shared memory.
template <typename T, int kEpilogue>
void launch_add_norm_with(const DecodeLinearParams& p) {
  const size_t smem = size_t(p.rows * p.in_features) * sizeof(T);
  MCD_BOOL_SWITCH(p.norm_weight_fp32, kNormFp32, [&] {
    using TNorm = std::conditional_t<kNormFp32, float, T>;
    with_kernel_shape(p, [&](auto shape) {
      using S = decltype(shape);
      constexpr auto kernel = add_norm_decode_linear_kernel<T, S::kVec, TNorm, S::kCols, S::kRows, kEpilogue>;
      int64_t blocks = column_blocks(p, S::kCols);
      if (kEpilogue == kArgmax) {  // at most one wave (the kernel walks the groups)
        const int64_t resident = resident_blocks<kernel>(32 * kDecodeLinearWarps, smem);
        if (resident > 0 && resident < blocks) blocks = resident;
      }
      launch_overlapped(kernel, dim3(unsigned(blocks)), 32 * kDecodeLinearWarps, smem, p.stream, p.overlap, p);
    });
  });
}
template <typename T>
void launch_add_norm(const DecodeLinearParams& p) {
  if (p.argmax) return launch_add_norm_with<T, kArgmax>(p);
  if (p.conv) return launch_add_norm_with<T, kConvStep>(p);
  launch_add_norm_with<T, kStore>(p);
}

}  // namespace

void decode_linear(const DecodeLinearParams& p) {
  MCD_CHECK(p.rows >= 1 && p.rows <= kDecodeLinearMaxRows, "decode_linear: rows must be 1..", kDecodeLinearMaxRows);
  if (p.out_features == 0) return;
  switch (p.dtype) {
    case DType::kFloat32: return launch<float>(p);
    case DType::kFloat16: return launch<__half>(p);
    case DType::kBFloat16: return launch<__nv_bfloat16>(p);
  }
  fail("decode_linear: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

void add_norm_decode_linear(const DecodeLinearParams& p) {
  MCD_CHECK(p.rows >= 1 && p.rows <= kDecodeLinearMaxRows, "add_norm_decode_linear: rows must be 1..",
            kDecodeLinearMaxRows);
  MCD_CHECK(p.out_features >= 1, "add_norm_decode_linear: no output columns (block 0 writes the residual)");
  MCD_CHECK(!p.conv || (p.conv_channels <= p.out_features && p.conv_width >= 1 &&
                                        p.conv_width <= kConvMaxWidth),
            "add_norm_decode_linear: the conv step needs 1..", kConvMaxWidth, " taps on at most out_features channels");
  MCD_CHECK(!p.argmax || (!p.conv && p.argmax_columns >= 1 && p.argmax_columns <= p.out_features &&
                          p.out_features <= 0xFFFFFFFFll && p.argmax_out != nullptr && p.argmax_workspace != nullptr),
            "add_norm_decode_linear: the argmax needs 1..out_features (< 2^32) columns, its output and workspace, "
            "and no conv step");
  MCD_CHECK(p.token_ids == nullptr || (p.embedding != nullptr && p.embedding_rows >= 1),
            "add_norm_decode_linear: token ids need their embedding table");
  switch (p.dtype) {
    case DType::kFloat32: return launch_add_norm<float>(p);
    case DType::kFloat16: return launch_add_norm<__half>(p);
    case DType::kBFloat16: return launch_add_norm<__nv_bfloat16>(p);
  }
  fail("add_norm_decode_linear: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

void widen_argmax(const WidenArgmaxParams& p) {
  MCD_CHECK(p.rows >= 1 && p.rows <= 65535 && p.columns >= 1 && p.columns <= 0xFFFFFFFFll && p.argmax_columns >= 1 &&
                p.argmax_columns <= p.columns && p.values != nullptr && p.logits != nullptr &&
                p.argmax_out != nullptr && p.argmax_workspace != nullptr,
            "widen_argmax: needs 1..65535 rows, 1..columns (< 2^32) argmax columns, values, logits, tokens and "
            "workspace");
  auto launch = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    constexpr int64_t kSpan = int64_t(kWidenArgmaxThreads) * kWidenArgmaxVectors * (16 / int64_t(sizeof(T)));
    const dim3 blocks(unsigned((p.columns + kSpan - 1) / kSpan), unsigned(p.rows));
    widen_argmax_kernel<T><<<blocks, kWidenArgmaxThreads, 0, p.stream>>>(p);
    MCD_CUDA_CHECK(cudaGetLastError());
  };
  switch (p.dtype) {
    case DType::kFloat32: return launch(static_cast<float*>(nullptr));
    case DType::kFloat16: return launch(static_cast<__half*>(nullptr));
    case DType::kBFloat16: return launch(static_cast<__nv_bfloat16*>(nullptr));
  }
  fail("widen_argmax: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace mcd::ops::cuda
