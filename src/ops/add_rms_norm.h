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

// add_rms_norm, then a linear layer on normed in autocast's dtype (a block's norm and its mixer's
// in_proj, under CUDA autocast while training): {projected (…, out), residual}, the values and
// gradients of add_rms_norm(…, autocast dtype) followed by autocast_linear(normed, proj_weight,
// proj_bias). On CUDA normed is not kept for the backward: the backward recomputes it from the
// saved residual with the forward's own kernel (bit for bit the forward's), which saves one
// (…, D) activation in autocast's dtype per block — 2 bytes · D per token per layer. Elsewhere
// the two ops themselves. Needs CUDA autocast on (add_rms_norm_linear_applies).
struct AddNormLinearOut {
  at::Tensor projected;  // (…, out) in autocast's dtype
  at::Tensor residual;   // as AddNormOut::residual
};
bool add_rms_norm_linear_applies(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                                 const at::Tensor& proj_weight, const at::Tensor& proj_bias);
AddNormLinearOut add_rms_norm_linear(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                                     double eps, const at::Tensor& proj_weight, const at::Tensor& proj_bias);

// The reference: LibTorch ops (any device and dtype).
AddNormOut add_rms_norm_composite(const at::Tensor& residual_in, const at::Tensor& prev,
                                  const at::Tensor& weight, double eps, at::ScalarType out_dtype);
// RMSNorm alone, as the composite computes it (x upcast to fp32, or fp64, for the statistics).
at::Tensor rms_norm_composite(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace mcd::ops
