// Default behaviour of projection adapters (see projection_adapter.h).
#include "model/projection_adapter.h"

namespace mcd {

const char* projection_name(Projection which) { return which == Projection::kIn ? "in_proj" : "out_proj"; }

at::Tensor ProjectionAdapterImpl::forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return torch::nn::functional::linear(x, effective_weight(weight), effective_bias(bias));
}

}  // namespace mcd
