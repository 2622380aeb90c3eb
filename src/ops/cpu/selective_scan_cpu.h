// Plain-loop CPU reference of the selective scan, forward and backward (METHOD.md §1):
//   Δ = softplus(δ + Δ_bias); h_t = exp(Δ_t·A)⊙h_{t−1} + Δ_t·B_t·u_t; y_t = C_t·h_t + D⊙u_t;
//   out_t = y_t · SiLU(z_t), where u is first multiplied by the optional per-channel mask
//   (the SDM gate): the scan and the D skip see u' = mask ⊙ u.
// One independent recurrence per (batch, channel); float and double. The autograd wrapper and
// the LibTorch-ops composite live in ops/selective_scan.cpp.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops::cpu {

struct ScanForwardResult {
  at::Tensor out;         // (B, E, L)
  at::Tensor last_state;  // (B, E, N), h_L; undefined unless requested
};

// u, delta, z: (B, E, L); A: (E, N); Bm, Cm: (B, N, L); D, delta_bias, mask: (E). z, D,
// delta_bias and mask may be undefined tensors. All on CPU, same floating dtype (float or double).
ScanForwardResult selective_scan_forward(const at::Tensor& u, const at::Tensor& delta,
                                         const at::Tensor& A, const at::Tensor& Bm,
                                         const at::Tensor& Cm, const at::Tensor& D,
                                         const at::Tensor& z, const at::Tensor& delta_bias,
                                         bool delta_softplus, bool want_last_state,
                                         const at::Tensor& mask = at::Tensor());

struct ScanGrads {
  at::Tensor du, ddelta, dA, dB, dC, dD, dz, ddelta_bias, dmask;  // undefined where the input was
};

// Recomputes the forward per channel (the states are never stored across the call) and runs
// the reverse recurrence. dB/dC are reduced over channels through per-thread buffers, so the
// result does not depend on scheduling.
ScanGrads selective_scan_backward(const at::Tensor& dout, const at::Tensor& u,
                                  const at::Tensor& delta, const at::Tensor& A,
                                  const at::Tensor& Bm, const at::Tensor& Cm, const at::Tensor& D,
                                  const at::Tensor& z, const at::Tensor& delta_bias,
                                  bool delta_softplus, const at::Tensor& mask = at::Tensor());

}  // namespace mcd::ops::cpu
