// Parameters of the fused residual-add + RMSNorm on CUDA (ops/cuda/add_norm.cu), filled by the
// host op (ops/cuda/add_norm_cuda.cpp). Row-wise over (rows, dim) row-major tensors:
//   residual_out = residual_in + prev            (fp32; prev may be absent: the first layer)
//   normed       = weight ⊙ residual_out · rstd,  rstd = 1 / sqrt(mean(residual_out²) + eps)
// and the backward of both outputs. Semantics of the composite in ops/add_rms_norm.cpp.
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kAddNormWarps = 4;  // rows in flight per block (one warp per row)
constexpr int kAddNormCache = 8;  // 4-element groups per lane kept in registers (rows ≤ 1024 read once)

struct AddNormParams {
  DType out_dtype = DType::kFloat32;   // normed (and its gradient)
  DType prev_dtype = DType::kFloat32;  // prev (and its gradient)
  int64_t rows = 0, dim = 0;
  float eps = 1e-5f;

  const float* residual_in = nullptr;  // (rows, dim) fp32
  const void* prev = nullptr;          // (rows, dim) in prev_dtype, or null
  const void* weight = nullptr;        // (dim) in weight_dtype: fp32, or the forward of a half-precision
  DType weight_dtype = DType::kFloat32;  // model served without gradients; the backward takes fp32 only
  float* residual_out = nullptr;       // (rows, dim) fp32
  void* normed = nullptr;              // (rows, dim) in out_dtype
  float* rstd = nullptr;               // (rows) fp32, saved for the backward

  // Backward (reads residual_out, rstd, weight).
  const void* dnormed = nullptr;         // (rows, dim) in out_dtype
  const float* dresidual_out = nullptr;  // (rows, dim) fp32, or null (no gradient flows into it)
  float* dresidual_in = nullptr;         // (rows, dim) fp32
  void* dprev = nullptr;                 // (rows, dim) in prev_dtype, or null
  float* dweight_part = nullptr;         // (blocks, dim) fp32: each block's partial, scratch
  float* dweight = nullptr;              // (dim) fp32: the partials summed in a fixed order
  int64_t blocks = 0;                    // grid size of both kernels (the host picks it)
  bool vec4 = false;  // dim % 4 == 0 and every pointer 16-byte aligned: the vectorised kernels

  cudaStream_t stream = nullptr;
};

void add_norm_fwd(const AddNormParams& p);
void add_norm_bwd(const AddNormParams& p);

}  // namespace mcd::ops::cuda
