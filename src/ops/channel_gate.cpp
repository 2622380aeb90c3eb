// The SDM channel gate's mask (see channel_gate.h).
#include "ops/channel_gate.h"

#include "ops/backend.h"
#include "util/counter_noise.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {

at::Tensor channel_gate_noise(std::optional<uint64_t> noise_key, int64_t gates) {
  at::Tensor n = torch::zeros({gates}, torch::kFloat);
  if (noise_key) {
    float* p = n.data_ptr<float>();
    for (int64_t j = 0; j < gates; ++j) p[j] = noise_logistic(*noise_key, j);
  }
  return n;
}

at::Tensor channel_gate_composite(const at::Tensor& log_alpha, std::optional<uint64_t> noise_key, GateType type,
                                  double temperature, int64_t block) {
  const at::Tensor logistic = channel_gate_noise(noise_key, log_alpha.size(0)).to(log_alpha.device(),
                                                                                 log_alpha.scalar_type());
  at::Tensor z;
  if (type == GateType::kGumbelSigmoid) {
    z = torch::sigmoid((log_alpha + logistic) / temperature);
  } else {
    const at::Tensor s = torch::sigmoid((logistic + log_alpha) / kBeta);
    z = (s * (kZeta - kGamma) + kGamma).clamp(0.0, 1.0);
  }
  return block == 1 ? z : z.repeat_interleave(block);
}

at::Tensor channel_gate(const at::Tensor& log_alpha, std::optional<uint64_t> noise_key, GateType type,
                        double temperature, int64_t block) {
  MCD_CHECK(log_alpha.dim() == 1 && at::isFloatingType(log_alpha.scalar_type()),
            "channel_gate: log_alpha must be a floating-point (E/g) tensor, got ", log_alpha.sizes(), " ",
            log_alpha.scalar_type());
  MCD_CHECK(block >= 1, "channel_gate: block must be at least 1, got ", block);
  MCD_CHECK(type == GateType::kHardConcrete || temperature > 0,
            "channel_gate: the Gumbel-sigmoid temperature must be positive, got ", temperature);
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::channel_gate_supported(log_alpha))
    return cuda::channel_gate_cuda(log_alpha, noise_key, type, temperature, block);
#endif
  return channel_gate_composite(log_alpha, noise_key, type, temperature, block);
}

}  // namespace mcd::ops
