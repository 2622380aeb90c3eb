// LoRA and IA³ projection adapters (see adapters.h).
#include "peft/adapters.h"

#include <cmath>

#include "ops/autograd_placeholders.h"
#include "util/error.h"

namespace mcd::peft {
namespace {

namespace F = torch::nn::functional;

// (out, in) of `which` for a mixer (D, E).
std::pair<int64_t, int64_t> projection_shape(Projection which, int64_t d_model, int64_t d_inner) {
  return which == Projection::kIn ? std::make_pair(2 * d_inner, d_model) : std::make_pair(d_model, d_inner);
}

// keep (E) → a float 0/1 mask with `copies` stacked blocks, or undefined.
at::Tensor channel_mask_from(const at::Tensor& keep, int64_t d_inner, int64_t copies) {
  if (!keep.defined()) return at::Tensor();
  MCD_CHECK(keep.dim() == 1 && keep.size(0) == d_inner, "adapter keep mask must be (E=", d_inner, "), got ",
            keep.sizes());
  const at::Tensor m = (keep.to(at::kCPU, at::kDouble) != 0).to(at::kFloat);
  MCD_CHECK(m.sum().item<double>() > 0, "adapter keep mask keeps no channel");
  return copies == 1 ? m : m.repeat({copies});
}

// dtype's product a·b written in `out` (fp32 straight from bf16 operands where LibTorch can).
at::Tensor mm_into(const at::Tensor& a, const at::Tensor& b, at::ScalarType out) {
  return out == at::kFloat ? mm_fp32(a, b) : at::mm(a, b).to(out);
}

// LoRA's training form with dropout as one autograd node:
//   out = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ,   drop(x) = x ⊙ keep / (1 − p),  keep ~ Bernoulli(1 − p).
// Op by op this is ~10 forward and ~15 backward dispatches with autograd bookkeeping per
// projection, and a fine-tuning step of a small model is bound by exactly that host work (LoRA ran
// 0.92× full fine-tuning, docs/glue.md). Here the forward is a mask draw and three GEMMs (the update
// accumulated into the base product by addmm, 1/(1 − p) folded into s) and the backward six
// products. Operands go to the compute dtype once: autocast's (bf16) on CUDA under autocast, else
// x's. Gradients reach W and b too when they require it (not in LoRA fine-tuning, where W is frozen).
class LoraDropoutLinear : public torch::autograd::Function<LoraDropoutLinear> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                const at::Tensor& weight, const at::Tensor& bias_in,
                                                const at::Tensor& A, const at::Tensor& B, double scale, double p) {
    const at::Tensor bias = ops::undefined_if_placeholder(bias_in);
    const bool autocast = x.is_cuda() && cuda_autocast_enabled() && x.scalar_type() != at::kDouble;
    const auto lo = autocast ? cuda_autocast_dtype() : x.scalar_type();
    const int64_t in = weight.size(1), out = weight.size(0);
    const at::Tensor x2 = x.reshape({-1, in}).to(lo);
    const at::Tensor w = weight.to(lo), a = A.to(lo), b = B.to(lo);
    // 0/1 is exact in every dtype; contiguous x keeps the mask in memory order (same seed → same mask
    // for the fused and op-by-op mixers).
    const at::Tensor keep = at::empty_like(x2, at::MemoryFormat::Contiguous).bernoulli_(1.0 - p);
    const at::Tensor dropped = x2 * keep;
    const at::Tensor low = at::mm(dropped, a.t());  // (rows, r)
    at::Tensor y = bias.defined() ? at::addmm(bias.to(lo), x2, w.t()) : at::mm(x2, w.t());
    const double s = scale / (1.0 - p);
    y.addmm_(low, b.t(), /*beta=*/1, /*alpha=*/s);
    ctx->save_for_backward({x2, keep, dropped, low, w, a, b});
    ctx->saved_data["s"] = s;
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["w_type"] = static_cast<int64_t>(weight.scalar_type());
    ctx->saved_data["A_type"] = static_cast<int64_t>(A.scalar_type());
    ctx->saved_data["has_bias"] = bias.defined();
    ctx->saved_data["x_shape"] = x.sizes().vec();
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = out;
    return {y.view(shape)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto v = ctx->get_saved_variables();
    const at::Tensor &x2 = v[0], &keep = v[1], &dropped = v[2], &low = v[3], &w = v[4], &a = v[5], &b = v[6];
    const double s = ctx->saved_data["s"].toDouble();
    auto type = [&](const char* k) { return static_cast<at::ScalarType>(ctx->saved_data[k].toInt()); };
    torch::autograd::variable_list grads(7);
    if (!grad_out[0].defined()) return grads;
    const at::Tensor g = grad_out[0].reshape({-1, w.size(0)}).to(w.scalar_type());  // (rows, out)
    const at::Tensor g_low = at::mm(g, b).mul_(s);                                  // (rows, r)
    if (ctx->needs_input_grad(0)) {
      at::Tensor g_dropped = at::mm(g_low, a).mul_(keep);
      grads[0] = g_dropped.addmm_(g, w).view(ctx->saved_data["x_shape"].toIntVector()).to(type("x_type"));
    }
    if (ctx->needs_input_grad(1)) grads[1] = mm_into(g.t(), x2, type("w_type"));
    if (ctx->needs_input_grad(2) && ctx->saved_data["has_bias"].toBool()) grads[2] = g.sum(0).to(type("w_type"));
    if (ctx->needs_input_grad(3)) grads[3] = mm_into(g_low.t(), dropped, type("A_type"));
    if (ctx->needs_input_grad(4)) grads[4] = mm_into(g.t(), low, type("A_type")).mul_(s);
    return grads;
  }
};

}  // namespace

LoraAdapterImpl::LoraAdapterImpl(Projection w, int64_t d_model, int64_t d_inner, const LoraOptions& o,
                                 at::Generator gen, const at::Tensor& keep)
    : which(w), options(o) {
  MCD_CHECK(o.rank >= 1, "LoRA rank must be at least 1, got ", o.rank);
  MCD_CHECK(o.dropout >= 0 && o.dropout < 1, "LoRA dropout must be in [0, 1), got ", o.dropout);
  MCD_CHECK(std::isfinite(o.alpha) && o.alpha > 0, "LoRA alpha must be positive, got ", o.alpha);
  const auto [out, in] = projection_shape(w, d_model, d_inner);
  // kaiming_uniform(a = √5) on (r, in), as LoRA's reference does: bound 1/√in.
  const double bound = 1.0 / std::sqrt(double(in));
  lora_A = register_parameter("lora_A", torch::empty({o.rank, in}, at::kFloat).uniform_(-bound, bound, gen));
  lora_B = register_parameter("lora_B", torch::zeros({out, o.rank}, at::kFloat));
  const at::Tensor mask = channel_mask_from(keep, d_inner, w == Projection::kIn ? 2 : 1);
  if (mask.defined()) channel_mask = register_buffer("channel_mask", mask);
}

at::Tensor LoraAdapterImpl::masked_A() const {
  if (!channel_mask.defined() || which == Projection::kIn) return lora_A;
  return lora_A * channel_mask.to(lora_A.scalar_type()).unsqueeze(0);  // out_proj: columns
}

at::Tensor LoraAdapterImpl::masked_B() const {
  if (!channel_mask.defined() || which == Projection::kOut) return lora_B;
  return lora_B * channel_mask.to(lora_B.scalar_type()).unsqueeze(1);  // in_proj: rows
}

at::Tensor LoraAdapterImpl::delta_weight() {
  return torch::mm(masked_B(), masked_A()) * (options.alpha / double(options.rank));
}

at::Tensor LoraAdapterImpl::effective_weight(const at::Tensor& weight) {
  return weight + delta_weight().to(weight.scalar_type());
}

bool LoraAdapterImpl::weight_form_is_exact() const { return !is_training() || options.dropout == 0; }

at::Tensor LoraAdapterImpl::forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  // Evaluation and dropout 0: one product with W + ΔW, which keeps no (…, r) activation for the backward.
  if (weight_form_is_exact()) return F::linear(x, effective_weight(weight), bias);
  return LoraDropoutLinear::apply(x, weight, ops::placeholder_if_undefined(bias), masked_A(), masked_B(),
                                  options.alpha / double(options.rank), options.dropout)[0];
}

std::vector<ChannelSlot> LoraAdapterImpl::channel_slots() {
  std::vector<ChannelSlot> s;
  if (which == Projection::kIn) {
    s.push_back({"lora_B", lora_B, 0, 2, 1});
    if (channel_mask.defined()) s.push_back({"channel_mask", channel_mask, 0, 2, 1});
  } else {
    s.push_back({"lora_A", lora_A, 1, 1, 1});
    if (channel_mask.defined()) s.push_back({"channel_mask", channel_mask, 0, 1, 1});
  }
  return s;
}

Ia3AdapterImpl::Ia3AdapterImpl(Projection w, int64_t d_model, int64_t d_inner, const at::Tensor& keep) : which(w) {
  const int64_t out = projection_shape(w, d_model, d_inner).first;
  ia3_scale = register_parameter("ia3_scale", torch::ones({out}, at::kFloat));
  if (w == Projection::kIn) {
    const at::Tensor mask = channel_mask_from(keep, d_inner, 2);
    if (mask.defined()) channel_mask = register_buffer("channel_mask", mask);
  }
}

at::Tensor Ia3AdapterImpl::effective_scale() const {
  if (!channel_mask.defined()) return ia3_scale;
  const at::Tensor m = channel_mask.to(ia3_scale.scalar_type());
  return ia3_scale * m + (1 - m);
}

at::Tensor Ia3AdapterImpl::effective_weight(const at::Tensor& weight) {
  return weight * effective_scale().to(weight.scalar_type()).unsqueeze(1);
}

at::Tensor Ia3AdapterImpl::effective_bias(const at::Tensor& bias) {
  return bias.defined() ? bias * effective_scale().to(bias.scalar_type()) : bias;
}

std::vector<ChannelSlot> Ia3AdapterImpl::channel_slots() {
  if (which == Projection::kOut) return {};
  std::vector<ChannelSlot> s{{"ia3_scale", ia3_scale, 0, 2, 1}};
  if (channel_mask.defined()) s.push_back({"channel_mask", channel_mask, 0, 2, 1});
  return s;
}

std::string adapter_kind(const ProjectionAdapter& adapter) {
  if (std::dynamic_pointer_cast<LoraAdapterImpl>(adapter)) return "lora";
  if (std::dynamic_pointer_cast<Ia3AdapterImpl>(adapter)) return "ia3";
  return "";
}

void merge_into(const ProjectionAdapter& adapter, at::Tensor& weight, at::Tensor& bias) {
  torch::NoGradGuard no_grad;
  // In the adapter's precision (float32 or float64), then rounded once to the weight's dtype.
  const auto compute = weight.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor w = adapter->effective_weight(weight.to(compute));
  const at::Tensor b = bias.defined() ? adapter->effective_bias(bias.to(compute)) : bias;
  weight.copy_(w);
  if (bias.defined()) bias.copy_(b);
}

}  // namespace mcd::peft
