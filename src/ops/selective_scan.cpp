// Dispatch, autograd wrapper and LibTorch-ops composite of the selective scan
// (see selective_scan.h; the plain loops are in ops/cpu/selective_scan_cpu.cpp).
#include "ops/selective_scan.h"

#include "ops/autograd_placeholders.h"
#include "ops/backend.h"
#include "ops/cpu/selective_scan_cpu.h"
#include "ops/decode_linear.h"
#include "ops/gradient_wanted.h"
#include "ops/options.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {
namespace {

namespace F = torch::nn::functional;

// Autograd node around the CPU reference. The backward recomputes the forward states, so only
// the inputs are saved.
class SelectiveScanCpuFunction : public torch::autograd::Function<SelectiveScanCpuFunction> {
 public:
  static torch::autograd::variable_list forward(
      torch::autograd::AutogradContext* ctx, const at::Tensor& u, const at::Tensor& delta,
      const at::Tensor& A, const at::Tensor& B, const at::Tensor& C, const at::Tensor& D_in,
      const at::Tensor& z_in, const at::Tensor& bias_in, const at::Tensor& mask_in,
      bool delta_softplus) {
    const at::Tensor D = undefined_if_placeholder(D_in), z = undefined_if_placeholder(z_in),
                     bias = undefined_if_placeholder(bias_in), mask = undefined_if_placeholder(mask_in);
    ctx->save_for_backward({u, delta, A, B, C, D_in, z_in, bias_in, mask_in});
    ctx->saved_data["softplus"] = delta_softplus;
    auto r = cpu::selective_scan_forward(u, delta, A, B, C, D, z, bias, delta_softplus, false, mask);
    return {r.out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto s = ctx->get_saved_variables();
    for (int i = 5; i < 9; ++i) s[i] = undefined_if_placeholder(s[i]);
    const bool softplus = ctx->saved_data["softplus"].toBool();
    auto g = cpu::selective_scan_backward(grad_out[0], s[0], s[1], s[2], s[3], s[4], s[5], s[6],
                                          s[7], softplus, s[8]);
    // Gradients in the inputs' own dtypes.
    auto like = [&](const at::Tensor& grad, const at::Tensor& input) {
      return input.defined() && grad.defined() ? grad.to(input.scalar_type()) : at::Tensor();
    };
    return {like(g.du, s[0]), like(g.ddelta, s[1]), like(g.dA, s[2]), like(g.dB, s[3]),
            like(g.dC, s[4]), like(g.dD, s[5]), like(g.dz, s[6]), like(g.ddelta_bias, s[7]),
            like(g.dmask, s[8]), at::Tensor()};
  }
};

void check_inputs(const ScanInputs& in) {
  MCD_CHECK(in.u.defined() && in.delta.defined() && in.A.defined() && in.B.defined() &&
                in.C.defined(),
            "selective_scan: u, delta, A, B and C are required");
  MCD_CHECK(in.u.dim() == 3, "selective_scan: u must be (B, E, L), got ", in.u.sizes());
  MCD_CHECK(in.A.dim() == 2 && in.A.size(0) == in.u.size(1), "selective_scan: A must be (E, N), got ",
            in.A.sizes(), " for E=", in.u.size(1));
  MCD_CHECK(in.B.dim() == 3 && in.B.size(0) == in.u.size(0) && in.B.size(1) == in.A.size(1) &&
                in.B.size(2) == in.u.size(2),
            "selective_scan: B must be (B, N, L), got ", in.B.sizes());
  MCD_CHECK(in.C.sizes() == in.B.sizes(), "selective_scan: C must match B, got ", in.C.sizes());
  MCD_CHECK(in.delta.sizes() == in.u.sizes(), "selective_scan: delta must match u");
  MCD_CHECK(!in.z.defined() || in.z.sizes() == in.u.sizes(), "selective_scan: z must match u");
  MCD_CHECK(!in.mask.defined() || (in.mask.dim() == 1 && in.mask.size(0) == in.u.size(1)),
            "selective_scan: mask must be (E) with E=", in.u.size(1));
}

// CUDA tensors with backend kAuto go to the fused kernels when built with them and the inputs
// fit (see ops/cuda/ops_cuda.h); kComposite forces the LibTorch composite (the debugging switch).
#ifdef MCD_WITH_CUDA
bool use_cuda_kernels(const ScanInputs& in) {
  return backend() == Backend::kAuto && in.u.is_cuda() && cuda::scan_supported(in);
}
#endif

bool use_cpu_reference(const ScanInputs& in) {
  const Backend b = backend();
  if (b == Backend::kComposite) return false;
  if (b == Backend::kReference) {
    MCD_CHECK(in.u.device().is_cpu(), "ops backend 'reference' needs CPU tensors, got ",
              in.u.device());
    return true;
  }
  return in.u.device().is_cpu();
}

}  // namespace

at::Tensor selective_scan_composite(const ScanInputs& in, at::Tensor* last_state) {
  check_inputs(in);
  const auto acc = in.u.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor dt = in.delta.to(acc);
  if (in.delta_bias.defined()) dt = dt + in.delta_bias.to(acc).unsqueeze(-1);
  if (in.delta_softplus) dt = F::softplus(dt);                      // (B, E, L)
  const at::Tensor u = in.mask.defined() ? in.u.to(acc) * in.mask.to(acc).unsqueeze(-1) : in.u.to(acc);
  const at::Tensor A = in.A.to(acc);
  const at::Tensor decay = at::exp(dt.unsqueeze(-1) * A.unsqueeze(1));  // (B, E, L, N)
  const at::Tensor Bt = in.B.to(acc).transpose(1, 2).unsqueeze(1);    // (B, 1, L, N)
  const at::Tensor Ct = in.C.to(acc).transpose(1, 2);                 // (B, L, N)
  const at::Tensor drive = (dt * u).unsqueeze(-1) * Bt;              // (B, E, L, N)
  at::Tensor h = at::zeros({u.size(0), u.size(1), A.size(1)}, u.options());
  std::vector<at::Tensor> ys;
  ys.reserve(u.size(2));
  for (int64_t t = 0; t < u.size(2); ++t) {
    h = decay.select(2, t) * h + drive.select(2, t);
    ys.push_back((h * Ct.select(1, t).unsqueeze(1)).sum(-1));  // (B, E)
  }
  at::Tensor y = ys.empty() ? at::zeros_like(u) : at::stack(ys, -1);
  if (in.D.defined()) y = y + in.D.to(acc).unsqueeze(-1) * u;
  if (in.z.defined()) y = y * F::silu(in.z.to(acc));
  if (last_state) *last_state = h;
  return y.to(in.u.scalar_type());
}

at::Tensor selective_scan(const ScanInputs& in) {
  check_inputs(in);
#ifdef MCD_WITH_CUDA
  if (use_cuda_kernels(in))
    return cuda::selective_scan_cuda(in, at::globalContext().deterministicAlgorithms());
#endif
  if (!use_cpu_reference(in)) return selective_scan_composite(in);
  return SelectiveScanCpuFunction::apply(in.u, in.delta, in.A, in.B, in.C,
                                         placeholder_if_undefined(in.D), placeholder_if_undefined(in.z),
                                         placeholder_if_undefined(in.delta_bias),
                                         placeholder_if_undefined(in.mask), in.delta_softplus)[0];
}

bool scan_prefers_time_contiguous(int64_t batch, int64_t dim, int64_t dstate, const at::Device& device) {
#ifdef MCD_WITH_CUDA
  if (device.is_cuda() && backend() == Backend::kAuto) return cuda::scan_prefers_time_contiguous(batch, dim, dstate, device);
#endif
  (void)batch, (void)dim, (void)dstate, (void)device;
  return false;
}

std::pair<at::Tensor, at::Tensor> selective_scan_with_state(const ScanInputs& in, at::Tensor last_state_into) {
  check_inputs(in);
  torch::NoGradGuard no_grad;
  MCD_CHECK(!last_state_into.defined() ||
                (last_state_into.dim() == 3 && last_state_into.size(0) == in.u.size(0) &&
                 last_state_into.size(1) == in.u.size(1) && last_state_into.size(2) == in.A.size(1)),
            "selective_scan_with_state: last_state_into must be (B, E, N) = (", in.u.size(0), ", ", in.u.size(1), ", ",
            in.A.size(1), "), got ", last_state_into.sizes());
  std::pair<at::Tensor, at::Tensor> r;
#ifdef MCD_WITH_CUDA
  if (use_cuda_kernels(in)) {
    if (cuda::scan_writes_last_state(in, last_state_into)) return cuda::selective_scan_cuda_with_state(in, last_state_into);
    r = cuda::selective_scan_cuda_with_state(in);
  } else
#endif
  if (!use_cpu_reference(in)) {
    at::Tensor last;
    at::Tensor out = selective_scan_composite(in, &last);
    r = {out, last};
  } else {
    auto f = cpu::selective_scan_forward(in.u, in.delta, in.A, in.B, in.C, in.D, in.z, in.delta_bias,
                                         in.delta_softplus, true, in.mask);
    r = {f.out, f.last_state};
  }
  if (!last_state_into.defined()) return r;
  last_state_into.copy_(r.second);
  return {r.first, last_state_into};
}

ScanParams32 scan_params_fp32(const at::Tensor& A_log, const at::Tensor& D, const at::Tensor& delta_bias) {
  const bool wants_grad = gradient_wanted(A_log, D, delta_bias);
#ifdef MCD_WITH_CUDA
  if (!wants_grad && backend() == Backend::kAuto && cuda::scan_params_fp32_supported(A_log, D, delta_bias))
    return cuda::scan_params_fp32_cuda(A_log, D, delta_bias);
#else
  (void)wants_grad;
#endif
  const auto f32 = [](const at::Tensor& t) { return t.defined() ? t.to(at::kFloat) : t; };
  return {-torch::exp(f32(A_log)), f32(D), f32(delta_bias)};
}

namespace {

// selective_scan_step, with the CUDA kernel's inputs_settled promise (ScanStepParams), which only
// selective_scan_step_projected makes, right after its own x_proj kernel.
at::Tensor selective_scan_step_dispatch(at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                                        const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                        const at::Tensor& D, const at::Tensor& z, const at::Tensor& delta_bias,
                                        bool delta_softplus, bool a_is_log, const at::Tensor& delta_proj,
                                        bool inputs_settled) {
  torch::NoGradGuard no_grad;
  MCD_CHECK(state.dim() == 3 && state.size(0) == u.size(0) && state.size(1) == u.size(1),
            "selective_scan_step: state must be (B, E, N), got ", state.sizes(), " for u ",
            u.sizes());
  MCD_CHECK(!delta_proj.defined() || (delta_proj.dim() == 2 && delta_proj.size(0) == u.size(1) &&
                                      delta.dim() == 2 && delta.size(1) == delta_proj.size(1)),
            "selective_scan_step: delta_proj must be (E, R) for delta (B, R), got ", delta_proj.sizes(), " and ",
            delta.sizes());
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::scan_step_supported(state, u, delta, A, B, C, D, z, delta_bias, delta_proj))
    return cuda::selective_scan_step_cuda(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus, a_is_log,
                                          delta_proj, inputs_settled);
#else
  (void)inputs_settled;
#endif
  const auto acc = state.scalar_type();
  // The low-rank product in the input's dtype, as the model's dt_proj computes it.
  at::Tensor dt = (delta_proj.defined() ? F::linear(delta, delta_proj.to(delta.scalar_type())) : delta).to(acc);
  if (delta_bias.defined()) dt = dt + delta_bias.to(acc);
  if (delta_softplus) dt = F::softplus(dt);                                   // (B, E)
  const at::Tensor ua = u.to(acc);
  const at::Tensor a = a_is_log ? -at::exp(A.to(acc)) : A.to(acc);           // (E, N)
  const at::Tensor decay = at::exp(dt.unsqueeze(-1) * a);                     // (B, E, N)
  state.mul_(decay).add_((dt * ua).unsqueeze(-1) * B.to(acc).unsqueeze(1));
  at::Tensor y = (state * C.to(acc).unsqueeze(1)).sum(-1);                   // (B, E)
  if (D.defined()) y = y + D.to(acc) * ua;
  if (z.defined()) y = y * F::silu(z.to(acc));
  return y.to(u.scalar_type());
}

}  // namespace

at::Tensor selective_scan_step(at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                               const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                               const at::Tensor& D, const at::Tensor& z,
                               const at::Tensor& delta_bias, bool delta_softplus, bool a_is_log,
                               const at::Tensor& delta_proj) {
  return selective_scan_step_dispatch(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus, a_is_log,
                                      delta_proj, /*inputs_settled=*/false);
}

at::Tensor selective_scan_step_projected(at::Tensor& state, const at::Tensor& u, const at::Tensor& x_proj,
                                         const at::Tensor& A, const at::Tensor& D, const at::Tensor& z,
                                         const at::Tensor& delta_bias, bool delta_softplus, bool a_is_log,
                                         const at::Tensor& delta_proj) {
  torch::NoGradGuard no_grad;
  MCD_CHECK(delta_proj.defined() && delta_proj.dim() == 2 && state.dim() == 3 && x_proj.dim() == 2 &&
                x_proj.size(0) == delta_proj.size(1) + 2 * state.size(2),
            "selective_scan_step_projected: x_proj must be (R + 2N, E) for delta_proj (E, R) and state (B, E, N), got ",
            x_proj.sizes(), ", ", delta_proj.sizes(), " and ", state.sizes());
  const int64_t R = delta_proj.size(1), N = state.size(2);
  // When x_proj runs decode_linear's kernel, the step kernel launched right after it may load its
  // state, u, z and weights before waiting for it: x_proj writes only x_dbl and lets the step start
  // only once everything before it has finished (ScanStepParams::inputs_settled).
  const bool settled = decode_linear_runs_kernel(u, x_proj);
  const at::Tensor x_dbl = decode_linear(u, x_proj);  // (B, R + 2N)
  return selective_scan_step_dispatch(state, u, x_dbl.narrow(1, 0, R), A, x_dbl.narrow(1, R, N),
                                      x_dbl.narrow(1, R + N, N), D, z, delta_bias, delta_softplus, a_is_log,
                                      delta_proj, settled);
}

}  // namespace mcd::ops
