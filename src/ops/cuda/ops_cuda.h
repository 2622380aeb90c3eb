// Host API of the CUDA kernels (LibTorch side): the differentiable ops that ops/selective_scan.cpp
// and ops/causal_conv1d.cpp dispatch to for CUDA tensors, plus the raw forward/backward calls the
// GPU tests and bench/bench_ops.cpp time and check. Defined only in builds with MCD_WITH_CUDA
// (ops/cuda/*.cpp); the kernels behind them take the plain structs of scan_params.h/conv_params.h.
#pragma once

#include <utility>

#include "ops/cuda/scan_params.h"
#include "ops/channel_gate.h"
#include "ops/mamba_inner.h"
#include "ops/selective_scan.h"
#include "util/torch_compat.h"

namespace mcd::ops::cuda {

// ------------------------------------------------------------------------- selective scan

// True when the kernels take these inputs: CUDA tensors, u in float32/float16/bfloat16, N ≤ 64.
// Otherwise the caller falls back to the composite (float64 on CUDA goes there, for example).
bool scan_supported(const ScanInputs& in);

// The algorithm the kernels run for these inputs on their device under ops_options().scan_plan
// (choose_scan_algorithm in scan_params.h, [Note: scan algorithm choice]). Callers choose once per
// forward and hand the same algorithm to the backward.
ScanAlgorithm scan_algorithm_for(const ScanInputs& in);
// The algorithm of an inference forward (no saved states): choose_scan_forward_algorithm.
ScanAlgorithm scan_forward_algorithm_for(const ScanInputs& in);
// Whether that choice is the block forward for time-contiguous operands of this shape.
bool scan_prefers_time_contiguous(int64_t batch, int64_t dim, int64_t dstate, const at::Device& device);

// Differentiable fused scan (autograd node around the forward and backward kernels; it chooses
// the algorithm once in the forward and keeps it for the backward). u, Δ, z, B and C are read
// through their strides (no copies; Δ, z, B, C are converted to u's dtype first if they differ);
// A, D, Δ-bias and mask are used as fp32. The output has u's memory layout (time-contiguous or
// channel-contiguous). `deterministic` makes every gradient reproducible bit for bit.
at::Tensor selective_scan_cuda(const ScanInputs& in, bool deterministic);

// Inference: out and the final state h_L (B, E, N) in fp32. No grad. last_state_into: as for
// selective_scan_cuda_forward below (scan_writes_last_state must hold).
std::pair<at::Tensor, at::Tensor> selective_scan_cuda_with_state(const ScanInputs& in,
                                                                 const at::Tensor& last_state_into = {});
// Whether `t` can receive in's final state in place: (B, E, N) fp32 contiguous on u's device.
bool scan_writes_last_state(const ScanInputs& in, const at::Tensor& t);

struct ScanCudaForward {
  at::Tensor out;         // (B, E, L), u's dtype
  at::Tensor states;      // (B, E, chunks, N) fp32 chunk-start states, if requested (scan_params.h)
  at::Tensor last_state;  // (B, E, N) fp32, if requested
};
// `algorithm` must take in's N (scan_algorithm_supports); the backward needs the same one.
// last_state_into (optional, with want_last_state): a (B, E, N) fp32 contiguous tensor on the device
// that receives the final state (and becomes the result's last_state) instead of a new one.
ScanCudaForward selective_scan_cuda_forward(const ScanInputs& in, ScanAlgorithm algorithm, bool save_states,
                                            bool want_last_state, const at::Tensor& last_state_into = {});

struct ScanCudaGrads {
  at::Tensor du, ddelta, dz, dB, dC;  // activations' dtypes (dz undefined without z)
  at::Tensor dA, dD, ddelta_bias, dmask;  // fp32 (undefined where the input was)
  at::Tensor out;  // the forward's output, recomputed (ScanBackwardOptions::recompute_out)
};
// What fused callers (ops/mamba_inner.h) ask of the backward beyond the gradients.
struct ScanBackwardOptions {
  bool deterministic = false;
  // Also return the forward's output, recomputed from the saved states at the cost of one more
  // store: the caller need not keep it for the next product's weight gradient.
  bool recompute_out = false;
  // A (B, E, L) view in u's dtype (any strides, e.g. a slice of a larger gradient buffer) that
  // receives dz in place of a fresh tensor; g.dz is then this view.
  at::Tensor dz_into;
  // A (B, L, 2N) view in u's dtype (any strides, e.g. x_dbl's gradient columns) that receives
  // [dB | dC] time-major in one converting copy; g.dB and g.dC are then left undefined.
  at::Tensor dBC_into;
  // state_sequential_eight_lanes, _segmented, _dense: the backward split along time into up to this many segments run
  // side by side, the adjoint carried between them by a first pass ([Note: time-segmented
  // backward] in selective_scan_seq_bwd.cuh). 1: one walk. The autograd nodes ask for
  // backward_time_segments below.
  int64_t time_segments = 1;
};
// The time segments the autograd nodes' backward takes, chosen with the algorithm in the forward:
// scan_backward_time_segments (scan_params.h) under the option scan_time_segments, else 1.
int64_t backward_time_segments(ScanAlgorithm algorithm, int64_t batch, int64_t dim, const at::Device& device);
// `states` from selective_scan_cuda_forward(…, algorithm, save_states = true) on the same inputs.
ScanCudaGrads selective_scan_cuda_backward(const ScanInputs& in, ScanAlgorithm algorithm, const at::Tensor& states,
                                           const at::Tensor& dout, const ScanBackwardOptions& options);
inline ScanCudaGrads selective_scan_cuda_backward(const ScanInputs& in, ScanAlgorithm algorithm,
                                                  const at::Tensor& states, const at::Tensor& dout,
                                                  bool deterministic) {
  ScanBackwardOptions o;
  o.deterministic = deterministic;
  return selective_scan_cuda_backward(in, algorithm, states, dout, o);
}

// ------------------------------------------------------------------------ causal conv1d

// CUDA x in float32/float16/bfloat16, K ≤ 4.
bool conv_supported(const at::Tensor& x, const at::Tensor& weight);

// x: (B, E, L) any strides; weight (E, K); bias (E) or undefined. The output has x's memory
// layout. Not differentiable: ops/causal_conv1d.cpp wraps these two in its autograd node.
// final_state (optional; conv_writes_final_state must hold): receives the conv state after x, its
// last K − 1 steps zero-padded on the left (ops::causal_conv1d_final_state), written by the kernel.
at::Tensor causal_conv1d_cuda_forward(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias, bool silu, const at::Tensor& final_state = {});
// Whether causal_conv1d_cuda_forward can write this final state: (B, E, K − 1) in x's dtype on x's
// device (any strides), x time-contiguous (or a single step).
bool conv_writes_final_state(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& final_state);
struct ConvCudaGrads {
  at::Tensor dx, dweight, dbias;  // dx in x's dtype; dweight, dbias fp32 (dbias undefined if no bias)
};
// dx_into: optional (B, E, L) view in x's dtype (any strides) that receives dx; g.dx is then it.
// deterministic: dweight/dbias summed from per-segment partials in a fixed order; otherwise (the
// channel-contiguous kernels) added atomically, which saves the reduction kernels.
ConvCudaGrads causal_conv1d_cuda_backward(const at::Tensor& dout, const at::Tensor& x,
                                          const at::Tensor& weight, const at::Tensor& bias,
                                          bool silu, const at::Tensor& dx_into = at::Tensor(),
                                          bool deterministic = false);

// Fused mixer, in_proj output to out_proj output (ops/mamba_inner.h), through the kernels above.
bool mamba_inner_cuda_supported(const at::Tensor& xz, const MambaInnerWeights& w);
at::Tensor mamba_inner_cuda(const at::Tensor& xz, const MambaInnerWeights& w, bool deterministic);

// Fused residual add + RMSNorm (ops/add_rms_norm.h): fp32 residual and weight on CUDA, prev
// (the mixer output) and the normed output in fp32/fp16/bf16, D ≤ 12288. Returns {normed, residual}.
bool add_norm_supported(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                        at::ScalarType out_dtype);
std::pair<at::Tensor, at::Tensor> add_rms_norm_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                    const at::Tensor& weight, double eps,
                                                    at::ScalarType out_dtype);
// The forward alone, without an autograd node, for passes without gradients: the weight may be
// half precision (a bf16 model served), read as it is instead of cast to fp32 on every call.
bool add_norm_inference_supported(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                                  at::ScalarType out_dtype);
std::pair<at::Tensor, at::Tensor> add_rms_norm_inference_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                              const at::Tensor& weight, double eps,
                                                              at::ScalarType out_dtype);
// The same followed by a linear layer on normed in autocast's dtype, normed recomputed in the
// backward (ops/add_rms_norm.h, add_rms_norm_linear). Returns {projected, residual}.
bool add_norm_linear_supported(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                               const at::Tensor& proj_w, const at::Tensor& proj_b);
std::pair<at::Tensor, at::Tensor> add_rms_norm_linear_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                           const at::Tensor& weight, double eps,
                                                           const at::Tensor& proj_w, const at::Tensor& proj_b);

// A layer's scan parameters widened to fp32 in one kernel (ops/selective_scan.h scan_params_fp32):
// A_log (E, N), D and Δ's bias (E) or undefined, of one dtype (fp32/fp16/bf16), contiguous, on one device.
bool scan_params_fp32_supported(const at::Tensor& A_log, const at::Tensor& D, const at::Tensor& delta_bias);
ScanParams32 scan_params_fp32_cuda(const at::Tensor& A_log, const at::Tensor& D, const at::Tensor& delta_bias);

// Decode steps (ops/causal_conv1d.h causal_conv1d_step, ops/selective_scan.h selective_scan_step):
// one launch each. Activations fp32/fp16/bf16 in (B, ·) rows with unit inner stride; weights fp32
// or the activations' dtype (all of one op's weights alike); the scan state fp32 contiguous.
// inputs_settled: ScanStepParams::inputs_settled's promise (only selective_scan_step_projected,
// right after its own x_proj kernel, makes it).
bool conv_step_supported(const at::Tensor& state, const at::Tensor& x, const at::Tensor& weight,
                         const at::Tensor& bias);
at::Tensor causal_conv1d_step_cuda(at::Tensor& state, const at::Tensor& x, const at::Tensor& weight,
                                   const at::Tensor& bias, bool silu);
bool scan_step_supported(const at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                         const at::Tensor& A, const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
                         const at::Tensor& z, const at::Tensor& delta_bias, const at::Tensor& delta_proj = {});
at::Tensor selective_scan_step_cuda(at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                                    const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                    const at::Tensor& D, const at::Tensor& z, const at::Tensor& delta_bias,
                                    bool delta_softplus, bool a_is_log, const at::Tensor& delta_proj = {},
                                    bool inputs_settled = false);
// The few-row linear layer (ops/decode_linear.h): x (rows ≤ 8, in) with unit inner stride, weight
// (out, in) with unit inner stride, bias (out) or undefined, all CUDA tensors of one kernel dtype.
bool decode_linear_supported(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
at::Tensor decode_linear_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
// The same after the residual add + RMSNorm (ops/decode_linear.h add_rms_norm_decode_linear):
// residual_in (rows ≤ 8, D) fp32 contiguous, prev like it in the weight's dtype or undefined, the norm
// weight fp32 or the weight's dtype, rows·D elements of the weight's dtype within 48 KB.
// Returns {out, residual_out}.
// embed, when given (residual_in then undefined): the rows entering the norm are the embedding
// table's (V, D; the weight's dtype, unit inner stride) rows picked by token_ids ((rows) int64, any
// stride), widened to fp32 (ops/decode_linear.h NormInput); an id outside [0, V) is a device error.
struct EmbeddingRows {
  at::Tensor token_ids, table;
};
bool add_norm_decode_linear_supported(const at::Tensor& residual_in, const at::Tensor& prev,
                                      const at::Tensor& norm_weight, const at::Tensor& weight, const at::Tensor& bias,
                                      const EmbeddingRows* embed = nullptr);
// conv, when given: also the conv step of out's first E columns (ops/decode_linear.h
// add_rms_norm_decode_linear_conv_step), for the operands norm_conv_step_supported takes: a conv
// state (rows, E ≤ out, K − 1), conv weight (E, K ≤ 4) with unit time stride and bias (E) or
// undefined, all of the weight's dtype on its device.
struct ConvStepOperands {
  at::Tensor* state = nullptr;
  at::Tensor weight, bias;
  bool silu = true;
};
bool norm_conv_step_supported(const ConvStepOperands& conv, const at::Tensor& weight, int64_t rows);
// argmax, when given (not with conv): the LM head's greedy selection (ops/decode_linear.h
// add_rms_norm_decode_linear_argmax) for the operands norm_argmax_supported takes: logits (rows,
// out) fp32 contiguous receives the product, tokens (rows) int64 contiguous the first column of
// each row's maximum among the first `columns`, workspace (rows + 1) int64 contiguous zeros (left
// zeroed). No residual comes back (undefined).
struct ArgmaxOperands {
  at::Tensor* logits = nullptr;
  at::Tensor* tokens = nullptr;
  at::Tensor* workspace = nullptr;
  int64_t columns = 0;
};
bool norm_argmax_supported(const ArgmaxOperands& argmax, const at::Tensor& weight, int64_t rows);
// ops::widen_argmax's kernel (decode_linear_params.h): values (rows ≤ 65535, columns) fp32/fp16/bf16 with unit
// column stride on CUDA, and argmax's operands as norm_argmax_supported takes them for `columns` outputs.
bool widen_argmax_supported(const at::Tensor& values, const ArgmaxOperands& argmax);
void widen_argmax_cuda(const at::Tensor& values, const ArgmaxOperands& argmax);
std::pair<at::Tensor, at::Tensor> add_norm_decode_linear_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                              const at::Tensor& norm_weight, double eps,
                                                              const at::Tensor& weight, const at::Tensor& bias,
                                                              const ConvStepOperands* conv = nullptr,
                                                              const ArgmaxOperands* argmax = nullptr,
                                                              const EmbeddingRows* embed = nullptr);

// Row-wise LM-head cross-entropy (ops/chunked_cross_entropy.h, cross_entropy_rows): per-row
// loss in fp32, and with write_grad the logits overwritten by (softmax − one-hot)·grad_scale.
bool cross_entropy_rows_supported(const at::Tensor& logits);
at::Tensor cross_entropy_rows_cuda(const at::Tensor& logits, const at::Tensor& targets, double grad_scale,
                                   bool write_grad);

// Gradient of a token-embedding table (ops/embedding.h, embedding_backward): (vocab, dim) fp32 sums of
// grad's rows per id, in input order (deterministic), every row written.
bool embedding_backward_supported(const at::Tensor& grad, const at::Tensor& ids, int64_t vocab);
at::Tensor embedding_backward_cuda(const at::Tensor& grad, const at::Tensor& ids, int64_t vocab);

// The SDM channel gate's mask (ops/channel_gate.h), differentiable in log_alpha: one kernel each
// way, the noise formed in the kernel from the key. Supported: log_alpha fp32, contiguous, (E/g), CUDA.
bool channel_gate_supported(const at::Tensor& log_alpha);
at::Tensor channel_gate_cuda(const at::Tensor& log_alpha, std::optional<uint64_t> noise_key, GateType type,
                             double temperature, int64_t block);

}  // namespace mcd::ops::cuda
