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
#include "ops/options.h"
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
  k.overlap = ops_options().decode_overlap && k.batch <= kStepOverlapMaxBatch;
  conv_step(k);
  return out;
}

bool scan_step_supported(const at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                         const at::Tensor& A, const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
                         const at::Tensor& z, const at::Tensor& delta_bias, const at::Tensor& delta_proj) {
  if (!(u.defined() && u.is_cuda() && kernel_dtype(u.scalar_type()) && u.dim() == 2)) return false;
  const int64_t E = u.size(1);
  if (!(state.is_cuda() && state.device() == u.device() && state.scalar_type() == at::kFloat && state.dim() == 3 &&
        state.size(0) == u.size(0) && state.size(1) == E && state.is_contiguous()))
    return false;
  const int64_t N = state.size(2);
  if (N < 1 || N > kScanStepLanes * kScanStepMaxPerLane) return false;
  // With delta_proj (E, R), delta holds the (B, R) low-rank rows.
  const bool low_rank_ok = !delta_proj.defined() || (delta_proj.dim() == 2 && delta_proj.size(0) == E &&
                                                     delta_proj.size(1) >= 1 && delta_proj.is_contiguous());
  const int64_t delta_cols = delta_proj.defined() ? delta_proj.size(1) : E;
  return low_rank_ok && rows_ok(u, u, E) && rows_ok(delta, u, delta_cols) && rows_ok(B, u, N) && rows_ok(C, u, N) &&
         (!z.defined() || rows_ok(z, u, E)) && A.defined() && A.dim() == 2 && A.size(0) == E && A.size(1) == N &&
         A.is_contiguous() && vector_ok(D, E) && vector_ok(delta_bias, E) &&
         weights_ok({&A, &D, &delta_bias, &delta_proj}, u);
}

at::Tensor selective_scan_step_cuda(at::Tensor& state, const at::Tensor& u, const at::Tensor& delta,
                                    const at::Tensor& A, const at::Tensor& B, const at::Tensor& C,
                                    const at::Tensor& D, const at::Tensor& z, const at::Tensor& delta_bias,
                                    bool delta_softplus, bool a_is_log, const at::Tensor& delta_proj,
                                    bool inputs_settled) {
  MCD_CHECK(scan_step_supported(state, u, delta, A, B, C, D, z, delta_bias, delta_proj),
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
  k.delta_proj = delta_proj.defined() ? delta_proj.data_ptr() : nullptr;
  k.rank = delta_proj.defined() ? delta_proj.size(1) : 0;
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
  k.overlap = ops_options().decode_overlap && k.batch <= kStepOverlapMaxBatch;
  k.inputs_settled = inputs_settled && delta_proj.defined();
  scan_step(k);
  return out;
}

}  // namespace mcd::ops::cuda
