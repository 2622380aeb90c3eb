// SDM sparsity control during pre-training (METHOD.md §2): the normalised expected L0 of all
// gates, the target sparsity ramped from 0 over a warm-up fraction, and either the Lagrangian
// L = CE + λ1(ŝ − t) + λ2(ŝ − t)² with λ updated by gradient ascent (default, as in CoFi /
// Sheared-LLaMA) or a plain penalty weight·(1 − ŝ). The trainer calls begin_step / regularizer /
// end_step around each optimizer step.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "model/channel_gate.h"

namespace mcd::sdm {

struct SparsitySettings {
  double target = 0.5;           // final fraction of channels to remove
  double warmup_fraction = 0.5;  // t ramps linearly 0 → target over this fraction of the steps
  std::string control = "lagrangian";  // lagrangian | penalty
  double penalty_weight = 1.0;   // for control = penalty
  double lambda_lr = 0.1;        // gradient-ascent step for λ1, λ2
  double lambda2_init = 20.0;    // starting λ2: the quadratic term then acts as a proportional
                                 // pull towards t from the first step (see docs/sdm.md)
  double tau0 = 1.0, tau1 = 0.1; // Gumbel-sigmoid temperature, annealed exponentially
  // What λ1 integrates: "expected" (ŝ − t, the plain gradient of L with respect to λ1) or
  // "deterministic" (the eval mask's sparsity − t: ŝ sits systematically below the eval mask's
  // sparsity when gates hover, and it is the eval mask that pruning uses).
  std::string lambda_signal = "expected";
};

class SparsityController {
 public:
  SparsityController(std::vector<ChannelGate> gates, SparsitySettings settings, int64_t total_steps);

  // Draws every gate's noise for `step` and sets the Gumbel temperature.
  void begin_step(uint64_t seed, int64_t step);
  double target_at(int64_t step) const;
  // Gumbel-sigmoid temperature at `step`: τ0·(τ1/τ0)^(step/total_steps), i.e. exponential from τ0
  // at step 0 to τ1 at the end of training (held there past it).
  double temperature_at(int64_t step) const;
  // ŝ: expected fraction of closed channels, normalised over all channels (differentiable).
  at::Tensor expected_sparsity() const;
  // The term added to the loss at `step` (differentiable in the gate logits).
  at::Tensor regularizer(int64_t step);
  // λ ascent with the step's ŝ (after backward).
  void end_step(int64_t step);
  // Fraction of channels whose deterministic gate is 0 (the mask pruning will use).
  double deterministic_sparsity() const;

  nlohmann::json state() const;              // λ1, λ2 for checkpoints
  void load_state(const nlohmann::json& j);
  nlohmann::json metrics(int64_t step) const;

 private:
  std::vector<ChannelGate> gates_;
  SparsitySettings s_;
  int64_t total_steps_;
  double lambda1_ = 0, lambda2_, last_expected_ = 0;
};

}  // namespace mcd::sdm
