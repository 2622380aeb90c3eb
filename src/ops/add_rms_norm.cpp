// Residual add + RMSNorm: dispatch and the composite (see add_rms_norm.h).
#include "ops/add_rms_norm.h"

#include "ops/autocast_linear.h"
#include "ops/backend.h"
#include "ops/gradient_wanted.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {

at::Tensor rms_norm_composite(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const auto in_dtype = x.scalar_type();
  const auto acc = in_dtype == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor xf = x.to(acc);
  const at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(in_dtype);
}

AddNormOut add_rms_norm_composite(const at::Tensor& residual_in, const at::Tensor& prev,
                                  const at::Tensor& weight, double eps, at::ScalarType out_dtype) {
  const at::Tensor residual = prev.defined() ? residual_in + prev : residual_in;
  return {rms_norm_composite(residual.to(weight.scalar_type()), weight, eps).to(out_dtype), residual};
}

AddNormOut add_rms_norm(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                        double eps, at::ScalarType out_dtype) {
  MCD_CHECK(weight.dim() == 1 && residual_in.dim() >= 1 && residual_in.size(-1) == weight.size(0),
            "add_rms_norm: residual (…, D) and weight (D) do not match: ", residual_in.sizes(), " vs ",
            weight.sizes());
  MCD_CHECK(!prev.defined() || prev.sizes() == residual_in.sizes(), "add_rms_norm: prev ", prev.sizes(),
            " must match the residual ", residual_in.sizes());
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::add_norm_supported(residual_in, prev, weight, out_dtype)) {
    auto [normed, residual] = cuda::add_rms_norm_cuda(residual_in, prev, weight, eps, out_dtype);
    return {normed, residual};
  }
  // Half-precision weights (a bf16 model serving): without gradients, the fused forward kernel reading
  // the weight as it is (each element converted to fp32 exactly in the kernel) — one launch instead
  // of the composite's ~9 per norm, which dominate a batch-1 decode step (and no cast of the weight
  // per call: that was one more 3 µs launch per layer). The norm then reads the fp32 residual, as
  // mamba-ssm's fused norm does, where the composite first rounds it to the weight's dtype.
  if (backend() == Backend::kAuto && weight.is_cuda() &&
      (weight.scalar_type() == at::kBFloat16 || weight.scalar_type() == at::kHalf) &&
      !gradient_wanted(weight, residual_in, prev) &&
      cuda::add_norm_inference_supported(residual_in, prev, weight, out_dtype)) {
    auto [normed, residual] = cuda::add_rms_norm_inference_cuda(residual_in, prev, weight, eps, out_dtype);
    return {normed, residual};
  }
#endif
  return add_rms_norm_composite(residual_in, prev, weight, eps, out_dtype);
}

bool add_rms_norm_linear_applies(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                                 const at::Tensor& proj_weight, const at::Tensor& proj_bias) {
  // autocast_linear's conditions for normed (CUDA, autocast's dtype) and an fp32 (out, D) weight.
  (void)prev;
  return backend() == Backend::kAuto && residual_in.is_cuda() && cuda_autocast_enabled() && weight.dim() == 1 &&
         proj_weight.scalar_type() == at::kFloat && proj_weight.dim() == 2 && proj_weight.size(1) == weight.size(0) &&
         (!proj_bias.defined() || (proj_bias.scalar_type() == at::kFloat && proj_bias.dim() == 1 &&
                                   proj_bias.size(0) == proj_weight.size(0)));
}

AddNormLinearOut add_rms_norm_linear(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                                     double eps, const at::Tensor& proj_weight, const at::Tensor& proj_bias) {
  MCD_CHECK(add_rms_norm_linear_applies(residual_in, prev, weight, proj_weight, proj_bias),
            "add_rms_norm_linear: needs CUDA autocast on, a CUDA residual and an fp32 (out, ", weight.size(0),
            ") weight; got residual ", residual_in.sizes(), " on ", residual_in.device(), ", weight ",
            proj_weight.sizes(), " ", proj_weight.scalar_type());
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::add_norm_linear_supported(residual_in, prev, weight, proj_weight, proj_bias)) {
    MCD_CHECK(!prev.defined() || prev.sizes() == residual_in.sizes(), "add_rms_norm_linear: prev ", prev.sizes(),
              " must match the residual ", residual_in.sizes());
    auto [projected, residual] = cuda::add_rms_norm_linear_cuda(residual_in, prev, weight, eps, proj_weight, proj_bias);
    return {projected, residual};
  }
#endif
  const AddNormOut r = add_rms_norm(residual_in, prev, weight, eps, cuda_autocast_dtype());
  return {autocast_linear(r.normed, proj_weight, proj_bias), r.residual};
}

}  // namespace mcd::ops
