// SDM channel gates (METHOD.md §2): one gate per inner channel (or per block of g adjacent
// channels) of a Mamba mixer, multiplying u after conv + SiLU. Hard-concrete (Louizos et al.
// 2018) by default, Gumbel-sigmoid with an annealed temperature as an option. One noise sample
// per gate per step, shared across batch and time, drawn from a counter-based seed so a resumed
// run sees the same noise; deterministic (U = 0.5) in eval mode. Part of the model's architecture
// (config gate_type), so it lives here; sdm/ trains it, reads it and prunes by it.
#pragma once

#include <string>

#include <cstdint>
#include <optional>
#include <vector>

#include "ops/channel_gate.h"
#include "util/torch_compat.h"

namespace mcd {

// The gate forms and hard-concrete constants are the mask op's (ops/channel_gate.h).
using ops::GateType;
using ops::kBeta;
using ops::kGamma;
using ops::kZeta;
GateType parse_gate_type(const std::string& name);  // "hard_concrete" | "gumbel"
const char* gate_type_name(GateType type);

class ChannelGateImpl : public torch::nn::Module {
 public:
  ChannelGateImpl(int64_t channels, int64_t block, GateType type, double init_log_alpha);

  // The mask (E) for the current mode: the sampled gate in training (after resample()), the
  // deterministic gate in eval. Differentiable with respect to log_alpha.
  at::Tensor forward();
  // This step's noise: gate j draws U_j of the counter-based stream noise_key(seed, step, layer)
  // (util/counter_noise.h), formed where the mask is computed — on the device, nothing is copied.
  void resample(uint64_t seed, int64_t step, int64_t layer);
  // Gumbel-sigmoid temperature for this step (ignored by hard-concrete).
  void set_temperature(double tau) { temperature_ = tau; }

  at::Tensor prob_open() const;           // (E/g) P(gate > 0), differentiable
  at::Tensor deterministic_gates() const; // (E/g) z at U = 0.5 (in [0, 1]); no grad
  at::Tensor expand(const at::Tensor& per_gate) const;  // (E/g) → (E)

  int64_t channels, block;
  GateType type;
  at::Tensor log_alpha;  // (E/g) the gate logits α

 private:
  std::optional<uint64_t> noise_key_;  // this step's, after resample()
  double temperature_ = 1.0;
};
TORCH_MODULE(ChannelGate);

// resample(seed, step, l) for gates[l], every l: what a training step does before its forward.
void resample_gates(const std::vector<ChannelGate>& gates, uint64_t seed, int64_t step);

}  // namespace mcd
