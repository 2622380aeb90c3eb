// The selective scan as the model calls it: input checks, then dispatch to the CPU plain-loop
// reference (with its hand-written backward, wrapped for autograd) or to the LibTorch-ops
// composite (autograd through LibTorch; used on CUDA until our kernels exist, and as the
// reference every backward is checked against), or on CUDA to the fused kernels (ops/cuda) when
// built with them. See ops/backend.h.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

struct ScanInputs {
  at::Tensor u;           // (B, E, L)
  at::Tensor delta;       // (B, E, L), before bias and softplus
  at::Tensor A;           // (E, N), negative: A = −exp(A_log)
  at::Tensor B;           // (B, N, L), input-dependent, shared across channels
  at::Tensor C;           // (B, N, L)
  at::Tensor D;           // (E) skip weight, or undefined
  at::Tensor z;           // (B, E, L) gate: out = y·SiLU(z), or undefined
  at::Tensor delta_bias;  // (E), or undefined
  at::Tensor mask;        // (E), or undefined: the SDM gate, u' = mask ⊙ u is what the scan and
                          // the D skip see (gradient returned for it)
  bool delta_softplus = true;
};

// Differentiable scan: returns out (B, E, L). On CUDA with backend kAuto the fused kernels run
// (float32/float16/bfloat16, N ≤ 64; otherwise the composite); their dB/dC reduction is
// deterministic when at::globalContext().deterministicAlgorithms() is on.
at::Tensor selective_scan(const ScanInputs& in);

// Inference: also returns the final state h_L (B, E, N) for the recurrent step mode. No grad.
// last_state_into (optional, (B, E, N)): receives h_L in place and is returned as it — on CUDA, where
// it is fp32 and contiguous, written by the scan kernel itself (no copy); elsewhere copied into it.
std::pair<at::Tensor, at::Tensor> selective_scan_with_state(const ScanInputs& in, at::Tensor last_state_into = {});

// Whether an inference scan of (batch, dim) channels with N states on `device` runs fastest with
// time-contiguous operands ((B, E, L) with unit time stride, B and C (B, N, L) likewise): true where
// the CUDA kernels run and choose their block forward for that layout (ops/cuda/scan_params.h,
// choose_scan_forward_algorithm). The model's channel-major prefill asks this (model/mamba.h).
bool scan_prefers_time_contiguous(int64_t batch, int64_t dim, int64_t dstate, const at::Device& device);

// A layer's scan parameters as the scan kernels take them, fp32: A = −exp(A_log), D and Δ's bias
// widened (undefined ones stay undefined). With a gradient wanted (grad mode and one of them
// requiring it) and off CUDA, the composite (differentiable); on CUDA otherwise one kernel for the
// three (ops/cuda/scan_params_fp32_params.h) where the composite launches five — a captured
// prefill's per-layer cost, model/mamba.h. The kernel takes exp in double and rounds once, so A may
// differ from the composite's fp32 exp by a unit in the last place; D and the bias are exact.
struct ScanParams32 {
  at::Tensor A, D, delta_bias;
};
ScanParams32 scan_params_fp32(const at::Tensor& A_log, const at::Tensor& D, const at::Tensor& delta_bias);

// The composite in LibTorch ops (sequential over L). Differentiable by autograd.
at::Tensor selective_scan_composite(const ScanInputs& in, at::Tensor* last_state = nullptr);

// One recurrent step (any device, no grad): state (B, E, N) is updated in place.
// u, delta, z: (B, E); B, C: (B, N). Returns out (B, E). a_is_log: A holds A_log and the step
// uses −exp(A_log), so a model passes its parameter as it is (no per-step A kernels). On CUDA
// with backend kAuto one kernel runs (ops/cuda/decode_step_params.h) where it takes the tensors.
// delta_proj (E, R), when given: delta is the (B, R) low-rank input and Δ = delta · delta_projᵀ (the
// model's dt_proj, formed inside the step kernel instead of by a matrix product of its own).
at::Tensor selective_scan_step(at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                               const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                               const at::Tensor& D, const at::Tensor& z,
                               const at::Tensor& delta_bias, bool delta_softplus, bool a_is_log = false,
                               const at::Tensor& delta_proj = {});

// The step with its input projection (the model's x_proj, no bias) in front, exactly
//   x_dbl = decode_linear(u, x_proj)                                   (B, R + 2N), R = delta_proj's
//   selective_scan_step(state, u, x_dbl[:, :R], A, x_dbl[:, R:R+N], x_dbl[:, R+N:], D, z, delta_bias,
//                       delta_softplus, a_is_log, delta_proj)
// (x_proj inside the scan-step kernel through thread-block clusters was tried and measured 1.8–1.9×
// slower per batch-1 token: docs/PERF_NOTES.md, "Tenth session".)
at::Tensor selective_scan_step_projected(at::Tensor& state, const at::Tensor& u, const at::Tensor& x_proj,
                                         const at::Tensor& A, const at::Tensor& D, const at::Tensor& z,
                                         const at::Tensor& delta_bias, bool delta_softplus, bool a_is_log,
                                         const at::Tensor& delta_proj);

}  // namespace mcd::ops
