// The fused mixer core (mamba-ssm's mamba_inner_fn, our way): from the in_proj output xz to the
// gated scan output y, as one autograd node that saves only xz, the x_proj output x_dbl, the
// scan's chunk states and the weights, and recomputes the conv output u and Δ in the backward.
// Against the op-by-op mixer it keeps two fewer (B, L, E) activations per layer (u and Δ) for one
// more conv forward and one small matrix product per layer in the backward.
//
// CUDA kernels only (backend auto, fp32/fp16/bf16 xz, N ≤ 64, K ≤ 4); the model falls back to the
// op-by-op mixer elsewhere, with an SDM gate, and when decoding state is requested.
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
};

// Process-wide switch (environment MCD_FUSED_MIXER=0 turns it off; tests flip it).
bool fused_mixer_enabled();
void set_fused_mixer(bool on);

// Whether mamba_inner runs for these inputs (see above).
bool mamba_inner_supported(const at::Tensor& xz, const MambaInnerWeights& w);

// xz: (B, L, 2E) (x then z along the last dim). Returns y: (B, E, L) in xz's dtype,
// channel-contiguous (its transpose is a contiguous (B, L, E), ready for out_proj).
at::Tensor mamba_inner(const at::Tensor& xz, const MambaInnerWeights& w);

}  // namespace mcd::ops
