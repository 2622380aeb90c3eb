// SDM channel gates (see channel_gate.h).
#include "model/channel_gate.h"

#include <cmath>

#include "util/error.h"

namespace mcd {

GateType parse_gate_type(const std::string& name) {
  if (name == "hard_concrete") return GateType::kHardConcrete;
  if (name == "gumbel") return GateType::kGumbelSigmoid;
  fail(cat("unknown gate type '", name, "' (valid: hard_concrete, gumbel)"));
}

const char* gate_type_name(GateType type) {
  return type == GateType::kHardConcrete ? "hard_concrete" : "gumbel";
}

ChannelGateImpl::ChannelGateImpl(int64_t channels_, int64_t block_, GateType type_, double init)
    : channels(channels_), block(block_), type(type_) {
  MCD_CHECK(block >= 1 && channels % block == 0, "gate block size ", block, " must divide the layer width ",
            channels);
  log_alpha = register_parameter("log_alpha", torch::full({channels / block}, init));
}

at::Tensor ChannelGateImpl::expand(const at::Tensor& per_gate) const {
  return block == 1 ? per_gate : per_gate.repeat_interleave(block);
}

at::Tensor ChannelGateImpl::gate_from_logistic(const at::Tensor& logistic) const {
  const at::Tensor a = log_alpha.to(at::kFloat);
  if (type == GateType::kGumbelSigmoid) return torch::sigmoid((a + logistic) / temperature_);
  const at::Tensor s = torch::sigmoid((logistic + a) / kBeta);
  return (s * (kZeta - kGamma) + kGamma).clamp(0.0, 1.0);
}

void ChannelGateImpl::resample(uint64_t seed, int64_t step, int64_t layer) {
  // Counter-based: the same (seed, step, layer) always gives the same noise.
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL ^ (uint64_t(step) + 0x632BE59BD9B4E019ULL) * 0xBF58476D1CE4E5B9ULL ^
               (uint64_t(layer) + 1) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  at::Generator gen = make_cpu_generator(x);
  const at::Tensor u = torch::empty({log_alpha.size(0)}, torch::kFloat).uniform_(1e-6, 1.0 - 1e-6, gen);
  // The logistic transform on the CPU (E/g values), so the step's forward launches three kernels
  // fewer per layer; on CUDA the copy is asynchronous from pinned memory: a pageable copy would wait
  // for the device, a host stall per layer and step (the caching host allocator keeps the pinned
  // buffer until the copy has run).
  const at::Tensor logistic = at::log(u) - at::log1p(-u);
  logistic_noise_ = log_alpha.is_cuda() ? logistic.pin_memory().to(log_alpha.device(), /*non_blocking=*/true)
                                        : logistic.to(log_alpha.device());
}

at::Tensor ChannelGateImpl::deterministic_gates() const {
  torch::NoGradGuard no_grad;
  if (type == GateType::kGumbelSigmoid) return (log_alpha.to(at::kFloat) > 0).to(at::kFloat);
  return gate_from_logistic(torch::zeros_like(log_alpha, torch::kFloat));  // U = 0.5: logit 0
}

at::Tensor ChannelGateImpl::prob_open() const {
  const at::Tensor a = log_alpha.to(at::kFloat);
  if (type == GateType::kGumbelSigmoid) return torch::sigmoid(a);  // P(σ((α+g)/τ) > 1/2)
  return torch::sigmoid(a - kBeta * std::log(-kGamma / kZeta));
}

at::Tensor ChannelGateImpl::forward() {
  if (!is_training()) return expand(deterministic_gates());
  MCD_CHECK(logistic_noise_.defined(), "channel gate: resample() must be called before a training forward");
  return expand(gate_from_logistic(logistic_noise_));
}

}  // namespace mcd
