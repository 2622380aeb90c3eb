// The few-row linear layer of a decode step (decode_linear_params.h): a block of kDecodeLinearWarps
// warps computes 1 or 4 output columns for every row, its threads splitting the inner dimension
// (16-byte loads of the weight rows and of each x row, or one element at a time when unaligned),
// summed per warp and then over the warps in a fixed order. Compiled for one row and for up to
// kDecodeLinearMaxRows: a kernel holds a sum per (column, row) it may take, and at batch 1 the
// 8-row version's registers (90 for in_proj's 4 columns: 5 blocks per SM, 660 on an H200) put 130M's
// 768 in_proj blocks in 1.16 waves; the one-row version holds far fewer. Each row's sum runs the same
// instructions in both, so they give the same bits. The fused variant first forms its rows
// (residual add + RMSNorm) in shared memory, then runs the same loop; given a conv state, the thread
// that forms an x column's value (in_proj's first conv_channels columns) also runs that channel's
// conv step (conv_step.cuh), so u replaces x and no conv-step kernel follows.
#include <string>
#include <type_traits>

#include "ops/cuda/conv_step.cuh"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_linear_params.h"

namespace mcd::ops::cuda {
namespace {

// V consecutive elements of T (16 bytes) as floats; kGlobal: through the read-only cache.
template <typename T, int V, bool kGlobal>
__device__ __forceinline__ void load_vec(const T* ptr, float (&out)[V]) {
  static_assert(sizeof(T) * V == 16, "16-byte loads");
  uint4 raw;
  if constexpr (kGlobal) raw = __ldg(reinterpret_cast<const uint4*>(ptr));
  else raw = *reinterpret_cast<const uint4*>(ptr);
  const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < V; ++i) out[i] = to_float(v[i]);
}

// kCols output columns for every row, the block's threads splitting the inner dimension (thread t
// takes elements t·V …, t·V + V·blockDim …): a warp per column walked a 1,536-long row six loads
// deep alone on its scheduler (ncu: 63 % of its stalls on loads, 4.3 µs per product at 130M,
// fifth session). Sums: each thread's, then its warp's (shuffles), then the block's warps in order
// (shared memory), so a result does not depend on timing.
template <typename T, bool kVec, bool kXGlobal, int kCols, int kRows, bool kConv = false>
__device__ __forceinline__ void block_columns(const DecodeLinearParams& p, int64_t col0, const T* x, int64_t x_stride,
                                              float (&s_part)[kDecodeLinearWarps][kCols][kDecodeLinearMaxRows]) {
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
#pragma unroll 2
    for (int64_t k = int64_t(tid) * V; k < p.in_features; k += int64_t(blockDim.x) * V) {
      float wv[kCols][V];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        if (c < ncols) load_vec<T, V, true>(w0 + c * p.w_row_stride + k, wv[c]);
        else
#pragma unroll
          for (int i = 0; i < V; ++i) wv[c][i] = 0.f;
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r >= rows) break;
        float xv[V];
        load_vec<T, V, kXGlobal>(x + r * x_stride + k, xv);
#pragma unroll
        for (int c = 0; c < kCols; ++c)
#pragma unroll
          for (int i = 0; i < V; ++i) acc[c][r] = fmaf(wv[c][i], xv[i], acc[c][r]);
      }
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
    if constexpr (kConv) {  // an x column: its conv step (conv_step.cuh), u replacing x
      if (col < p.conv_channels) {
        T* state = static_cast<T*>(p.conv_state) + r * p.conv_state_s.batch + col * p.conv_state_s.row;
        const T* w = static_cast<const T*>(p.conv_weight) + col * p.conv_weight_row_stride;
        const T* cb = p.conv_bias != nullptr ? static_cast<const T*>(p.conv_bias) + col : nullptr;
        v = from_float<T>(conv_step_channel<T, T>(state, p.conv_state_s.time, w, cb, v, p.conv_width, p.conv_silu));
      }
    }
    static_cast<T*>(p.out)[r * p.out_features + col] = v;
  }
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

template <typename T, bool kVec, typename TNorm, int kCols, int kRows, bool kConv>
__global__ void __launch_bounds__(32 * kDecodeLinearWarps) add_norm_decode_linear_kernel(DecodeLinearParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* xs = reinterpret_cast<T*>(smem_raw);  // [rows][in]: the normed rows
  __shared__ float s_rstd[kDecodeLinearMaxRows];
  __shared__ float s_part[kDecodeLinearWarps][kCols][kDecodeLinearMaxRows];
  prefetch_columns<T, kVec, kCols>(p, int64_t(blockIdx.x) * kCols);
  wait_for_previous_kernel();
  allow_next_kernel();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t D = p.in_features, n = p.rows * D;
  const T* prev = static_cast<const T*>(p.prev);
  const TNorm* nw = static_cast<const TNorm*>(p.norm_weight);
  // rstd of each row (ops/cuda/add_norm.cu's formula), the whole block summing (a warp per row walked
  // its 768 elements 24 loads deep).
  const int rows = static_cast<int>(p.rows);
  float ss[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) ss[r] = 0.f;
#pragma unroll 4
  for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      const float v = p.residual_in[r * D + k] + (prev != nullptr ? to_float(prev[r * D + k]) : 0.f);
      ss[r] = fmaf(v, v, ss[r]);
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
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t r = i / D, k = i - r * D;
    const float v = p.residual_in[i] + (prev != nullptr ? to_float(prev[i]) : 0.f);
    if (blockIdx.x == 0) p.residual_out[i] = v;
    xs[i] = from_float<T>(to_float(nw[k]) * (v * s_rstd[r]));
  }
  __syncthreads();  // (also: s_part is free again)
  block_columns<T, kVec, false, kCols, kRows, kConv>(p, int64_t(blockIdx.x) * kCols, xs, D, s_part);
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

// The fused-norm kernel for p: the shape launch() takes, the norm weight fp32 or T, the conv step of
// the x columns when p.conv. Its rows take rows × in elements of T of shared memory.
template <typename T>
void launch_add_norm(const DecodeLinearParams& p) {
  const size_t smem = size_t(p.rows * p.in_features) * sizeof(T);
  MCD_BOOL_SWITCH(p.norm_weight_fp32, kNormFp32, [&] {
    using TNorm = std::conditional_t<kNormFp32, float, T>;
    MCD_BOOL_SWITCH(p.conv, kConv, [&] {
      with_kernel_shape(p, [&](auto shape) {
        using S = decltype(shape);
        launch_overlapped(add_norm_decode_linear_kernel<T, S::kVec, TNorm, S::kCols, S::kRows, kConv>,
                          dim3(column_blocks(p, S::kCols)), 32 * kDecodeLinearWarps, smem, p.stream, p.overlap, p);
      });
    });
  });
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
  switch (p.dtype) {
    case DType::kFloat32: return launch_add_norm<float>(p);
    case DType::kFloat16: return launch_add_norm<__half>(p);
    case DType::kBFloat16: return launch_add_norm<__nv_bfloat16>(p);
  }
  fail("add_norm_decode_linear: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace mcd::ops::cuda
