// Host ops of the decode-step kernels (decode_step_params.h): which tensors they take, and the
// launch on LibTorch's current stream. The dispatch is in ops/causal_conv1d.cpp and
// ops/selective_scan.cpp; anything unsupported there runs the composite.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <initializer_list>

#include "ops/cuda/conv_params.h"
#include "ops/cuda/decode_step_params.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "util/error.h"

namespace mcd::ops::cuda {
namespace {

// A (B, ·) activation row tensor the kernels read: on the device, in `dtype`, unit inner stride.
bool rows_ok(const at::Tensor& t, const at::Tensor& like, int64_t cols) {
  return t.defined() && t.is_cuda() && t.device() == like.device() && t.scalar_type() == like.scalar_type() &&
         t.dim() == 2 && t.size(0) == like.size(0) && t.size(1) == cols && (t.stride(1) == 1 || cols == 1);
}

// One op's weights (undefined ones skipped) share one dtype, fp32 or the activations', and are
// contiguous on the activations' device.
bool weights_ok(std::initializer_list<const at::Tensor*> ws, const at::Tensor& act) {
  at::ScalarType common = at::kFloat;
  bool first = true;
  for (const at::Tensor* w : ws) {
    if (!w->defined()) continue;
    if (!w->is_cuda() || w->device() != act.device()) return false;
    if (first) common = w->scalar_type();
    first = false;
    if (w->scalar_type() != common) return false;
  }
  return common == at::kFloat || common == act.scalar_type();
}

DType weight_code(const at::Tensor& w, const at::Tensor& act, const char* op) {
  return w.scalar_type() == at::kFloat ? DType::kFloat32 : dtype_code(act.scalar_type(), op);
}

bool vector_ok(const at::Tensor& t, int64_t n) { return !t.defined() || (t.dim() == 1 && t.size(0) == n && t.is_contiguous()); }

}  // namespace

bool conv_step_supported(const at::Tensor& state, const at::Tensor& x, const at::Tensor& weight,
                         const at::Tensor& bias) {
  if (!(x.defined() && x.is_cuda() && kernel_dtype(x.scalar_type()) && x.dim() == 2)) return false;
  const int64_t E = x.size(1);
  return rows_ok(x, x, E) && state.is_cuda() && state.device() == x.device() && state.scalar_type() == x.scalar_type() &&
         state.dim() == 3 && state.size(0) == x.size(0) && state.size(1) == E && weight.defined() &&
         weight.dim() == 2 && weight.size(0) == E && weight.size(1) >= 1 && weight.size(1) <= kConvMaxWidth &&
         (weight.stride(1) == 1 || weight.size(1) == 1) && state.size(2) == weight.size(1) - 1 &&
         vector_ok(bias, E) && weights_ok({&weight, &bias}, x);
}

at::Tensor causal_conv1d_step_cuda(at::Tensor& state, const at::Tensor& x, const at::Tensor& weight,
                                   const at::Tensor& bias, bool silu) {
  MCD_CHECK(conv_step_supported(state, x, weight, bias), "causal_conv1d_step (CUDA): unsupported tensors: state ",
            state.sizes(), ", x ", x.sizes(), ", weight ", weight.sizes());
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = fresh(at::empty({x.size(0), x.size(1)}, x.options()));
  ConvStepParams k;
  k.dtype = dtype_code(x.scalar_type(), "causal_conv1d_step (CUDA)");
  k.weight_dtype = weight_code(weight, x, "causal_conv1d_step (CUDA)");
  k.batch = x.size(0);
  k.dim = x.size(1);
  k.width = static_cast<int>(weight.size(1));
  k.x = x.data_ptr();
  k.x_batch_stride = x.stride(0);
  k.state = state.data_ptr();
  k.state_s = strides_of(state);
  k.weight = weight.data_ptr();
  k.weight_row_stride = weight.stride(0);
  k.bias = bias.defined() ? bias.data_ptr() : nullptr;
  k.silu = silu;
  k.out = out.data_ptr();
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  conv_step(k);
  return out;
}

bool scan_step_supported(const at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                         const at::Tensor& A, const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
                         const at::Tensor& z, const at::Tensor& delta_bias) {
  if (!(u.defined() && u.is_cuda() && kernel_dtype(u.scalar_type()) && u.dim() == 2)) return false;
  const int64_t E = u.size(1);
  if (!(state.is_cuda() && state.device() == u.device() && state.scalar_type() == at::kFloat && state.dim() == 3 &&
        state.size(0) == u.size(0) && state.size(1) == E && state.is_contiguous()))
    return false;
  const int64_t N = state.size(2);
  return rows_ok(u, u, E) && rows_ok(delta, u, E) && rows_ok(B, u, N) && rows_ok(C, u, N) &&
         (!z.defined() || rows_ok(z, u, E)) && A.defined() && A.dim() == 2 && A.size(0) == E && A.size(1) == N &&
         A.is_contiguous() && vector_ok(D, E) && vector_ok(delta_bias, E) && weights_ok({&A, &D, &delta_bias}, u);
}

at::Tensor selective_scan_step_cuda(at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                                    const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                    const at::Tensor& D, const at::Tensor& z, const at::Tensor& delta_bias,
                                    bool delta_softplus, bool a_is_log) {
  MCD_CHECK(scan_step_supported(state, u, delta, A, B, C, D, z, delta_bias),
            "selective_scan_step (CUDA): unsupported tensors: state ", state.sizes(), ", u ", u.sizes(), ", A ",
            A.sizes());
  const c10::cuda::CUDAGuard guard(u.device());
  at::Tensor out = fresh(at::empty({u.size(0), u.size(1)}, u.options()));
  ScanStepParams k;
  k.dtype = dtype_code(u.scalar_type(), "selective_scan_step (CUDA)");
  k.weight_dtype = weight_code(A, u, "selective_scan_step (CUDA)");
  k.batch = u.size(0);
  k.dim = u.size(1);
  k.dstate = state.size(2);
  k.state = state.data_ptr<float>();
  k.u = u.data_ptr();
  k.u_batch_stride = u.stride(0);
  k.delta = delta.data_ptr();
  k.delta_batch_stride = delta.stride(0);
  k.B = B.data_ptr();
  k.B_batch_stride = B.stride(0);
  k.C = C.data_ptr();
  k.C_batch_stride = C.stride(0);
  k.z = z.defined() ? z.data_ptr() : nullptr;
  k.z_batch_stride = z.defined() ? z.stride(0) : 0;
  k.A = A.data_ptr();
  k.a_is_log = a_is_log;
  k.D = D.defined() ? D.data_ptr() : nullptr;
  k.dt_bias = delta_bias.defined() ? delta_bias.data_ptr() : nullptr;
  k.softplus = delta_softplus;
  k.out = out.data_ptr();
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  scan_step(k);
  return out;
}

bool mixer_step_supported(const at::Tensor& conv_state, const at::Tensor& ssm_state, const at::Tensor& xz,
                          const at::Tensor& conv_weight, const at::Tensor& conv_bias, const at::Tensor& mask,
                          const at::Tensor& x_proj, const at::Tensor& dt_proj, const at::Tensor& dt_bias,
                          const at::Tensor& A_log, const at::Tensor& D) {
  if (!(xz.defined() && xz.is_cuda() && xz.dim() == 2 && xz.size(1) % 2 == 0)) return false;
  const int64_t E = xz.size(1) / 2;
  // The conv part as the conv step takes it (x = xz's first half: the same rows and strides).
  if (!conv_step_supported(conv_state, xz.narrow(1, 0, E), conv_weight, conv_bias)) return false;
  if (!(A_log.defined() && A_log.dim() == 2 && A_log.size(0) == E && A_log.is_contiguous())) return false;
  const int64_t N = A_log.size(1);
  if (!(dt_proj.defined() && dt_proj.dim() == 2 && dt_proj.size(0) == E && dt_proj.is_contiguous())) return false;
  const int64_t R = dt_proj.size(1);
  return ssm_state.is_cuda() && ssm_state.device() == xz.device() && ssm_state.scalar_type() == at::kFloat &&
         ssm_state.dim() == 3 && ssm_state.size(0) == xz.size(0) && ssm_state.size(1) == E &&
         ssm_state.size(2) == N && ssm_state.is_contiguous() && x_proj.defined() && x_proj.dim() == 2 &&
         x_proj.size(0) == R + 2 * N && x_proj.size(1) == E && x_proj.is_contiguous() && vector_ok(dt_bias, E) &&
         vector_ok(D, E) && (!mask.defined() || (mask.is_cuda() && mask.device() == xz.device() && mask.dim() == 1 &&
                                                 mask.size(0) == E && at::isFloatingType(mask.scalar_type()))) &&
         weights_ok({&conv_weight, &conv_bias, &x_proj, &dt_proj, &dt_bias, &A_log, &D}, xz) &&
         xz.size(0) <= 65535;  // grid.y
}

at::Tensor mixer_step_cuda(at::Tensor& conv_state, at::Tensor& ssm_state, const at::Tensor& xz,
                           const at::Tensor& conv_weight, const at::Tensor& conv_bias, const at::Tensor& mask,
                           const at::Tensor& x_proj, const at::Tensor& dt_proj, const at::Tensor& dt_bias,
                           const at::Tensor& A_log, const at::Tensor& D) {
  MCD_CHECK(mixer_step_supported(conv_state, ssm_state, xz, conv_weight, conv_bias, mask, x_proj, dt_proj, dt_bias,
                                 A_log, D),
            "mixer_step (CUDA): unsupported tensors: xz ", xz.sizes(), ", conv state ", conv_state.sizes(),
            ", scan state ", ssm_state.sizes());
  const c10::cuda::CUDAGuard guard(xz.device());
  const int64_t E = xz.size(1) / 2;
  at::Tensor out = fresh(at::empty({xz.size(0), E}, xz.options()));
  const at::Tensor mask32 = mask.defined() ? mask.to(at::kFloat).contiguous() : mask;
  MixerStepParams k;
  k.dtype = dtype_code(xz.scalar_type(), "mixer_step (CUDA)");
  k.weight_dtype = weight_code(conv_weight, xz, "mixer_step (CUDA)");
  k.batch = xz.size(0);
  k.dim = E;
  k.dstate = A_log.size(1);
  k.dt_rank = dt_proj.size(1);
  k.width = static_cast<int>(conv_weight.size(1));
  k.xz = xz.data_ptr();
  k.xz_batch_stride = xz.stride(0);
  k.conv_state = conv_state.data_ptr();
  k.conv_state_s = strides_of(conv_state);
  k.ssm_state = ssm_state.data_ptr<float>();
  k.conv_weight = conv_weight.data_ptr();
  k.conv_weight_row_stride = conv_weight.stride(0);
  k.conv_bias = conv_bias.defined() ? conv_bias.data_ptr() : nullptr;
  k.mask = mask32.defined() ? mask32.data_ptr<float>() : nullptr;
  k.x_proj = x_proj.data_ptr();
  k.dt_proj = dt_proj.data_ptr();
  k.dt_bias = dt_bias.defined() ? dt_bias.data_ptr() : nullptr;
  k.A_log = A_log.data_ptr();
  k.D = D.defined() ? D.data_ptr() : nullptr;
  k.out = out.data_ptr();
  const at::Tensor u = at::empty({xz.size(0), E}, xz.options());
  const at::Tensor partials =
      at::empty({xz.size(0), (E + kMixerChannels - 1) / kMixerChannels, k.dt_rank + 2 * k.dstate},
                xz.options().dtype(at::kFloat));
  k.u = u.data_ptr();
  k.partials = partials.data_ptr<float>();
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  mixer_step(k);
  return out;
}

}  // namespace mcd::ops::cuda
