// SDM channel gates (METHOD.md §2): one gate per inner channel (or per block of g adjacent
// channels) of a Mamba mixer, multiplying u after conv + SiLU. Hard-concrete (Louizos et al.
// 2018) by default, Gumbel-sigmoid with an annealed temperature as an option. One noise sample
// per gate per step, shared across batch and time, drawn from a counter-based seed so a resumed
// run sees the same noise; deterministic (U = 0.5) in eval mode. Part of the model's architecture
// (config gate_type), so it lives here; sdm/ trains it, reads it and prunes by it.
#pragma once

#include <string>

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
  // Draws this step's noise: one U per gate from a generator seeded by (seed, step, layer).
  // resample_gates below does it for all layers of a model at once.
  void resample(uint64_t seed, int64_t step, int64_t layer);
  // This step's noise as resample(seed, step, layer) on the CPU gives it (logistic_noise below).
  at::Tensor logistic_noise(uint64_t seed, int64_t step, int64_t layer) const;  // (E/g) fp32, CPU
  // Sets this step's noise: (E/g) fp32 on log_alpha's device (what resample_gates hands each layer).
  void set_logistic_noise(const at::Tensor& logistic);
  // Gumbel-sigmoid temperature for this step (ignored by hard-concrete).
  void set_temperature(double tau) { temperature_ = tau; }

  at::Tensor prob_open() const;           // (E/g) P(gate > 0), differentiable
  at::Tensor deterministic_gates() const; // (E/g) z at U = 0.5 (in [0, 1]); no grad
  at::Tensor expand(const at::Tensor& per_gate) const;  // (E/g) → (E)

  int64_t channels, block;
  GateType type;
  at::Tensor log_alpha;  // (E/g) the gate logits α

 private:
  // The gate from logistic noise log U − log(1 − U) (0 for the deterministic U = 0.5).
  at::Tensor gate_from_logistic(const at::Tensor& logistic) const;  // (E/g)
  at::Tensor logistic_noise_;                                       // (E/g) this step's, on log_alpha's device
  double temperature_ = 1.0;
};
TORCH_MODULE(ChannelGate);

// resample(seed, step, l) for gates[l], every l, with the same noise; on CUDA the layers' noise
// goes to the device in one asynchronous copy from pinned memory instead of one per layer (the
// step's host work before its first kernel; PERF_NOTES, "Twenty-seventh session").
void resample_gates(const std::vector<ChannelGate>& gates, uint64_t seed, int64_t step);

}  // namespace mcd
