// Residual add + RMSNorm of a Mamba block, fused on CUDA: the backbone's
//   residual = residual + mixer_out;  normed = RMSNorm(residual)
// as one op with two outputs. On CUDA (backend auto, fp32 residual and weight) one kernel reads
// the residual stream and the mixer output once and writes the new residual and the normed
// activations directly in the dtype the next in_proj consumes (bf16 under autocast); the
// backward is one kernel too. Elsewhere the LibTorch composite below, whose autograd is the
// check for the kernel. Same formula as HuggingFace's MambaRMSNorm.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

struct AddNormOut {
  at::Tensor normed;    // (…, D) in out_dtype
  at::Tensor residual;  // residual_in + prev (residual_in when prev is undefined)
};

// residual_in: (…, D); prev: same shape or undefined (the first layer); weight: (D).
// normed = weight ⊙ x / sqrt(mean(x²) + eps) with x = residual in weight's dtype, cast to out_dtype.
AddNormOut add_rms_norm(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                        double eps, at::ScalarType out_dtype);

// The reference: LibTorch ops (any device and dtype).
AddNormOut add_rms_norm_composite(const at::Tensor& residual_in, const at::Tensor& prev,
                                  const at::Tensor& weight, double eps, at::ScalarType out_dtype);
// RMSNorm alone, as the composite computes it (x upcast to fp32, or fp64, for the statistics).
at::Tensor rms_norm_composite(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace mcd::ops
