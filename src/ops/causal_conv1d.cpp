// Dispatch, autograd wrapper and composite of the causal depthwise conv1d (see causal_conv1d.h;
// the plain loops are in ops/cpu/causal_conv_cpu.cpp, the CUDA kernels' host op in
// ops/cuda/causal_conv_cuda.cpp; one autograd node serves both).
#include "ops/causal_conv1d.h"

#include "ops/autograd_placeholders.h"
#include "ops/backend.h"
#include "ops/cpu/causal_conv_cpu.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {
namespace {

namespace F = torch::nn::functional;

// The one autograd node of the hand-written conv kernels: the CPU plain loops or, for CUDA tensors,
// the kernels of ops/cuda (which read the deterministic flag at the backward, for the dweight/dbias
// sums).
class CausalConvFunction : public torch::autograd::Function<CausalConvFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& x, const at::Tensor& weight,
                                                const at::Tensor& bias, bool silu) {
    ctx->save_for_backward({x, weight, bias});
    ctx->saved_data["silu"] = silu;
    const at::Tensor b = undefined_if_placeholder(bias);
#ifdef MCD_WITH_CUDA
    if (x.is_cuda()) return {cuda::causal_conv1d_cuda_forward(x, weight, b, silu)};
#endif
    return {cpu::causal_conv1d_forward(x, weight, b, silu)};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor bias = undefined_if_placeholder(s[2]);
    if (!grad_out[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const bool silu = ctx->saved_data["silu"].toBool();
    at::Tensor dx, dweight, dbias;
#ifdef MCD_WITH_CUDA
    if (s[0].is_cuda()) {
      const cuda::ConvCudaGrads g = cuda::causal_conv1d_cuda_backward(
          grad_out[0], s[0], s[1], bias, silu, at::Tensor(), at::globalContext().deterministicAlgorithms());
      dx = g.dx;
      dweight = g.dweight;
      dbias = g.dbias;
    }
#endif
    if (!dx.defined()) {
      const cpu::ConvGrads g = cpu::causal_conv1d_backward(grad_out[0], s[0], s[1], bias, silu);
      dx = g.dx;
      dweight = g.dweight;
      dbias = g.dbias;
    }
    return {dx.to(s[0].scalar_type()), dweight.to(s[1].scalar_type()),
            bias.defined() ? dbias.to(bias.scalar_type()) : at::Tensor(), at::Tensor()};
  }
};

void check_inputs(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  MCD_CHECK(x.dim() == 3, "causal_conv1d: x must be (B, E, L), got ", x.sizes());
  MCD_CHECK(weight.dim() == 2 && weight.size(0) == x.size(1),
            "causal_conv1d: weight must be (E, K) with E=", x.size(1), ", got ", weight.sizes());
  MCD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == x.size(1)),
            "causal_conv1d: bias must be (E) with E=", x.size(1));
}

}  // namespace

at::Tensor causal_conv1d_composite(const at::Tensor& x, const at::Tensor& weight,
                                   const at::Tensor& bias, bool silu) {
  check_inputs(x, weight, bias);
  const int64_t E = x.size(1), K = weight.size(1), L = x.size(2);
  auto opts = F::Conv1dFuncOptions().padding(K - 1).groups(E);
  if (bias.defined()) opts = opts.bias(bias.to(x.scalar_type()));
  at::Tensor out = F::conv1d(x, weight.to(x.scalar_type()).unsqueeze(1), opts).narrow(2, 0, L);
  return silu ? F::silu(out) : out;
}

at::Tensor causal_conv1d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                         bool silu) {
  check_inputs(x, weight, bias);
  const Backend b = backend();
#ifdef MCD_WITH_CUDA
  // CUDA tensors with backend kAuto: the fused kernel (ops/cuda); kComposite forces the composite.
  if (b == Backend::kAuto && x.is_cuda() && cuda::conv_supported(x, weight))
    return CausalConvFunction::apply(x, weight, placeholder_if_undefined(bias), silu)[0];
#endif
  const bool reference = b == Backend::kReference || (b == Backend::kAuto && x.device().is_cpu());
  if (!reference) return causal_conv1d_composite(x, weight, bias, silu);
  MCD_CHECK(x.device().is_cpu(), "ops backend 'reference' needs CPU tensors, got ", x.device());
  return CausalConvFunction::apply(x, weight, placeholder_if_undefined(bias), silu)[0];
}

at::Tensor causal_conv1d_step(at::Tensor& conv_state, const at::Tensor& x,
                              const at::Tensor& weight, const at::Tensor& bias, bool silu) {
  torch::NoGradGuard no_grad;
  const int64_t K = weight.size(1);
  MCD_CHECK(conv_state.dim() == 3 && conv_state.size(2) == K - 1 &&
                conv_state.size(0) == x.size(0) && conv_state.size(1) == x.size(1),
            "causal_conv1d_step: conv_state must be (B, E, K-1) = (", x.size(0), ", ", x.size(1),
            ", ", K - 1, "), got ", conv_state.sizes());
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::conv_step_supported(conv_state, x, weight, bias))
    return cuda::causal_conv1d_step_cuda(conv_state, x, weight, bias, silu);
#endif
  const at::Tensor window = at::cat({conv_state, x.unsqueeze(-1).to(conv_state.scalar_type())}, -1);
  at::Tensor out = (window * weight.to(window.scalar_type()).unsqueeze(0)).sum(-1);  // (B, E)
  if (bias.defined()) out = out + bias.to(out.scalar_type());
  conv_state.copy_(window.narrow(2, 1, K - 1));
  return (silu ? F::silu(out) : out).to(x.scalar_type());
}

at::Tensor causal_conv1d_final_state(const at::Tensor& x, int64_t kernel_size) {
  const int64_t keep = kernel_size - 1, L = x.size(2);
  if (L >= keep) return x.narrow(2, L - keep, keep).contiguous();
  return F::pad(x, F::PadFuncOptions({keep - L, 0})).contiguous();
}

at::Tensor causal_conv1d_with_final_state(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                          bool silu, at::Tensor& final_state) {
  torch::NoGradGuard no_grad;
  check_inputs(x, weight, bias);
  const int64_t K = weight.size(1);
  MCD_CHECK(final_state.defined() && final_state.dim() == 3 && final_state.size(0) == x.size(0) &&
                final_state.size(1) == x.size(1) && final_state.size(2) == K - 1,
            "causal_conv1d_with_final_state: final_state must be (B, E, K-1) = (", x.size(0), ", ", x.size(1), ", ",
            K - 1, "), got ", final_state.sizes());
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && x.is_cuda() && cuda::conv_supported(x, weight) &&
      cuda::conv_writes_final_state(x, weight, final_state))
    return cuda::causal_conv1d_cuda_forward(x, weight, bias, silu, final_state);
#endif
  const at::Tensor out = causal_conv1d(x, weight, bias, silu);
  final_state.copy_(causal_conv1d_final_state(x, K));
  return out;
}

}  // namespace mcd::ops
