// The SDM channel gate's mask (METHOD.md §2) as one op: from the gate logits α (E/g), this step's
// noise key and the gate form, the mask (E) that multiplies the mixer's inner channels, each gate
// repeated over its block of g adjacent channels. Gate j's logistic noise n_j = log U − log(1 − U)
// is noise_logistic(key, j) (util/counter_noise.h), computed where the mask is (no noise tensor,
// no copy to the device); without a key, n = 0 (U = 1/2: the deterministic hard-concrete gate).
//   hard-concrete:    z = clamp(σ((α + n)/β)·(ζ − γ) + γ, 0, 1)
//   Gumbel-sigmoid:   z = σ((α + n)/τ)
// differentiable in α (the clamp passes the gradient where 0 ≤ z_raw ≤ 1, as LibTorch's clamp).
// On CUDA (fp32) one kernel each way (ops/cuda/channel_gate.cu) instead of ~6 forward and ~10
// backward elementwise kernels per layer and step (PERF_NOTES, "Twenty-seventh session"); on the
// CPU, in float64, and under the `composite` backend the same formula in LibTorch ops, whose
// autograd backward the kernel is checked against.
#pragma once

#include <cstdint>
#include <optional>

#include "util/torch_compat.h"

namespace mcd::ops {

enum class GateType { kHardConcrete, kGumbelSigmoid };

// Hard-concrete constants (METHOD.md §2): stretch interval (γ, ζ) and temperature β.
constexpr double kBeta = 2.0 / 3.0, kGamma = -0.1, kZeta = 1.1;

// log_alpha: (E/g) floating point; temperature: τ of the Gumbel-sigmoid (> 0; ignored by
// hard-concrete, whose temperature is β); block: g ≥ 1. Returns (E) in log_alpha's dtype.
at::Tensor channel_gate(const at::Tensor& log_alpha, std::optional<uint64_t> noise_key, GateType type,
                        double temperature, int64_t block);

// The same mask written in LibTorch ops (the CPU path and the check for the kernel's backward).
at::Tensor channel_gate_composite(const at::Tensor& log_alpha, std::optional<uint64_t> noise_key, GateType type,
                                  double temperature, int64_t block);

// The noise the op uses: (gates) fp32 on the CPU, noise_logistic(key, j) (zeros without a key).
at::Tensor channel_gate_noise(std::optional<uint64_t> noise_key, int64_t gates);

}  // namespace mcd::ops
