// LoRA and IA³ projection adapters (see adapters.h).
#include "peft/adapters.h"

#include <cmath>

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
  const auto dt = x.scalar_type();
  // Contiguous first: dropout draws its mask in memory order, so the op-by-op mixer's transposed y
  // and the fused mixer's contiguous y would otherwise get different masks from the same seed.
  const at::Tensor dropped = F::dropout(x.contiguous(), F::DropoutFuncOptions().p(options.dropout).training(true));
  const at::Tensor low = F::linear(dropped, masked_A().to(dt));  // (…, r)
  return F::linear(x, weight, bias) + F::linear(low, masked_B().to(dt)) * (options.alpha / double(options.rank));
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
