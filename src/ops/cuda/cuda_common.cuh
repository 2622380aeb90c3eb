// Device helpers shared by the kernel templates: dtype conversion, the launch check, the
// runtime-flag → template-bool switch, and tile copies between strided global memory and
// fp32 shared memory. Plain CUDA, no LibTorch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/params_common.h"
#include "util/error.h"

namespace mcd::ops::cuda {

constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// softplus with LibTorch's threshold 20 (the CPU reference's definition).
__device__ __forceinline__ float softplus_f(float x) { return x > 20.f ? x : log1pf(__expf(x)); }
__device__ __forceinline__ float sigmoid_f(float x) { return 1.f / (1.f + __expf(-x)); }

}  // namespace mcd::ops::cuda

// Throws mcd::Error naming the failing call, file and line.
#define MCD_CUDA_CHECK(expr)                                                                \
  do {                                                                                      \
    const cudaError_t mcd_err_ = (expr);                                                    \
    MCD_CHECK(mcd_err_ == cudaSuccess, "CUDA error '", cudaGetErrorString(mcd_err_), "' in ", \
              #expr, " at ", __FILE__, ":", __LINE__);                                      \
  } while (0)

// Runtime flag → compile-time bool (the only place flags become template arguments):
//   MCD_BOOL_SWITCH(p.z != nullptr, kHasZ, [&] { launch<kHasZ>(); });
#define MCD_BOOL_SWITCH(COND, NAME, ...)     \
  [&] {                                      \
    if (COND) {                              \
      constexpr static bool NAME = true;     \
      return __VA_ARGS__();                  \
    } else {                                 \
      constexpr static bool NAME = false;    \
      return __VA_ARGS__();                  \
    }                                        \
  }()

namespace mcd::ops::cuda {

// Copies a (rows × kCols) tile of a strided global array into fp32 shared memory at
// Layout::at(r, c). Column c is time t0 + c; entries with r ≥ rows_valid or a time outside
// [0, len) read as 0. Consecutive threads walk the unit-stride dimension, so global accesses
// coalesce for time-contiguous (B, E, L) and for channel-contiguous (B, L, E) views alike.
// `g` points at (row 0, time 0); rows is usually a compile-time constant at the call site.
template <int kCols, int kThreads, class Layout, typename T>
__device__ __forceinline__ void load_tile(float* s, const T* g, int64_t s_row, int64_t s_time,
                                          int rows, int rows_valid, int64_t t0, int64_t len) {
  const bool time_fast = s_time == 1 || s_row != 1;
  for (int idx = threadIdx.x; idx < rows * kCols; idx += kThreads) {
    int r, c;
    if (time_fast) {
      r = idx / kCols;
      c = idx % kCols;
    } else {
      r = idx % rows;
      c = idx / rows;
    }
    const int64_t t = t0 + c;
    float v = 0.f;
    if (r < rows_valid && t >= 0 && t < len) v = to_float(g[r * s_row + t * s_time]);
    s[Layout::at(r, c)] = v;
  }
}

// The inverse: writes the valid part of a (rows × kCols) fp32 shared tile to global memory.
template <int kCols, int kThreads, class Layout, typename T>
__device__ __forceinline__ void store_tile(T* g, const float* s, int64_t s_row, int64_t s_time,
                                           int rows, int rows_valid, int64_t t0, int64_t len) {
  const bool time_fast = s_time == 1 || s_row != 1;
  for (int idx = threadIdx.x; idx < rows * kCols; idx += kThreads) {
    int r, c;
    if (time_fast) {
      r = idx / kCols;
      c = idx % kCols;
    } else {
      r = idx % rows;
      c = idx / rows;
    }
    const int64_t t = t0 + c;
    if (r < rows_valid && t >= 0 && t < len) g[r * s_row + t * s_time] = from_float<T>(s[Layout::at(r, c)]);
  }
}

}  // namespace mcd::ops::cuda
