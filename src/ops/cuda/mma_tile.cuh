// Tensor-core pieces of the batched decode products (decode_linear_split_k.cu, and dev/gemm_lab's
// versions): an m16n8k16 product with fp32 sums, staging 16-byte row pieces into shared memory, and
// the 64 × 64 tile of eight warps over one staged inner slice.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace mcd::ops::cuda {

// d += a·b for one m16n8k16 tile, T = __half or __nv_bfloat16 (PTX ISA, "mma.m16n8k16" fragment
// layouts): lane (g = lane / 4, t = lane % 4) holds a = {(g, 2t…2t+1), (g + 8, 2t…), (g, 2t + 8…),
// (g + 8, 2t + 8…)}, b = {(k 2t…2t+1, n g), (k 2t + 8…, n g)} and d = {(g, 2t), (g, 2t + 1), (g + 8, 2t),
// (g + 8, 2t + 1)}.
template <typename T>
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    static_assert(std::is_same_v<T, __half>, "fp16 or bf16");
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#endif
}

// Two consecutive 16-bit elements as one fragment register.
template <typename T>
__device__ __forceinline__ uint32_t pair_at(const T* s) {
  return *reinterpret_cast<const uint32_t*>(s);
}

// kRows rows × kSlice elements of g (row stride ld_g elements, 16-byte aligned rows) into s (row
// stride kSlice + kPad) by kThreads threads, zeros from row `valid` on; every load of a thread is
// issued before its first store, so the copy costs one round trip, not one per 16 bytes.
template <typename T, int kSlice, int kRows, int kThreads, int kPad>
__device__ __forceinline__ void stage_rows(T* __restrict__ s, const T* __restrict__ g, int64_t ld_g, int valid) {
  constexpr int kPerRow = kSlice * static_cast<int>(sizeof(T)) / 16, kPerThread = kRows * kPerRow / kThreads;
  static_assert(kRows * kPerRow % kThreads == 0, "whole 16-byte pieces per thread");
  constexpr int kElems = 16 / static_cast<int>(sizeof(T));
  uint4 v[kPerThread];
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * kThreads, r = i / kPerRow, c = i % kPerRow;
    v[j] = r < valid ? *reinterpret_cast<const uint4*>(g + r * ld_g + kElems * c) : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * kThreads, r = i / kPerRow, c = i % kPerRow;
    *reinterpret_cast<uint4*>(s + r * (kSlice + kPad) + kElems * c) = v[j];
  }
}

// Eight warps' 64 × 64 product over one staged slice (xs: 64 rows of x, ws: 64 weight rows, row
// stride kSlice + kPad): warp w owns rows m0 = (w % 2)·32 … + 31 and columns n0 = (w / 2)·16 … + 15,
// acc[mt][nt] being mma_16x8x16's d for rows m0 + 16·mt (+ 8), columns n0 + 8·nt (+ 2t).
template <typename T, int kSlice, int kPad>
__device__ __forceinline__ void tile_product_64x64(const T* xs, const T* ws, float (&acc)[2][2][4]) {
  constexpr int ld = kSlice + kPad;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int m0 = (warp % 2) * 32, n0 = (warp / 2) * 16;
#pragma unroll
  for (int kk = 0; kk < kSlice; kk += 16) {
    uint32_t a[2][4], b[2][2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
      const T* xa = xs + (m0 + 16 * mt + g) * ld + kk + 2 * t;
      a[mt][0] = pair_at(xa);
      a[mt][1] = pair_at(xa + 8 * ld);
      a[mt][2] = pair_at(xa + 8);
      a[mt][3] = pair_at(xa + 8 * ld + 8);
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const T* wb = ws + (n0 + 8 * nt + g) * ld + kk + 2 * t;
      b[nt][0] = pair_at(wb);
      b[nt][1] = pair_at(wb + 8);
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) mma_16x8x16<T>(acc[mt][nt], a[mt], b[nt][0], b[nt][1]);
  }
}

}  // namespace mcd::ops::cuda
