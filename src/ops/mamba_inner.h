// The fused mixer (mamba-ssm's mamba_inner_fn, our way): from the in_proj output xz to the mixer
// output out_proj(y), as one autograd node that saves only xz, the x_proj output x_dbl, the
// scan's chunk states and the weights. The backward recomputes the conv output u and Δ, and the
// scan backward recomputes the gated scan output y for out_proj's weight gradient. Against the
// op-by-op mixer it keeps three fewer (B, L, E) activations per layer (u, Δ and y) for one more
// conv forward, one more store of y and one small matrix product per layer in the backward.
// OpsOptions::mixer_saves_conv_output (ops/options.h) keeps u instead of running the conv forward
// again: measured 1.8 % (130M) and 1.3 % (370M) faster training steps for 11 % and 18 % more peak
// memory (docs/PERF_NOTES.md).
//
// CUDA kernels only (backend auto, OpsOptions::fused_mixer on, fp32/fp16/bf16 xz, N ≤ 64, K ≤ 4);
// the model falls back to the op-by-op mixer elsewhere and when decoding state is requested.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

struct MambaInnerWeights {
  at::Tensor conv_weight;    // (E, K)
  at::Tensor conv_bias;      // (E) or undefined
  at::Tensor x_proj_weight;  // (R + 2N, E)
  at::Tensor dt_proj_weight; // (E, R)
  at::Tensor dt_proj_bias;   // (E): the Δ bias, added inside the scan before softplus
  at::Tensor A;              // (E, N) fp32, = −exp(A_log)
  at::Tensor D;              // (E)
  // (D_model, E), or undefined: the node then stops before out_proj and returns y (B, L, E), for an
  // out_proj adapter whose training-time output is not a weight (LoRA with dropout).
  at::Tensor out_proj_weight;
  at::Tensor out_proj_bias;    // (D_model) or undefined (undefined too without out_proj_weight)
  // (E) fp32 or undefined: an SDM channel mask m. The scan and its D skip see m⊙u, and the node
  // returns the scan's dm as this input's gradient. The caller passes x_proj_weight already
  // multiplied by m along its E columns (x_dbl = u·(W_x⊙m)ᵀ = (m⊙u)·W_xᵀ), so the mask's gradient
  // through x_proj flows through the caller's multiplication.
  at::Tensor mask{};  // (the {} keeps aggregate initialisers that stop before it warning-free)
};

// ops_options().fused_mixer (ops/options.h: CLI --fused-mixer, config key ops.fused_mixer).
bool fused_mixer_enabled();

// Whether mamba_inner runs for these inputs (see above).
bool mamba_inner_supported(const at::Tensor& xz, const MambaInnerWeights& w);

// xz: (B, L, 2E) (x then z along the last dim). Returns out_proj(y): (B, L, D_model) in xz's dtype
// (y itself, (B, L, E), without out_proj_weight).
at::Tensor mamba_inner(const at::Tensor& xz, const MambaInnerWeights& w);

}  // namespace mcd::ops
