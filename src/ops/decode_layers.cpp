#include "ops/decode_layers.h"

#include "ops/backend.h"
#include "ops/causal_conv1d.h"
#include "ops/decode_linear.h"
#include "ops/gradient_wanted.h"
#include "ops/options.h"
#include "ops/selective_scan.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {

bool decode_layers_runs_kernel(const at::Tensor& token_ids, const at::Tensor& embedding,
                               const std::vector<DecodeLayer>& layers) {
#ifdef MCD_WITH_CUDA
  if (!ops_options().decode_layers || backend() != Backend::kAuto || cuda_autocast_enabled()) return false;
  return cuda::decode_layers_supported(token_ids, embedding, layers);
#else
  (void)token_ids, (void)embedding, (void)layers;
  return false;
#endif
}

DecodeLayersOut decode_layers(const at::Tensor& token_ids, const at::Tensor& embedding, std::vector<DecodeLayer>& layers,
                              double eps) {
  MCD_CHECK(token_ids.dim() == 1 && embedding.dim() == 2, "decode_layers: token_ids must be (B) and embedding (V, D), got ",
            token_ids.sizes(), " and ", embedding.sizes());
  MCD_CHECK(!layers.empty(), "decode_layers: no layers");
#ifdef MCD_WITH_CUDA
  if (decode_layers_runs_kernel(token_ids, embedding, layers)) {
    auto r = cuda::decode_layers_cuda(token_ids, embedding, layers, eps);
    return {r.first, r.second};
  }
#endif
  DecodeLayersOut t;
  for (size_t l = 0; l < layers.size(); ++l) {
    DecodeLayer& L = layers[l];
    MCD_CHECK(!gradient_wanted(L.in_proj, L.x_proj, L.out_proj), "decode_layers: a decode step takes no gradients");
    const int64_t E = L.conv_state.size(1);
    const NormLinearOut r = l == 0 ? add_rms_norm_decode_linear(NormInput::embedded(token_ids, embedding), {},
                                                                L.norm_weight, eps, L.in_proj)
                                   : add_rms_norm_decode_linear(t.residual, t.pending, L.norm_weight, eps, L.in_proj);
    t.residual = r.residual;
    const at::Tensor u = causal_conv1d_step(L.conv_state, r.out.narrow(1, 0, E), L.conv_weight, L.conv_bias, true);
    const at::Tensor y = selective_scan_step_projected(L.ssm_state, u, L.x_proj, L.A_log, L.D, r.out.narrow(1, E, E),
                                                       L.dt_proj_bias, /*delta_softplus=*/true, /*a_is_log=*/true,
                                                       L.dt_proj_weight);
    t.pending = decode_linear(y, L.out_proj);
  }
  return t;
}

}  // namespace mcd::ops
