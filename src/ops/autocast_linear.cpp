// See autocast_linear.h.
#include "ops/autocast_linear.h"

#include "ops/autograd_placeholders.h"
#include "ops/backend.h"
#include "ops/options.h"
#include "util/error.h"

namespace mcd::ops {
namespace {

class AutocastLinear : public torch::autograd::Function<AutocastLinear> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                const at::Tensor& weight, const at::Tensor& bias_in) {
    const at::Tensor bias = undefined_if_placeholder(bias_in);
    const auto lo = cuda_autocast_dtype();
    const at::Tensor x_lo = x.to(lo), w_lo = weight.to(lo);
    const bool keep = ops_options().keep_cast_weights;  // else cast again in the backward (the same bits)
    ctx->save_for_backward({x_lo, keep ? w_lo : weight});
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["has_bias"] = bias.defined();
    return {at::linear(x_lo, w_lo, bias.defined() ? bias.to(lo) : bias)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    if (!grad_out[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const auto s = ctx->get_saved_variables();
    const at::Tensor& x_lo = s[0];
    const at::Tensor w_lo = s[1].to(x_lo.scalar_type());  // no-op when the forward kept its cast
    const int64_t in = w_lo.size(1), out = w_lo.size(0);
    const at::Tensor g = grad_out[0].to(w_lo.scalar_type()).reshape({-1, out});  // (rows, out)
    const auto x_type = static_cast<at::ScalarType>(ctx->saved_data["x_type"].toInt());
    const at::Tensor dx = at::mm(g, w_lo).view(x_lo.sizes()).to(x_type);
    const at::Tensor dw = mm_fp32(g.t(), x_lo.reshape({-1, in}));  // fp32 from the product itself
    const at::Tensor db = ctx->saved_data["has_bias"].toBool() ? g.to(at::kFloat).sum(0) : at::Tensor();
    return {dx, dw, db};
  }
};

}  // namespace

bool autocast_linear_applies(const at::Tensor& x, const at::Tensor& weight) {
  const auto t = x.scalar_type();
  return backend() == Backend::kAuto && x.is_cuda() && cuda_autocast_enabled() &&
         (t == at::kFloat || t == at::kHalf || t == at::kBFloat16) && weight.scalar_type() == at::kFloat &&
         x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1);
}

at::Tensor autocast_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  MCD_CHECK(autocast_linear_applies(x, weight), "autocast_linear: needs CUDA autocast on, a CUDA x (…, ",
            weight.size(1), ") and an fp32 (out, in) weight; got x ", x.sizes(), " ", x.scalar_type(), ", weight ",
            weight.sizes(), " ", weight.scalar_type());
  MCD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.scalar_type() == at::kFloat),
            "autocast_linear: bias must be fp32 (", weight.size(0), "), got ", bias.sizes());
  return AutocastLinear::apply(x, weight, placeholder_if_undefined(bias))[0];
}

}  // namespace mcd::ops
