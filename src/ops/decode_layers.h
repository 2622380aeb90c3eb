// All Mamba layers of one decode token at once (issue 14): the per-layer step of model/mamba.cpp for blocks without
// adapters or gates, as one op so that CUDA can run it as ONE persistent kernel (ops/cuda/decode_layers_params.h
// says why). Exactly, with pending₀ absent and residual₀ = embedding[token_ids] widened to fp32:
//   for each layer:  {xz, residual} = add_rms_norm_decode_linear(residual, pending, norm_weight, eps, in_proj)
//                    u = causal_conv1d_step(conv_state, xz[:, :E], conv_weight, conv_bias, silu)
//                    y = selective_scan_step_projected(ssm_state, u, x_proj, A_log, D, xz[:, E:], dt_proj_bias,
//                                                      softplus, a_is_log, dt_proj_weight)
//                    pending = decode_linear(y, out_proj)
// → {residual, pending} (the caller's final add + norm follows), the states updated in place. On CUDA, when
// decode_layers_runs_kernel holds, the kernel (bf16 intermediates where those ops write bf16, fp32 sums; the same
// values up to the order of the fp32 sums and bf16 rounding of intermediates); elsewhere those ops themselves.
#pragma once

#include <vector>

#include "util/torch_compat.h"

namespace mcd::ops {

struct DecodeLayer {
  at::Tensor norm_weight;                   // (D)
  at::Tensor in_proj;                       // (2E, D), no bias
  at::Tensor conv_weight, conv_bias;        // (E, K), (E)
  at::Tensor x_proj;                        // (R + 2N, E)
  at::Tensor dt_proj_weight, dt_proj_bias;  // (E, R), (E)
  at::Tensor A_log, D;                      // (E, N), (E)
  at::Tensor out_proj;                      // (D, E), no bias
  at::Tensor conv_state, ssm_state;         // (B, E, K − 1), (B, E, N) fp32: updated in place
};
struct DecodeLayersOut {
  at::Tensor residual;  // (B, D) fp32
  at::Tensor pending;   // (B, D): the last layer's out_proj
};

DecodeLayersOut decode_layers(const at::Tensor& token_ids, const at::Tensor& embedding, std::vector<DecodeLayer>& layers,
                              double eps);
// Whether decode_layers runs the CUDA kernel: the ops option decode_layers on, backend auto, no gradients or
// autocast, CUDA bf16 contiguous tensors on one device, 1–64 rows, at most 64 layers, widths the kernel is compiled
// for (the 130M and 370M presets: d_state 16, conv width 4), a device that holds its clusters at once.
bool decode_layers_runs_kernel(const at::Tensor& token_ids, const at::Tensor& embedding,
                               const std::vector<DecodeLayer>& layers);

}  // namespace mcd::ops
