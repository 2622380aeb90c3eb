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

namespace {

bool norm_linear_wants_grad(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& norm_weight,
                            const at::Tensor& weight, const at::Tensor& bias) {
  return cuda_autocast_enabled() ||
         (at::GradMode::is_enabled() && (residual_in.requires_grad() || (prev.defined() && prev.requires_grad()) ||
                                         norm_weight.requires_grad() || weight.requires_grad() ||
                                         (bias.defined() && bias.requires_grad())));
}

}  // namespace

NormLinearOut add_rms_norm_decode_linear(const at::Tensor& residual_in, const at::Tensor& prev,
                                         const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                         const at::Tensor& bias) {
  const bool wants_grad = norm_linear_wants_grad(residual_in, prev, norm_weight, weight, bias);
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

NormConvOut add_rms_norm_decode_linear_conv_step(const at::Tensor& residual_in, const at::Tensor& prev,
                                                 const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                                 const at::Tensor& bias, at::Tensor& conv_state,
                                                 const at::Tensor& conv_weight, const at::Tensor& conv_bias, bool silu) {
  MCD_CHECK(conv_state.dim() == 3 && weight.dim() == 2 && conv_state.size(1) <= weight.size(0),
            "add_rms_norm_decode_linear_conv_step: conv_state must be (rows, E, K-1) with E at most the weight's ",
            weight.dim() == 2 ? weight.size(0) : -1, " output columns, got ", conv_state.sizes());
  const int64_t E = conv_state.size(1), rest = weight.size(0) - E;
#ifdef MCD_WITH_CUDA
  const bool wants_grad = norm_linear_wants_grad(residual_in, prev, norm_weight, weight, bias) ||
                          (at::GradMode::is_enabled() && (conv_weight.requires_grad() ||
                                                          (conv_bias.defined() && conv_bias.requires_grad())));
  const cuda::ConvStepOperands conv{&conv_state, conv_weight, conv_bias, silu};
  if (!wants_grad && backend() == Backend::kAuto &&
      cuda::add_norm_decode_linear_supported(residual_in, prev, norm_weight, weight, bias) &&
      cuda::norm_conv_step_supported(conv, weight, residual_in.size(0))) {
    auto [out, residual] = cuda::add_norm_decode_linear_cuda(residual_in, prev, norm_weight, eps, weight, bias, &conv);
    return {out.narrow(1, 0, E), out.narrow(1, E, rest), residual};
  }
#endif
  const NormLinearOut r = add_rms_norm_decode_linear(residual_in, prev, norm_weight, eps, weight, bias);
  const at::Tensor u = causal_conv1d_step(conv_state, r.out.narrow(1, 0, E), conv_weight, conv_bias, silu);
  return {u, r.out.narrow(1, E, rest), r.residual};
}

}  // namespace mcd::ops
