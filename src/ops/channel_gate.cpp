// The SDM channel gate's mask (see channel_gate.h).
#include "ops/channel_gate.h"

#include "ops/backend.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {

at::Tensor channel_gate_composite(const at::Tensor& log_alpha, const at::Tensor& logistic, GateType type,
                                  double temperature, int64_t block) {
  at::Tensor z;
  if (type == GateType::kGumbelSigmoid) {
    z = torch::sigmoid((log_alpha + logistic) / temperature);
  } else {
    const at::Tensor s = torch::sigmoid((logistic + log_alpha) / kBeta);
    z = (s * (kZeta - kGamma) + kGamma).clamp(0.0, 1.0);
  }
  return block == 1 ? z : z.repeat_interleave(block);
}

at::Tensor channel_gate(const at::Tensor& log_alpha, const at::Tensor& logistic, GateType type, double temperature,
                        int64_t block) {
  MCD_CHECK(log_alpha.dim() == 1 && logistic.sizes() == log_alpha.sizes(),
            "channel_gate: log_alpha and the noise must both be (E/g), got ", log_alpha.sizes(), " and ",
            logistic.sizes());
  MCD_CHECK(log_alpha.scalar_type() == logistic.scalar_type() && log_alpha.device() == logistic.device(),
            "channel_gate: log_alpha (", log_alpha.scalar_type(), ", ", log_alpha.device(), ") and the noise (",
            logistic.scalar_type(), ", ", logistic.device(), ") must share dtype and device");
  MCD_CHECK(block >= 1, "channel_gate: block must be at least 1, got ", block);
  MCD_CHECK(type == GateType::kHardConcrete || temperature > 0,
            "channel_gate: the Gumbel-sigmoid temperature must be positive, got ", temperature);
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::channel_gate_supported(log_alpha, logistic))
    return cuda::channel_gate_cuda(log_alpha, logistic, type, temperature, block);
#endif
  return channel_gate_composite(log_alpha, logistic, type, temperature, block);
}

}  // namespace mcd::ops
