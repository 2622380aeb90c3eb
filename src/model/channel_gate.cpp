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
  return ops::channel_gate(log_alpha.to(at::kFloat), logistic, type, temperature_, /*block=*/1);
}

at::Tensor ChannelGateImpl::logistic_noise(uint64_t seed, int64_t step, int64_t layer) const {
  // Counter-based: the same (seed, step, layer) always gives the same noise.
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL ^ (uint64_t(step) + 0x632BE59BD9B4E019ULL) * 0xBF58476D1CE4E5B9ULL ^
               (uint64_t(layer) + 1) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  at::Generator gen = make_cpu_generator(x);
  const at::Tensor u = torch::empty({log_alpha.size(0)}, torch::kFloat).uniform_(1e-6, 1.0 - 1e-6, gen);
  // The logistic transform on the CPU (E/g values): three kernels fewer per layer on the device.
  return at::log(u) - at::log1p(-u);
}

void ChannelGateImpl::set_logistic_noise(const at::Tensor& logistic) {
  MCD_CHECK(logistic.dim() == 1 && logistic.size(0) == log_alpha.size(0) && logistic.scalar_type() == at::kFloat &&
                logistic.device() == log_alpha.device(),
            "channel gate: the noise must be (", log_alpha.size(0), ") fp32 on ", log_alpha.device(), ", got ",
            logistic.sizes(), " ", logistic.scalar_type(), " on ", logistic.device());
  logistic_noise_ = logistic;
}

namespace {

// A host fp32 tensor on `device`: on CUDA copied asynchronously from pinned memory (a pageable copy
// waits for the device: a host stall per call); the caching host allocator keeps the pinned block
// until the copy has run. Allocated pinned rather than pin_memory(), which first asks the driver
// whether the tensor already is.
at::Tensor to_device(const at::Tensor& host, const at::Device& device) {
  if (!device.is_cuda()) return host.to(device);
  at::Tensor pinned = at::empty(host.sizes(), host.options().pinned_memory(true));
  pinned.copy_(host);
  return pinned.to(device, /*non_blocking=*/true);
}

}  // namespace

void ChannelGateImpl::resample(uint64_t seed, int64_t step, int64_t layer) {
  logistic_noise_ = to_device(logistic_noise(seed, step, layer), log_alpha.device());
}

void resample_gates(const std::vector<ChannelGate>& gates, uint64_t seed, int64_t step) {
  if (gates.empty()) return;
  const at::Device device = gates[0]->log_alpha.device();
  std::vector<at::Tensor> noise;
  for (size_t l = 0; l < gates.size(); ++l) {
    MCD_CHECK(gates[l]->log_alpha.device() == device, "channel gates: layer ", l, " is on ",
              gates[l]->log_alpha.device(), ", layer 0 on ", device, "; resample_gates needs one device");
    noise.push_back(gates[l]->logistic_noise(seed, step, int64_t(l)));
  }
  const at::Tensor all = to_device(at::cat(noise), device);
  int64_t offset = 0;
  for (size_t l = 0; l < gates.size(); ++l) {
    const int64_t n = noise[l].size(0);
    ChannelGate gate = gates[l];  // a holder copy: the vector's are const
    gate->set_logistic_noise(all.narrow(0, offset, n));
    offset += n;
  }
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
  return ops::channel_gate(log_alpha.to(at::kFloat), logistic_noise_, type, temperature_, block);
}

}  // namespace mcd
