// The Mamba-1 language model (METHOD.md §1) as LibTorch modules whose parameter names are
// HuggingFace's (`backbone.layers.{i}.mixer.in_proj.weight`, …), so checkpoints map 1:1.
// Full-sequence forward for training and prefill, and a recurrent step mode for decoding.
// Sequence ops (conv, scan) come from ops/, which pick the CPU reference or device code.
// The seams the co-design stages use: channel slots (channel_surgery.h), projection adapters
// (projection_adapter.h), the u observer (CSP calibration) and the SDM gates.
#pragma once

#include <functional>

#include "config/model_config.h"
#include "model/channel_gate.h"
#include "model/channel_slot.h"
#include "model/projection_adapter.h"
#include "ops/decode_linear.h"
#include "ops/selective_scan.h"
#include "util/torch_compat.h"

namespace mcd::ops {
struct ScanInputs;  // ops/selective_scan.h
}

namespace mcd {

// Recurrent state of one layer: the last K−1 conv inputs and the SSM state.
struct LayerState {
  at::Tensor conv;  // (B, E, K−1)
  at::Tensor ssm;   // (B, E, N), float32 (float64 for a float64 model)
};

// Preallocated by MambaLMImpl::new_cache; prefill and step update it in place (the tensors keep
// their storage, so a captured CUDA graph can replay a step on it).
struct InferenceCache {
  std::vector<LayerState> layers;
  int64_t seqlen = 0;  // tokens consumed so far
  void reset();        // zero every state in place, seqlen = 0
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);  // (…, D): normalised in float32, returned in x's dtype
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

class MambaMixerImpl : public torch::nn::Module {
 public:
  MambaMixerImpl(const ModelConfig& config, int64_t d_inner);
  // hidden: (B, L, D) → (B, L, D). When `state` is given, it receives the final conv/SSM state.
  at::Tensor forward(const at::Tensor& hidden, LayerState* state = nullptr);
  // The same from in_proj's output xz (B, L, 2E): for a caller that ran in_proj itself (the
  // backbone's norm + in_proj as one op, ops::add_rms_norm_linear). in_proj_is_plain(): no adapter
  // on in_proj, so in_proj is its weight and bias alone.
  at::Tensor forward_projected(const at::Tensor& xz, LayerState* state = nullptr);
  bool in_proj_is_plain() const { return !in_adapter_; }
  // Whether forward(hidden) takes the channel-major prefill ([Note: channel-major prefill] below).
  bool channel_major_prefill_applies(const at::Tensor& hidden) const;
  // hidden: (B, D) → (B, D), advancing `state` by one token.
  at::Tensor step(const at::Tensor& hidden, LayerState& state);
  // The same from the block's input before its norm: residual ← residual + pending, and the norm
  // goes into in_proj's kernel (ops::add_rms_norm_decode_linear) unless an adapter or autocast takes
  // in_proj or the dtypes differ; then add_rms_norm and step, as before. With ops option
  // decode_fused_conv, the conv step goes into that kernel too (ops::add_rms_norm_decode_linear_conv_step).
  // The first block's residual may come in as its token embeddings (ops::NormInput::embedded, pending
  // undefined): that kernel then gathers them itself, and residual receives them widened to fp32.
  at::Tensor step_from_residual(const ops::NormInput& residual_in, at::Tensor& residual, const at::Tensor& pending,
                                const RMSNorm& norm, LayerState& st);
  at::Tensor step_from_residual(at::Tensor& residual, const at::Tensor& pending, const RMSNorm& norm,
                                LayerState& state);
  // xz = in_proj(hidden) (B, 2E) → (B, D).
  at::Tensor step_projected(const at::Tensor& xz, LayerState& state);
  // The rest of the step after the conv: u = the conv step's output (B, E) (state.conv advanced), z (B, E).
  at::Tensor step_convolved(at::Tensor u, const at::Tensor& z, LayerState& state);
  LayerState empty_state(int64_t batch, const at::TensorOptions& options) const;

  // Adapter on in_proj or out_proj (nullptr removes it); registered as "<proj>_adapter".
  void set_adapter(Projection which, ProjectionAdapter adapter);
  const ProjectionAdapter& adapter(Projection which) const;
  // Every tensor indexed by the inner channel: the mixer's own, its gate's and its adapters'.
  std::vector<ChannelSlot> channel_slots();
  // Calibration hook (CSP): when set, forward() takes the op-by-op path and calls it with u
  // (B, E, L), after conv, SiLU and the SDM gate, i.e. what x_proj and the scan see.
  std::function<void(const at::Tensor&)> u_observer;

  int64_t d_model, d_inner, d_state, d_conv, dt_rank;
  torch::nn::Linear in_proj{nullptr};   // (2E, D)
  torch::nn::Conv1d conv1d{nullptr};    // weight (E, 1, K), bias (E)
  torch::nn::Linear x_proj{nullptr};    // (R + 2N, E)
  torch::nn::Linear dt_proj{nullptr};   // (E, R), bias (E)
  torch::nn::Linear out_proj{nullptr};  // (D, E)
  at::Tensor A_log;                     // (E, N)
  at::Tensor D;                         // (E)
  ChannelGate gate{nullptr};            // SDM gate on u, when the config has gates

 private:
  at::Tensor conv_weight() const;  // (E, K)
  at::Tensor conv_bias() const;    // (E), or undefined without a bias
  // The scan's fp32 parameters: A = −exp(A_log), D and Δ's bias. Without gradients to them (an
  // inference pass, or frozen during fine-tuning) they are kept from one call to the next while
  // A_log, D and the bias keep the same storage at the same version (no in-place update, no
  // `to()` since), so an eager prefill of a bf16 model runs no conversion kernels per layer; never
  // kept while a CUDA graph is captured (a replay must see later in-place updates): there one kernel
  // forms all three (ops::scan_params_fp32), which also fills the memo (the same values both ways).
  using ScanParams32 = ops::ScanParams32;
  ScanParams32 scan_params_fp32();
  struct SourceStamp {  // a parameter's storage (held, so it cannot be freed and reused) and version
    at::Storage storage;
    int64_t offset = -1, version = -1;
    at::ScalarType dtype = at::kFloat;
  };
  struct ScanParamsMemo {
    SourceStamp A_log, D, bias;
    ScanParams32 value;
  };
  static SourceStamp stamp_of(const at::Tensor& t);
  static bool same_source(const SourceStamp& s, const at::Tensor& t);
  ScanParamsMemo scan_params_memo_;
  // [Note: channel-major prefill] An inference forward (no gradients) on CUDA at small B·E runs
  // in the layout mamba-ssm uses: in_proj's product written as (B, 2E, L), so x, z, the conv
  // output u, Δ = dt_proj·x_dblᵀ and the scan output are time-contiguous (B, E, L) and B, C rows
  // of x_dblᵀ (B, N, L) — the scan's block forward reads them with 16-byte loads (the layout
  // ops::scan_prefers_time_contiguous asks for). Same products as the other paths, oriented the
  // other way (each an at::mm_out per batch row); no transposing copies. Adapters enter through
  // their effective weights while exact; the SDM gate as the scan's mask folded into x_proj.
  at::Tensor forward_channel_major(const at::Tensor& hidden, LayerState* state);
  // The conv (SiLU) and the scan of a prefill (both prefill paths); with `state`, also x's conv state
  // and the scan's final SSM state, written into the state.
  at::Tensor conv_into_state(const at::Tensor& x, LayerState* state);  // x (B, E, L)
  at::Tensor scan_into_state(const ops::ScanInputs& in, LayerState* state);
  at::Tensor project_in(const at::Tensor& hidden);  // (…, D) → (…, 2E), through the adapter if any
  at::Tensor project_out(const at::Tensor& y);      // (…, E) → (…, D), through the adapter if any
  // The same for a decode step's (B, ·) rows: ops::decode_linear unless an adapter or autocast's
  // linear applies (those keep their own path).
  at::Tensor project_in_step(const at::Tensor& hidden);
  at::Tensor project_out_step(const at::Tensor& y);
  ProjectionAdapter in_adapter_, out_adapter_;
};
TORCH_MODULE(MambaMixer);

class MambaBlockImpl : public torch::nn::Module {
 public:
  MambaBlockImpl(const ModelConfig& config, int64_t d_inner);
  RMSNorm norm{nullptr};
  MambaMixer mixer{nullptr};
};
TORCH_MODULE(MambaBlock);

class MambaBackboneImpl : public torch::nn::Module {
 public:
  explicit MambaBackboneImpl(const ModelConfig& config);
  // input_ids: (B, L) int64 → final-normed hidden states (B, L, D). `residuals`, when given,
  // receives the residual stream after each layer (HF's hidden_states without the last).
  at::Tensor forward(const at::Tensor& input_ids, InferenceCache* cache = nullptr,
                     std::vector<at::Tensor>* residuals = nullptr);
  at::Tensor step(const at::Tensor& token_ids, InferenceCache& cache);  // (B) → (B, D)
  // The same step up to the final norm: the residual stream (B, D) and the last block's output
  // (B, D), whose add + norm_f step() then applies (a caller may fuse them with what follows).
  struct StepTail {
    at::Tensor residual, pending;
  };
  StepTail step_blocks(const at::Tensor& token_ids, InferenceCache& cache);
  // The SDM gate of every layer (empty when the config has none).
  std::vector<ChannelGate> gates() const;
  // Sets (or, with an empty function, clears) every mixer's u observer: observer(layer, u).
  void set_u_observer(const std::function<void(int64_t, const at::Tensor&)>& observer);

  ModelConfig config;
  torch::nn::Embedding embeddings{nullptr};  // (V, D)
  torch::nn::ModuleList layers{nullptr};
  std::vector<MambaBlock> blocks;            // typed views of `layers`
  RMSNorm norm_f{nullptr};
};
TORCH_MODULE(MambaBackbone);

class MambaLMImpl : public torch::nn::Module {
 public:
  explicit MambaLMImpl(const ModelConfig& config);
  at::Tensor forward(const at::Tensor& input_ids);         // (B, L) → logits (B, L, V) float32
  at::Tensor logits_from_hidden(const at::Tensor& hidden);  // (…, D) → (…, V) float32
  // Mean shifted cross-entropy (token t predicts t+1) over all B·(L−1) predictions.
  at::Tensor loss(const at::Tensor& input_ids);
  InferenceCache new_cache(int64_t batch) const;
  // Prefill: consumes input_ids (B, L), fills `cache`, returns logits of the last token (B, V).
  at::Tensor prefill(const at::Tensor& input_ids, InferenceCache& cache);
  at::Tensor step(const at::Tensor& token_ids, InferenceCache& cache);  // (B) → (B, V)
  // The same step writing its logits into `logits` (B, V) float32: no host synchronisation and
  // every buffer fixed (cache, token_ids, logits), so a CUDA graph can capture and replay it.
  void step_into(const at::Tensor& token_ids, InferenceCache& cache, at::Tensor& logits);
  // step_into followed by greedy selection: next_tokens (B) int64 receives the argmax of each row's
  // logits over the real vocabulary (config().real_vocab_size(); the embedding's padding rows are
  // never produced). workspace: (B + 1) int64 zeros, kept by the caller for every call (the fused
  // head's scratch, ops/decode_linear.h add_rms_norm_decode_linear_argmax). token_ids and
  // next_tokens may be one tensor (the step reads its tokens before it writes the next ones).
  void step_greedy_into(const at::Tensor& token_ids, InferenceCache& cache, at::Tensor& logits,
                        at::Tensor& next_tokens, at::Tensor& workspace);
  const ModelConfig& config() const { return backbone->config; }

  MambaBackbone backbone{nullptr};
  torch::nn::Linear lm_head{nullptr};  // only when the head is not tied
  const at::Tensor& head_weight() const;  // (V, D): lm_head's, or the tied embedding's

 private:
  at::Tensor step_logits(const MambaBackboneImpl::StepTail& tail);  // final add + norm + head → (B, V) float
  // A decode step runs the final norm with the head (and a greedy step its argmax) as one op: ops
  // option decode_fused_head on and the norm weight in the head's dtype (else the normed rows would
  // be cast first, not the fused op's form).
  bool fuses_head() const;
};
TORCH_MODULE(MambaLM);

// The reference initialisation (METHOD.md §1), deterministic given the seed.
void init_reference(MambaLMImpl& model, uint64_t seed);
void init_reference(MambaBackboneImpl& backbone, uint64_t seed);

// Mean shifted cross-entropy of logits (B, L, V) against input_ids (B, L).
at::Tensor shifted_cross_entropy(const at::Tensor& logits, const at::Tensor& input_ids);

}  // namespace mcd
