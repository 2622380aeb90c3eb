#include "ops/mixer_step.h"

#include "ops/backend.h"
#include "ops/causal_conv1d.h"
#include "ops/selective_scan.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {
namespace F = torch::nn::functional;

at::Tensor mixer_step_composite(at::Tensor& conv_state, at::Tensor& ssm_state, const at::Tensor& xz,
                                const MixerStepWeights& w) {
  torch::NoGradGuard no_grad;
  const int64_t E = w.conv_weight.size(0), R = w.dt_proj.size(1), N = w.A_log.size(1);
  at::Tensor u = causal_conv1d_step(conv_state, xz.narrow(1, 0, E), w.conv_weight, w.conv_bias, true);
  if (w.mask.defined()) u = u * w.mask.to(u.scalar_type()).unsqueeze(0);
  const at::Tensor x_dbl = F::linear(u, w.x_proj.to(u.scalar_type()));                       // (B, R + 2N)
  const at::Tensor delta = F::linear(x_dbl.narrow(1, 0, R), w.dt_proj.to(u.scalar_type()));  // (B, E)
  return selective_scan_step(ssm_state, u, delta, w.A_log, x_dbl.narrow(1, R, N), x_dbl.narrow(1, R + N, N), w.D,
                             xz.narrow(1, E, E), w.dt_bias, /*delta_softplus=*/true, /*a_is_log=*/true);
}

at::Tensor mixer_step(at::Tensor& conv_state, at::Tensor& ssm_state, const at::Tensor& xz, const MixerStepWeights& w) {
  MCD_CHECK(w.conv_weight.defined() && w.conv_weight.dim() == 2 && w.x_proj.defined() && w.x_proj.dim() == 2 &&
                w.dt_proj.defined() && w.dt_proj.dim() == 2 && w.A_log.defined() && w.A_log.dim() == 2,
            "mixer_step: conv_weight (E, K), x_proj (R + 2N, E), dt_proj (E, R) and A_log (E, N) are required");
  const int64_t E = w.conv_weight.size(0), R = w.dt_proj.size(1), N = w.A_log.size(1);
  MCD_CHECK(xz.dim() == 2 && xz.size(1) == 2 * E, "mixer_step: xz must be (B, 2E = ", 2 * E, "), got ", xz.sizes());
  MCD_CHECK(w.x_proj.size(0) == R + 2 * N && w.x_proj.size(1) == E && w.dt_proj.size(0) == E && w.A_log.size(0) == E,
            "mixer_step: x_proj ", w.x_proj.sizes(), ", dt_proj ", w.dt_proj.sizes(), " and A_log ", w.A_log.sizes(),
            " do not fit E = ", E, ", R = ", R, ", N = ", N);
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto &&
      cuda::mixer_step_supported(conv_state, ssm_state, xz, w.conv_weight, w.conv_bias, w.mask, w.x_proj, w.dt_proj,
                                 w.dt_bias, w.A_log, w.D))
    return cuda::mixer_step_cuda(conv_state, ssm_state, xz, w.conv_weight, w.conv_bias, w.mask, w.x_proj, w.dt_proj,
                                 w.dt_bias, w.A_log, w.D);
#endif
  return mixer_step_composite(conv_state, ssm_state, xz, w);
}

}  // namespace mcd::ops
