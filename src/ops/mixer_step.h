// One decode step of a Mamba mixer's core, from in_proj's output to out_proj's input, as one op:
//   u = SiLU(conv step(x)) [⊙ mask];  x_dbl = x_proj·u;  δ = dt_proj·x_dbl[:R];
//   y = scan step(u, δ + dt_bias, A = −exp(A_log), B = x_dbl[R:R+N], C = x_dbl[R+N:], D)·SiLU(z)
// with xz = [x, z] (B, 2E). On CUDA with backend kAuto two launches over blocks of 64 channels run
// where they take the tensors (ops/cuda/decode_step_params.h, MixerStepParams) instead of the
// composite's two kernels and two products — what a CUDA-graph decode replays 24–48 times per token.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

struct MixerStepWeights {
  at::Tensor conv_weight;  // (E, K)
  at::Tensor conv_bias;    // (E), or undefined
  at::Tensor mask;         // (E) SDM gate values, or undefined
  at::Tensor x_proj;       // (R + 2N, E), no bias
  at::Tensor dt_proj;      // (E, R), no bias (its bias is dt_bias)
  at::Tensor dt_bias;      // (E), or undefined
  at::Tensor A_log;        // (E, N)
  at::Tensor D;            // (E), or undefined
};

// conv_state (B, E, K−1) and ssm_state (B, E, N) are updated in place; returns y (B, E) in xz's
// dtype. No grad.
at::Tensor mixer_step(at::Tensor& conv_state, at::Tensor& ssm_state, const at::Tensor& xz, const MixerStepWeights& w);

// The same as the composition of causal_conv1d_step, linear and selective_scan_step: the
// semantics the kernel follows (x_dbl and δ rounded to the activations' dtype, as those products'
// outputs are).
at::Tensor mixer_step_composite(at::Tensor& conv_state, at::Tensor& ssm_state, const at::Tensor& xz,
                                const MixerStepWeights& w);

}  // namespace mcd::ops
