// The bf16 tensor-core pieces the hand-written products share (dev/gemm_lab, dev/decode_lab): fragments loaded
// from shared memory by ldmatrix and one m16n8k16 product with fp32 sums.
// Plain CUDA, no LibTorch.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace mcd::ops::cuda {

// Four (x4) or two (x2) 8 × 8 bf16 matrices from shared memory: lanes 0–31 (x4) or 0–15 (x2) give one 16-byte row
// address each, eight per matrix; register i holds matrix i, lane (g = lane / 4, t = lane % 4) its row g, columns
// 2t, 2t + 1 (PTX ISA, "ldmatrix").
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* s) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(s));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const __nv_bfloat16* s) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(s));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}

// d += a·b for one m16n8k16 tile (PTX ISA "mma.m16n8k16" fragment layouts): lane (g = lane / 4, t = lane % 4) holds
// a = {(g, 2t…2t+1), (g + 8, 2t…), (g, 2t + 8…), (g + 8, 2t + 8…)}, b = {(k 2t…2t+1, n g), (k 2t + 8…, n g)} and
// d = {(g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1)}.
__device__ __forceinline__ void mma_bf16_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

}  // namespace mcd::ops::cuda
