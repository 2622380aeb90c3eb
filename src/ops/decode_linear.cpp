#include "ops/decode_linear.h"

#include "ops/add_rms_norm.h"
#include "ops/backend.h"
#include "ops/causal_conv1d.h"
#include "util/error.h"
#include "util/torch_compat.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {

at::Tensor decode_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  MCD_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1),
            "decode_linear: x must be (rows, in) and weight (out, in), got ", x.sizes(), " and ", weight.sizes());
  // The kernel has no backward: with gradients wanted, torch's linear (autograd) runs; likewise under
  // CUDA autocast, whose own casts and product then apply as they would to a torch linear.
  const bool wants_grad = cuda_autocast_enabled() ||
                          (at::GradMode::is_enabled() &&
                           (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad())));
#ifdef MCD_WITH_CUDA
  if (!wants_grad && backend() == Backend::kAuto && cuda::decode_linear_supported(x, weight, bias))
    return cuda::decode_linear_cuda(x, weight, bias);
#else
  (void)wants_grad;
#endif
  return at::linear(x, weight, bias);
}

NormLinearOut add_rms_norm_decode_linear(const at::Tensor& residual_in, const at::Tensor& prev,
                                         const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                         const at::Tensor& bias) {
  const bool wants_grad =
      cuda_autocast_enabled() ||
      (at::GradMode::is_enabled() && (residual_in.requires_grad() || (prev.defined() && prev.requires_grad()) ||
                                      norm_weight.requires_grad() || weight.requires_grad() ||
                                      (bias.defined() && bias.requires_grad())));
#ifdef MCD_WITH_CUDA
  if (!wants_grad && backend() == Backend::kAuto &&
      cuda::add_norm_decode_linear_supported(residual_in, prev, norm_weight, weight, bias)) {
    auto [out, residual] = cuda::add_norm_decode_linear_cuda(residual_in, prev, norm_weight, eps, weight, bias);
    return {out, residual};
  }
#else
  (void)wants_grad;
#endif
  const AddNormOut n = add_rms_norm(residual_in, prev, norm_weight, eps, weight.scalar_type());
  return {decode_linear(n.normed, weight, bias), n.residual};
}

bool conv_step_decode_linear_is_fused(const at::Tensor& conv_state, const at::Tensor& x, const at::Tensor& conv_weight,
                                      const at::Tensor& conv_bias, const at::Tensor& weight) {
#ifdef MCD_WITH_CUDA
  return backend() == Backend::kAuto && cuda::conv_decode_linear_supported(conv_state, x, conv_weight, conv_bias, weight);
#else
  (void)conv_state, (void)x, (void)conv_weight, (void)conv_bias, (void)weight;
  return false;
#endif
}

ConvLinearOut conv_step_decode_linear(const at::Tensor& conv_state, const at::Tensor& x, const at::Tensor& conv_weight,
                                      const at::Tensor& conv_bias, bool silu, const at::Tensor& weight) {
  torch::NoGradGuard no_grad;
  MCD_CHECK(conv_state.dim() == 3 && x.dim() == 2 && conv_weight.dim() == 2 && conv_state.size(0) == x.size(0) &&
                conv_state.size(1) == x.size(1) && conv_state.size(2) == conv_weight.size(1) - 1,
            "conv_step_decode_linear: conv_state must be (B, E, K-1) for x (B, E) and conv_weight (E, K), got ",
            conv_state.sizes(), ", ", x.sizes(), " and ", conv_weight.sizes());
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::conv_decode_linear_supported(conv_state, x, conv_weight, conv_bias, weight)) {
    auto [u, out] = cuda::conv_decode_linear_cuda(conv_state, x, conv_weight, conv_bias, silu, weight);
    return {u, out};
  }
#endif
  const at::Tensor u = causal_conv1d_step_output(conv_state, x, conv_weight, conv_bias, silu);
  return {u, decode_linear(u, weight)};
}

}  // namespace mcd::ops
