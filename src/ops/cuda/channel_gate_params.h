// Parameters of the SDM channel gate's kernels (ops/cuda/channel_gate.cu), filled by the host op
// (ops/cuda/channel_gate_cuda.cpp). Semantics: ops/channel_gate.h. For gates j < gates, channels
// e = j·block + k (k < block), all fp32 and contiguous, n_j = noise_logistic(noise_key, j)
// (util/counter_noise.h) or 0 without noise:
//   t_j = (α_j + n_j) / temperature,  s_j = σ(t_j)
//   hard-concrete: x_j = s_j·(ζ − γ) + γ,  mask[e] = clamp(x_j, 0, 1)
//                  dα_j = [0 ≤ x_j ≤ 1] · (Σ_k grad_mask[e]) · (ζ − γ) · (1 − s_j)·s_j / temperature
//   Gumbel-sigmoid: mask[e] = s_j,  dα_j = (Σ_k grad_mask[e]) · (1 − s_j)·s_j / temperature
// (the factors in the order LibTorch's autograd applies them to the composite formula).
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

struct ChannelGateParams {
  int64_t gates = 0, block = 1;
  bool hard_concrete = true;
  float temperature = 1.f;        // β for hard-concrete, τ for Gumbel-sigmoid
  float stretch = 1.2f, shift = -0.1f;  // ζ − γ and γ (hard-concrete)
  bool has_noise = false;
  uint64_t noise_key = 0;
  const float* log_alpha = nullptr;  // (gates)
  float* mask = nullptr;             // (gates·block) forward output
  const float* grad_mask = nullptr;  // (gates·block) backward input
  float* grad_log_alpha = nullptr;   // (gates) backward output
  cudaStream_t stream = nullptr;
};

void channel_gate_forward(const ChannelGateParams& p);
void channel_gate_backward(const ChannelGateParams& p);

}  // namespace mcd::ops::cuda
