// SDM channel gates (see channel_gate.h).
#include "model/channel_gate.h"

#include <cmath>

#include "util/counter_noise.h"
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

void ChannelGateImpl::resample(uint64_t seed, int64_t step, int64_t layer) {
  noise_key_ = noise_key(seed, step, layer);
}

void resample_gates(const std::vector<ChannelGate>& gates, uint64_t seed, int64_t step) {
  for (size_t l = 0; l < gates.size(); ++l) {
    ChannelGate gate = gates[l];  // a holder copy: the vector's are const
    gate->resample(seed, step, int64_t(l));
  }
}

at::Tensor ChannelGateImpl::deterministic_gates() const {
  torch::NoGradGuard no_grad;
  if (type == GateType::kGumbelSigmoid) return (log_alpha.to(at::kFloat) > 0).to(at::kFloat);
  return ops::channel_gate(log_alpha.to(at::kFloat), std::nullopt, type, temperature_, 1);  // U = 1/2: logit 0
}

at::Tensor ChannelGateImpl::prob_open() const {
  const at::Tensor a = log_alpha.to(at::kFloat);
  if (type == GateType::kGumbelSigmoid) return torch::sigmoid(a);  // P(σ((α+g)/τ) > 1/2)
  return torch::sigmoid(a - kBeta * std::log(-kGamma / kZeta));
}

at::Tensor ChannelGateImpl::forward() {
  if (!is_training()) return expand(deterministic_gates());
  MCD_CHECK(noise_key_.has_value(), "channel gate: resample() must be called before a training forward");
  return ops::channel_gate(log_alpha.to(at::kFloat), noise_key_, type, temperature_, block);
}

}  // namespace mcd
