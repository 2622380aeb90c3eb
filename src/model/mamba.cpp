// Mamba-1 modules (see mamba.h): the mixer's data flow follows METHOD.md §1 line by line.
#include "model/mamba.h"

#include <cmath>

#include "ops/add_rms_norm.h"
#include "ops/autocast_linear.h"
#include "ops/causal_conv1d.h"
#include "ops/chunked_cross_entropy.h"
#include "ops/decode_linear.h"
#include "ops/embedding.h"
#include "ops/gradient_wanted.h"
#include "ops/graph_capture.h"
#include "ops/mamba_inner.h"
#include "ops/options.h"
#include "ops/selective_scan.h"
#include "util/error.h"

namespace mcd {
namespace F = torch::nn::functional;

// ------------------------------------------------------------------------------------ RMSNorm

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) { return ops::rms_norm_composite(x, weight, eps); }

// -------------------------------------------------------------------------------------- Mixer

MambaMixerImpl::MambaMixerImpl(const ModelConfig& c, int64_t e)
    : d_model(c.d_model), d_inner(e), d_state(c.d_state), d_conv(c.d_conv),
      dt_rank(c.resolved_dt_rank()) {
  using torch::nn::Conv1dOptions;
  using torch::nn::LinearOptions;
  in_proj = register_module("in_proj", torch::nn::Linear(LinearOptions(d_model, 2 * e).bias(c.use_bias)));
  conv1d = register_module(
      "conv1d", torch::nn::Conv1d(Conv1dOptions(e, e, d_conv).groups(e).padding(d_conv - 1).bias(c.use_conv_bias)));
  x_proj = register_module("x_proj", torch::nn::Linear(LinearOptions(e, dt_rank + 2 * d_state).bias(false)));
  dt_proj = register_module("dt_proj", torch::nn::Linear(LinearOptions(dt_rank, e).bias(true)));
  out_proj = register_module("out_proj", torch::nn::Linear(LinearOptions(e, d_model).bias(c.use_bias)));
  A_log = register_parameter(
      "A_log", torch::log(torch::arange(1, d_state + 1, torch::kFloat)).repeat({e, 1}));
  D = register_parameter("D", torch::ones({e}));
  if (!c.gate_type.empty())
    gate = register_module("gate", ChannelGate(e, c.gate_block, parse_gate_type(c.gate_type), c.gate_init));
}

at::Tensor MambaMixerImpl::conv_weight() const { return conv1d->weight.squeeze(1); }
at::Tensor MambaMixerImpl::conv_bias() const { return conv1d->options.bias() ? conv1d->bias : at::Tensor(); }

void MambaMixerImpl::set_adapter(Projection which, ProjectionAdapter a) {
  ProjectionAdapter& slot = which == Projection::kIn ? in_adapter_ : out_adapter_;
  const std::string name = std::string(projection_name(which)) + "_adapter";
  if (slot) unregister_module(name);
  slot = a ? register_module(name, a) : nullptr;
}

const ProjectionAdapter& MambaMixerImpl::adapter(Projection which) const {
  return which == Projection::kIn ? in_adapter_ : out_adapter_;
}

std::vector<ChannelSlot> MambaMixerImpl::channel_slots() {
  std::vector<ChannelSlot> s;
  auto add = [&](const std::string& name, const at::Tensor& t, int64_t dim, int64_t copies = 1, int64_t group = 1) {
    if (t.defined()) s.push_back({name, t, dim, copies, group});
  };
  add("in_proj.weight", in_proj->weight, 0, 2);  // rows c (x) and E + c (z)
  if (in_proj->options.bias()) add("in_proj.bias", in_proj->bias, 0, 2);
  add("conv1d.weight", conv1d->weight, 0);
  if (conv1d->options.bias()) add("conv1d.bias", conv1d->bias, 0);
  add("x_proj.weight", x_proj->weight, 1);
  add("dt_proj.weight", dt_proj->weight, 0);
  add("dt_proj.bias", dt_proj->bias, 0);
  add("A_log", A_log, 0);
  add("D", D, 0);
  add("out_proj.weight", out_proj->weight, 1);  // its bias is D-indexed
  if (gate) add("gate.log_alpha", gate->log_alpha, 0, 1, gate->block);
  for (Projection p : {Projection::kIn, Projection::kOut})
    if (const auto& a = adapter(p))
      for (ChannelSlot c : a->channel_slots()) {
        c.name = std::string(projection_name(p)) + "_adapter." + c.name;
        s.push_back(std::move(c));
      }
  return s;
}

at::Tensor MambaMixerImpl::project_in(const at::Tensor& hidden) {
  const at::Tensor bias = in_proj->options.bias() ? in_proj->bias : at::Tensor();
  if (in_adapter_) return in_adapter_->forward(hidden, in_proj->weight, bias);
  // Under CUDA autocast the weight gradient leaves its product in fp32 (ops/autocast_linear.h).
  if (ops::autocast_linear_applies(hidden, in_proj->weight)) return ops::autocast_linear(hidden, in_proj->weight, bias);
  return in_proj->forward(hidden);
}

at::Tensor MambaMixerImpl::project_out(const at::Tensor& y) {
  if (out_adapter_)
    return out_adapter_->forward(y, out_proj->weight, out_proj->options.bias() ? out_proj->bias : at::Tensor());
  return out_proj->forward(y);
}
at::Tensor MambaMixerImpl::project_in_step(const at::Tensor& hidden) {
  if (in_adapter_ || ops::autocast_linear_applies(hidden, in_proj->weight)) return project_in(hidden);
  return ops::decode_linear(hidden, in_proj->weight, in_proj->options.bias() ? in_proj->bias : at::Tensor());
}

at::Tensor MambaMixerImpl::project_out_step(const at::Tensor& y) {
  if (out_adapter_) return project_out(y);
  return ops::decode_linear(y, out_proj->weight, out_proj->options.bias() ? out_proj->bias : at::Tensor());
}

MambaMixerImpl::SourceStamp MambaMixerImpl::stamp_of(const at::Tensor& t) {
  return {t.storage(), t.storage_offset(), int64_t(t._version()), t.scalar_type()};
}
bool MambaMixerImpl::same_source(const SourceStamp& s, const at::Tensor& t) {
  return s.storage && s.storage.unsafeGetStorageImpl() == t.storage().unsafeGetStorageImpl() &&
         s.offset == t.storage_offset() && s.version == int64_t(t._version()) && s.dtype == t.scalar_type();
}

MambaMixerImpl::ScanParams32 MambaMixerImpl::scan_params_fp32() {
  const at::Tensor& bias = dt_proj->bias;
  auto fresh = [&] { return ops::scan_params_fp32(A_log, D, bias); };  // differentiable where gradients are wanted
  const bool grads = ops::gradient_wanted(A_log, D, bias);
  if (grads || ops::capturing_cuda_graph()) return fresh();
  ScanParamsMemo& m = scan_params_memo_;
  if (!(same_source(m.A_log, A_log) && same_source(m.D, D) && same_source(m.bias, bias)))
    m = ScanParamsMemo{stamp_of(A_log), stamp_of(D), stamp_of(bias), fresh()};
  return m.value;
}

LayerState MambaMixerImpl::empty_state(int64_t batch, const at::TensorOptions& options) const {
  const auto state_dtype = options.dtype() == at::kDouble ? at::kDouble : at::kFloat;
  return {torch::zeros({batch, d_inner, d_conv - 1}, options),
          torch::zeros({batch, d_inner, d_state}, options.dtype(state_dtype))};
}

at::Tensor MambaMixerImpl::forward(const at::Tensor& hidden, LayerState* state) {
  MCD_CHECK(hidden.dim() == 3 && hidden.size(2) == d_model, "mixer: hidden must be (B, L, D=",
            d_model, "), got ", hidden.sizes());
  if (channel_major_prefill_applies(hidden)) return forward_channel_major(hidden, state);
  return forward_projected(project_in(hidden), state);
}

bool MambaMixerImpl::channel_major_prefill_applies(const at::Tensor& hidden) const {
  if (!hidden.is_cuda() || at::GradMode::is_enabled() || u_observer || hidden.scalar_type() == at::kDouble ||
      cuda_autocast_enabled() || x_proj->options.bias())
    return false;
  if (in_adapter_ && !in_adapter_->weight_form_is_exact()) return false;
  if (out_adapter_ && !out_adapter_->weight_form_is_exact()) return false;
  const auto w = in_proj->weight.scalar_type();
  if (hidden.scalar_type() != w || x_proj->weight.scalar_type() != w || dt_proj->weight.scalar_type() != w ||
      out_proj->weight.scalar_type() != w)
    return false;
  return ops::scan_prefers_time_contiguous(hidden.size(0), d_inner, d_state, hidden.device());
}

at::Tensor MambaMixerImpl::forward_channel_major(const at::Tensor& hidden, LayerState* state) {
  const int64_t B = hidden.size(0), L = hidden.size(1), E = d_inner, N = d_state, R = dt_rank;
  const auto opt = hidden.options();
  const at::Tensor in_b = in_proj->options.bias() ? in_proj->bias : at::Tensor();
  const at::Tensor W_in = in_adapter_ ? in_adapter_->effective_weight(in_proj->weight) : in_proj->weight;
  const at::Tensor b_in = in_adapter_ ? in_adapter_->effective_bias(in_b) : in_b;
  // a·b into dst, a view of a preallocated tensor (each batch row's product lands in place)
  auto mm_into = [](at::Tensor dst, const at::Tensor& a, const at::Tensor& b) { at::mm_out(dst, a, b); };
  at::Tensor xz = at::empty({B, 2 * E, L}, opt);  // in_proj(hidden)ᵀ per row: x then z, time-contiguous
  for (int64_t b = 0; b < B; ++b) mm_into(xz[b], W_in, hidden[b].t());
  if (b_in.defined()) xz.add_(b_in.view({1, 2 * E, 1}));
  const at::Tensor x = xz.narrow(1, 0, E), z = xz.narrow(1, E, E);  // (B, E, L)
  const at::Tensor u = conv_into_state(x, state);  // (B, E, L), x's layout
  const at::Tensor mask = gate ? gate->forward().to(at::kFloat) : at::Tensor();          // (E)
  const at::Tensor W_x = gate ? x_proj->weight * mask.to(x_proj->weight.scalar_type()).unsqueeze(0) : x_proj->weight;
  at::Tensor x_dbl = at::empty({B, R + 2 * N, L}, opt);  // x_proj(m⊙u)ᵀ: Δ's low-rank rows, then B, then C
  at::Tensor delta = at::empty({B, E, L}, opt);
  for (int64_t b = 0; b < B; ++b) {
    mm_into(x_dbl[b], W_x, u[b]);
    mm_into(delta[b], dt_proj->weight, x_dbl[b].narrow(0, 0, R));
  }
  const ScanParams32 sp = scan_params_fp32();
  ops::ScanInputs in;
  in.u = u;
  in.delta = delta;
  in.A = sp.A;
  in.B = x_dbl.narrow(1, R, N);      // (B, N, L)
  in.C = x_dbl.narrow(1, R + N, N);  // (B, N, L)
  in.D = sp.D;
  in.z = z;
  in.delta_bias = sp.delta_bias;
  in.mask = mask;
  in.delta_softplus = true;
  const at::Tensor y = scan_into_state(in, state);  // (B, E, L), u's layout
  const at::Tensor out_b = out_proj->options.bias() ? out_proj->bias : at::Tensor();
  const at::Tensor W_out = out_adapter_ ? out_adapter_->effective_weight(out_proj->weight) : out_proj->weight;
  const at::Tensor b_out = out_adapter_ ? out_adapter_->effective_bias(out_b) : out_b;
  at::Tensor out = at::empty({B, L, d_model}, opt);
  for (int64_t b = 0; b < B; ++b) mm_into(out[b], y[b].t(), W_out.t());
  if (b_out.defined()) out.add_(b_out);
  return out;
}

at::Tensor MambaMixerImpl::forward_projected(const at::Tensor& xz, LayerState* state) {
  const int64_t E = d_inner, N = d_state, R = dt_rank;
  MCD_CHECK(xz.dim() == 3 && xz.size(2) == 2 * E, "mixer: in_proj's output must be (B, L, 2E=", 2 * E, "), got ",
            xz.sizes());
  const bool out_weight_exact = !out_adapter_ || out_adapter_->weight_form_is_exact();
  if (!state && !u_observer && xz.is_cuda() && xz.scalar_type() != at::kDouble && ops::fused_mixer_enabled()) {
    // The fused mixer (ops/mamba_inner.h): saves xz and x_dbl; recomputes u, Δ and y in the backward.
    // It consumes out_proj's weight itself, so an adapter on out_proj enters as its effective weight;
    // one whose training output is no weight (LoRA dropout) gets y from the node and runs itself.
    // The SDM gate m enters as the scan's mask (the scan and the D skip see m⊙u) and folded into
    // x_proj's columns (x_proj(m⊙u) = (W_x⊙m)·u); its gradient flows through both.
    const at::Tensor out_b = out_proj->options.bias() ? out_proj->bias : at::Tensor();
    const at::Tensor mask = gate ? gate->forward().to(at::kFloat) : at::Tensor();  // (E)
    const ScanParams32 sp = scan_params_fp32();
    ops::MambaInnerWeights w{conv_weight(),
                             conv_bias(),
                             gate ? x_proj->weight * mask.to(x_proj->weight.scalar_type()).unsqueeze(0) : x_proj->weight,
                             dt_proj->weight,
                             sp.delta_bias,
                             sp.A,
                             sp.D,
                             !out_weight_exact ? at::Tensor()
                             : out_adapter_    ? out_adapter_->effective_weight(out_proj->weight)
                                               : out_proj->weight,
                             !out_weight_exact ? at::Tensor() : out_adapter_ ? out_adapter_->effective_bias(out_b) : out_b};
    w.mask = mask;
    if (ops::mamba_inner_supported(xz, w)) {
      const at::Tensor out = ops::mamba_inner(xz, w);  // (B, L, D), or y (B, L, E) without out_proj
      return out_weight_exact ? out : project_out(out);
    }
  }
  // split, not narrow: its backward writes the two gradients into one (B, L, 2E) buffer in one
  // pass, where each narrow's backward would zero a full-size buffer and the two be added.
  const auto xz_parts = xz.split(E, 2);
  const at::Tensor x = xz_parts[0].transpose(1, 2);              // (B, E, L)
  const at::Tensor z = xz_parts[1].transpose(1, 2);              // (B, E, L)
  at::Tensor u = conv_into_state(x, state);                      // (B, E, L)
  if (gate) u = u * gate->forward().to(u.scalar_type()).view({1, E, 1});  // SDM: before x_proj and the scan
  if (u_observer) u_observer(u);
  const at::Tensor x_dbl = x_proj->forward(u.transpose(1, 2));   // (B, L, R + 2N)
  const auto dbl_parts = x_dbl.split_with_sizes({R, N, N}, 2);
  const at::Tensor delta = F::linear(dbl_parts[0], dt_proj->weight).transpose(1, 2);  // (B, E, L)
  const ScanParams32 sp = scan_params_fp32();
  ops::ScanInputs in;
  in.u = u;
  in.delta = delta;
  in.A = sp.A;
  in.B = dbl_parts[1].transpose(1, 2);                           // (B, N, L)
  in.C = dbl_parts[2].transpose(1, 2);                           // (B, N, L)
  in.D = sp.D;
  in.z = z;
  in.delta_bias = sp.delta_bias;
  in.delta_softplus = true;
  if (xz.scalar_type() == at::kDouble) {  // float64 end to end for gradient checks
    in.A = -torch::exp(A_log);
    in.D = D;
    in.delta_bias = dt_proj->bias;
  }
  const at::Tensor y = scan_into_state(in, state);              // (B, E, L)
  return project_out(y.transpose(1, 2));                         // (B, L, D)
}

// Both write into the cache's own buffers when it has them (new_cache preallocates): a decoder that
// captured a step in a CUDA graph reads these very tensors. On CUDA the kernels write them (no copy).
at::Tensor MambaMixerImpl::conv_into_state(const at::Tensor& x, LayerState* state) {
  if (state && state->conv.defined() && state->conv.sizes() == at::IntArrayRef{x.size(0), x.size(1), d_conv - 1})
    return ops::causal_conv1d_with_final_state(x, conv_weight(), conv_bias(), /*silu=*/true, state->conv);
  if (state) state->conv = ops::causal_conv1d_final_state(x, d_conv);
  return ops::causal_conv1d(x, conv_weight(), conv_bias(), /*silu=*/true);
}

at::Tensor MambaMixerImpl::scan_into_state(const ops::ScanInputs& in, LayerState* state) {
  if (!state) return ops::selective_scan(in);
  const bool ssm_slot =
      state->ssm.defined() && state->ssm.sizes() == at::IntArrayRef{in.u.size(0), in.u.size(1), in.A.size(1)};
  auto [y, last] = ops::selective_scan_with_state(in, ssm_slot ? state->ssm : at::Tensor());
  if (!ssm_slot) state->ssm = last;
  return y;
}

at::Tensor MambaMixerImpl::step(const at::Tensor& hidden, LayerState& st) {
  MCD_CHECK(hidden.dim() == 2 && hidden.size(1) == d_model, "mixer step: hidden must be (B, D=",
            d_model, "), got ", hidden.sizes());
  return step_projected(project_in_step(hidden), st);
}

at::Tensor MambaMixerImpl::step_from_residual(at::Tensor& residual, const at::Tensor& pending, const RMSNorm& norm,
                                              LayerState& st) {
  const at::Tensor in = residual;
  return step_from_residual(in, residual, pending, norm, st);
}

at::Tensor MambaMixerImpl::step_from_residual(const ops::NormInput& residual_in, at::Tensor& residual,
                                              const at::Tensor& pending, const RMSNorm& norm, LayerState& st) {
  const at::Tensor& shape_of = residual_in.token_ids.defined() ? residual_in.embedding : residual_in.residual;
  MCD_CHECK(shape_of.dim() == 2 && shape_of.size(1) == d_model, "mixer step: residual must be (B, D=", d_model,
            "), got ", shape_of.sizes());
  const bool fuse = !in_adapter_ && !ops::autocast_linear_applies(shape_of, in_proj->weight) &&
                    norm->weight.scalar_type() == in_proj->weight.scalar_type();
  if (!fuse) {
    const ops::AddNormOut n =
        ops::add_rms_norm(residual_in.dense(), pending, norm->weight, norm->eps, norm->weight.scalar_type());
    residual = n.residual;
    return step(n.normed, st);
  }
  const at::Tensor in_bias = in_proj->options.bias() ? in_proj->bias : at::Tensor();
  if (ops::ops_options().decode_fused_conv) {  // the conv step inside in_proj's kernel: u and z come back
    ops::NormConvOut r = ops::add_rms_norm_decode_linear_conv_step(residual_in, pending, norm->weight, norm->eps,
                                                                   in_proj->weight, in_bias, st.conv, conv_weight(),
                                                                   conv_bias(), /*silu=*/true);
    residual = r.residual;
    return step_convolved(r.u, r.rest, st);
  }
  ops::NormLinearOut r =
      ops::add_rms_norm_decode_linear(residual_in, pending, norm->weight, norm->eps, in_proj->weight, in_bias);
  residual = r.residual;
  return step_projected(r.out, st);
}

at::Tensor MambaMixerImpl::step_projected(const at::Tensor& xz, LayerState& st) {
  const int64_t E = d_inner;
  MCD_CHECK(xz.dim() == 2 && xz.size(1) == 2 * E, "mixer step: xz must be (B, 2E=", 2 * E, "), got ", xz.sizes());
  const at::Tensor u = ops::causal_conv1d_step(st.conv, xz.narrow(1, 0, E), conv_weight(), conv_bias(), true);
  return step_convolved(u, xz.narrow(1, E, E), st);
}

at::Tensor MambaMixerImpl::step_convolved(at::Tensor u, const at::Tensor& z, LayerState& st) {
  if (gate) u = u * gate->forward().to(u.scalar_type()).unsqueeze(0);
  // x_proj, then the step with dt_proj inside it (delta_proj: Δ's low-rank rows go in as they are).
  const at::Tensor y = ops::selective_scan_step_projected(st.ssm, u, x_proj->weight, A_log, D, z, dt_proj->bias,
                                                          /*delta_softplus=*/true, /*a_is_log=*/true, dt_proj->weight);
  return project_out_step(y);                                    // (B, D)
}

// ----------------------------------------------------------------------------------- Backbone

MambaBlockImpl::MambaBlockImpl(const ModelConfig& c, int64_t d_inner) {
  norm = register_module("norm", RMSNorm(c.d_model, c.norm_eps));
  mixer = register_module("mixer", MambaMixer(c, d_inner));
}

MambaBackboneImpl::MambaBackboneImpl(const ModelConfig& c) : config(c) {
  config.validate("model config");
  embeddings = register_module("embeddings", torch::nn::Embedding(c.vocab_size, c.d_model));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < c.n_layer; ++l) {
    blocks.push_back(MambaBlock(c, c.inner_width(l)));
    layers->push_back(blocks.back());
  }
  norm_f = register_module("norm_f", RMSNorm(c.d_model, c.norm_eps));
}

at::Tensor MambaBackboneImpl::forward(const at::Tensor& input_ids, InferenceCache* cache,
                                      std::vector<at::Tensor>* residuals) {
  MCD_CHECK(input_ids.dim() == 2, "input_ids must be (B, L), got ", input_ids.sizes());
  MCD_CHECK(input_ids.scalar_type() == at::kLong, "input_ids must be int64, got ",
            input_ids.scalar_type());
  // Not when the caller checked the ids on the host (ops/graph_capture.h: a graph capture, a trainer).
  if (input_ids.numel() > 0 && !(input_ids.is_cuda() && ops::skip_device_input_checks())) {
    // One reduction and one device-to-host copy (each .item() is a synchronisation that leaves the
    // GPU idle while the host launches the next kernels).
    const auto [mn, mx] = at::aminmax(input_ids);
    const at::Tensor range = at::stack({mn, mx}).to(at::kCPU);
    const int64_t lo = range[0].item<int64_t>(), hi = range[1].item<int64_t>();
    MCD_CHECK(lo >= 0 && hi < config.vocab_size, "token ids must be in [0, ", config.vocab_size,
              "), got range [", lo, ", ", hi, "]");
  }
  at::Tensor residual = ops::embedding(embeddings->weight, input_ids);  // (B, L, D); backward: ops/embedding.h
  if (config.residual_in_fp32 && residual.scalar_type() != at::kDouble) residual = residual.to(at::kFloat);
  if (cache) {
    cache->layers.resize(blocks.size());
    cache->seqlen += input_ids.size(1);
  }
  // Each block's residual add is fused with the next norm (ops/add_rms_norm.h): `pending` is the
  // mixer output not yet added. Under CUDA autocast the norm writes autocast's dtype directly.
  const bool low = residual.is_cuda() && cuda_autocast_enabled();
  auto add_norm = [&](const at::Tensor& pending, const RMSNorm& norm) {
    const auto out_dtype = low ? cuda_autocast_dtype() : norm->weight.scalar_type();
    ops::AddNormOut r = ops::add_rms_norm(residual, pending, norm->weight, norm->eps, out_dtype);
    residual = r.residual;
    if (residuals && pending.defined()) residuals->push_back(residual);
    return r.normed;
  };
  // Training under autocast with ops option in_proj_saves_input off: the norm and in_proj as one op
  // whose backward recomputes normed instead of keeping it (ops/add_rms_norm.h).
  const bool recompute_normed = low && !cache && at::GradMode::is_enabled() && !ops::ops_options().in_proj_saves_input;
  at::Tensor pending;
  for (size_t l = 0; l < blocks.size(); ++l) {
    auto& block = blocks[l];
    auto& mixer = block->mixer;
    const at::Tensor in_b = mixer->in_proj->options.bias() ? mixer->in_proj->bias : at::Tensor();
    if (recompute_normed && mixer->in_proj_is_plain() &&
        ops::add_rms_norm_linear_applies(residual, pending, block->norm->weight, mixer->in_proj->weight, in_b)) {
      ops::AddNormLinearOut r =
          ops::add_rms_norm_linear(residual, pending, block->norm->weight, block->norm->eps, mixer->in_proj->weight, in_b);
      residual = r.residual;
      if (residuals && pending.defined()) residuals->push_back(residual);
      pending = mixer->forward_projected(r.projected);
      continue;
    }
    const at::Tensor normed = add_norm(pending, block->norm);
    pending = mixer->forward(normed, cache ? &cache->layers[l] : nullptr);
  }
  return add_norm(pending, norm_f);
}

std::vector<ChannelGate> MambaBackboneImpl::gates() const {
  std::vector<ChannelGate> g;
  for (const auto& block : blocks)
    if (block->mixer->gate) g.push_back(block->mixer->gate);
  return g;
}

void MambaBackboneImpl::set_u_observer(const std::function<void(int64_t, const at::Tensor&)>& observer) {
  for (size_t l = 0; l < blocks.size(); ++l) {
    if (!observer) {
      blocks[l]->mixer->u_observer = nullptr;
      continue;
    }
    blocks[l]->mixer->u_observer = [observer, l](const at::Tensor& u) { observer(int64_t(l), u); };
  }
}

MambaBackboneImpl::StepTail MambaBackboneImpl::step_blocks(const at::Tensor& token_ids, InferenceCache& cache) {
  MCD_CHECK(token_ids.dim() == 1, "step: token_ids must be (B), got ", token_ids.sizes());
  MCD_CHECK(cache.layers.size() == blocks.size(), "step: the cache has ", cache.layers.size(),
            " layers, the model ", blocks.size());
  StepTail t;
  // Each block's residual add fused with its norm, as in forward (ops/add_rms_norm.h). With an fp32
  // residual stream the first block's kernel gathers the token embeddings itself (ops::NormInput).
  const bool gather_in_first = config.residual_in_fp32 && !blocks.empty();
  if (!gather_in_first) {
    t.residual = embeddings->forward(token_ids);  // (B, D)
    if (config.residual_in_fp32 && t.residual.scalar_type() != at::kDouble) t.residual = t.residual.to(at::kFloat);
  }
  for (size_t l = 0; l < blocks.size(); ++l) {
    auto& block = blocks[l];
    if (l == 0 && gather_in_first) {
      MCD_CHECK(token_ids.scalar_type() == at::kLong, "step: token ids must be int64, got ", token_ids.scalar_type());
      t.pending = block->mixer->step_from_residual(ops::NormInput::embedded(token_ids, embeddings->weight), t.residual,
                                                   {}, block->norm, cache.layers[l]);
    } else {
      t.pending = block->mixer->step_from_residual(t.residual, t.pending, block->norm, cache.layers[l]);
    }
  }
  cache.seqlen += 1;
  return t;
}

at::Tensor MambaBackboneImpl::step(const at::Tensor& token_ids, InferenceCache& cache) {
  const StepTail t = step_blocks(token_ids, cache);
  return ops::add_rms_norm(t.residual, t.pending, norm_f->weight, norm_f->eps, norm_f->weight.scalar_type()).normed;
}

// ----------------------------------------------------------------------------------------- LM

MambaLMImpl::MambaLMImpl(const ModelConfig& c) {
  backbone = register_module("backbone", MambaBackbone(c));
  if (!c.tie_embeddings)
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.vocab_size).bias(false)));
}

const at::Tensor& MambaLMImpl::head_weight() const { return lm_head ? lm_head->weight : backbone->embeddings->weight; }

bool MambaLMImpl::fuses_head() const {
  return ops::ops_options().decode_fused_head && backbone->norm_f->weight.scalar_type() == head_weight().scalar_type();
}

at::Tensor MambaLMImpl::logits_from_hidden(const at::Tensor& hidden) {
  const at::Tensor& w = head_weight();
  // A decode step's (B, D) rows through ops::decode_linear: at B ≤ 8 on CUDA one kernel that streams
  // the head's weights over every SM (torch's linear elsewhere, the same values on CPU).
  const at::Tensor logits = hidden.dim() == 2 ? ops::decode_linear(hidden.to(w.scalar_type()), w)
                                              : F::linear(hidden.to(w.scalar_type()), w);
  return logits.scalar_type() == at::kDouble ? logits : logits.to(at::kFloat);
}

at::Tensor MambaLMImpl::forward(const at::Tensor& input_ids) {
  return logits_from_hidden(backbone->forward(input_ids));
}

at::Tensor shifted_cross_entropy(const at::Tensor& logits, const at::Tensor& input_ids) {
  MCD_CHECK(logits.dim() == 3 && input_ids.dim() == 2 && logits.size(0) == input_ids.size(0) &&
                logits.size(1) == input_ids.size(1),
            "shifted_cross_entropy: logits ", logits.sizes(), " do not match input_ids ",
            input_ids.sizes());
  MCD_CHECK(input_ids.size(1) >= 2, "shifted_cross_entropy: need at least 2 tokens per row");
  const int64_t V = logits.size(2);
  const at::Tensor pred = logits.narrow(1, 0, logits.size(1) - 1).reshape({-1, V});
  const at::Tensor target = input_ids.narrow(1, 1, input_ids.size(1) - 1).reshape({-1});
  return F::cross_entropy(pred, target);
}

at::Tensor MambaLMImpl::loss(const at::Tensor& input_ids) {
  MCD_CHECK(input_ids.dim() == 2 && input_ids.size(1) >= 2, "loss: input_ids must be (B, L>=2), got ",
            input_ids.sizes());
  // The head's cross-entropy in row chunks: the (B·L, V) logits never exist at once.
  const at::Tensor hidden = backbone->forward(input_ids);  // (B, L, D)
  const int64_t L = input_ids.size(1), D = hidden.size(2);
  const at::Tensor& w = head_weight();
  const at::Tensor h = hidden.narrow(1, 0, L - 1).reshape({-1, D});
  const at::Tensor targets = input_ids.narrow(1, 1, L - 1).reshape({-1});
  // Under CUDA autocast the head's products run in bf16 anyway: hand it the bf16 hidden states.
  const bool low = h.is_cuda() && cuda_autocast_enabled() && h.scalar_type() != at::kDouble;
  return ops::chunked_cross_entropy(low ? h : h.to(w.scalar_type()), w, targets);
}

InferenceCache MambaLMImpl::new_cache(int64_t batch) const {
  InferenceCache cache;
  const auto options = backbone->embeddings->weight.options();
  for (const auto& block : backbone->blocks) cache.layers.push_back(block->mixer->empty_state(batch, options));
  return cache;
}

at::Tensor MambaLMImpl::prefill(const at::Tensor& input_ids, InferenceCache& cache) {
  torch::NoGradGuard no_grad;
  MCD_CHECK(cache.seqlen == 0, "prefill needs a fresh cache (it has consumed ", cache.seqlen, " tokens)");
  const at::Tensor hidden = backbone->forward(input_ids, &cache);
  return logits_from_hidden(hidden.select(1, hidden.size(1) - 1));
}

at::Tensor MambaLMImpl::step(const at::Tensor& token_ids, InferenceCache& cache) {
  torch::NoGradGuard no_grad;
  return step_logits(backbone->step_blocks(token_ids, cache));
}

// The final add + norm_f fused with the head's product (ops::add_rms_norm_decode_linear: on the few-row
// kernels' rows on CUDA one kernel, whose sums step_greedy_into's fused argmax repeats, so that greedy tokens from
// either path come from the same logits). Where the norm weight's dtype is not the head's, the normed
// rows would be cast first: norm_f then logits_from_hidden, as the forward does.
at::Tensor MambaLMImpl::step_logits(const MambaBackboneImpl::StepTail& t) {
  const RMSNorm& norm_f = backbone->norm_f;
  const at::Tensor& w = head_weight();
  if (!fuses_head())
    return logits_from_hidden(
        ops::add_rms_norm(t.residual, t.pending, norm_f->weight, norm_f->eps, norm_f->weight.scalar_type()).normed);
  const at::Tensor logits = ops::add_rms_norm_decode_linear(t.residual, t.pending, norm_f->weight, norm_f->eps, w).out;
  return logits.scalar_type() == at::kDouble ? logits : logits.to(at::kFloat);
}

void MambaLMImpl::step_into(const at::Tensor& token_ids, InferenceCache& cache, at::Tensor& logits) {
  torch::NoGradGuard no_grad;
  const int64_t V = head_weight().size(0);
  MCD_CHECK(logits.dim() == 2 && logits.size(0) == token_ids.size(0) && logits.size(1) == V,
            "step_into: logits must be (B=", token_ids.size(0), ", V=", V, "), got ", logits.sizes());
  logits.copy_(step_logits(backbone->step_blocks(token_ids, cache)));
}

void MambaLMImpl::step_greedy_into(const at::Tensor& token_ids, InferenceCache& cache, at::Tensor& logits,
                                   at::Tensor& next_tokens, at::Tensor& workspace) {
  torch::NoGradGuard no_grad;
  const at::Tensor& w = head_weight();
  const int64_t B = token_ids.size(0), V = w.size(0);
  MCD_CHECK(logits.dim() == 2 && logits.size(0) == B && logits.size(1) == V, "step_greedy_into: logits must be (B=", B,
            ", V=", V, "), got ", logits.sizes());
  MCD_CHECK(next_tokens.dim() == 1 && next_tokens.size(0) == B && next_tokens.scalar_type() == at::kLong &&
                workspace.dim() == 1 && workspace.size(0) == B + 1 && workspace.scalar_type() == at::kLong,
            "step_greedy_into: next_tokens must be (B=", B, ") and workspace (B + 1) int64, got ", next_tokens.sizes(),
            " and ", workspace.sizes());
  const RMSNorm& norm_f = backbone->norm_f;
  if (!fuses_head()) {  // the separate kernels
    step_into(token_ids, cache, logits);
    next_tokens.copy_(logits.narrow(1, 0, config().real_vocab_size()).argmax(-1));
    return;
  }
  const MambaBackboneImpl::StepTail t = backbone->step_blocks(token_ids, cache);
  ops::add_rms_norm_decode_linear_argmax(t.residual, t.pending, norm_f->weight, norm_f->eps, w,
                                         config().real_vocab_size(), logits, next_tokens, workspace);
}

void InferenceCache::reset() {
  for (auto& l : layers) {
    l.conv.zero_();
    l.ssm.zero_();
  }
  seqlen = 0;
}

// --------------------------------------------------------------------------------------- init

void init_reference(MambaBackboneImpl& bb, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = make_cpu_generator(seed);
  const ModelConfig& c = bb.config;
  // Draw on CPU in float32 (so a seed gives the same model on every device), then copy.
  auto fill = [&](at::Tensor& param, const at::Tensor& value) { param.copy_(value.to(param.dtype())); };
  auto uniform = [&](const at::Tensor& like, double bound) {
    return torch::empty(like.sizes(), torch::kFloat).uniform_(-bound, bound, gen);
  };
  fill(bb.embeddings->weight, torch::empty(bb.embeddings->weight.sizes(), torch::kFloat)
                                  .normal_(0.0, c.initializer_range, gen));
  for (auto& block : bb.blocks) {
    auto& m = *block->mixer;
    const int64_t E = m.d_inner, R = m.dt_rank;
    block->norm->weight.fill_(1.0);
    // Linear layers: PyTorch's default U(±1/sqrt(fan_in)); their biases zero.
    fill(m.in_proj->weight, uniform(m.in_proj->weight, 1.0 / std::sqrt(double(c.d_model))));
    fill(m.x_proj->weight, uniform(m.x_proj->weight, 1.0 / std::sqrt(double(E))));
    double out_bound = 1.0 / std::sqrt(double(E));
    if (c.rescale_prenorm_residual) out_bound /= std::sqrt(double(c.n_layer));
    fill(m.out_proj->weight, uniform(m.out_proj->weight, out_bound));
    if (c.use_bias) {
      m.in_proj->bias.zero_();
      m.out_proj->bias.zero_();
    }
    // Depthwise conv: fan_in = K.
    const double conv_bound = 1.0 / std::sqrt(double(m.d_conv));
    fill(m.conv1d->weight, uniform(m.conv1d->weight, conv_bound));
    if (m.conv1d->options.bias()) fill(m.conv1d->bias, uniform(m.conv1d->bias, conv_bound));
    // dt_proj: weight U(±R^-1/2·scale) (or constant); bias = softplus⁻¹(dt), dt log-uniform in
    // [dt_min, dt_max], floored.
    const double dt_std = std::pow(double(R), -0.5) * c.dt_scale;
    if (c.dt_init == "constant") {
      m.dt_proj->weight.fill_(dt_std);
    } else {
      fill(m.dt_proj->weight, uniform(m.dt_proj->weight, dt_std));
    }
    const at::Tensor r = torch::empty({E}, torch::kFloat).uniform_(0.0, 1.0, gen);
    const at::Tensor dt = torch::exp(r * (std::log(c.dt_max) - std::log(c.dt_min)) + std::log(c.dt_min))
                              .clamp_min(c.dt_init_floor);
    fill(m.dt_proj->bias, dt + torch::log(-torch::expm1(-dt)));
    fill(m.A_log, torch::log(torch::arange(1, m.d_state + 1, torch::kFloat)).repeat({E, 1}));
    m.D.fill_(1.0);
  }
  bb.norm_f->weight.fill_(1.0);
}

void init_reference(MambaLMImpl& model, uint64_t seed) {
  init_reference(*model.backbone, seed);
  if (model.lm_head) {
    torch::NoGradGuard no_grad;
    at::Generator gen = make_cpu_generator(seed ^ 0x9e3779b97f4a7c15ULL);
    model.lm_head->weight.copy_(torch::empty(model.lm_head->weight.sizes(), torch::kFloat)
                                    .normal_(0.0, model.config().initializer_range, gen));
  }
}

}  // namespace mcd
