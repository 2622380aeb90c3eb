// Host op of the scan-parameter kernel (scan_params_fp32_params.h): which tensors it takes, and the
// launch on LibTorch's current stream. The dispatch is in ops/selective_scan.cpp.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "ops/cuda/scan_params_fp32_params.h"
#include "util/error.h"

namespace mcd::ops::cuda {

bool scan_params_fp32_supported(const at::Tensor& A_log, const at::Tensor& D, const at::Tensor& delta_bias) {
  if (!A_log.defined() || !A_log.is_cuda() || A_log.dim() != 2 || !A_log.is_contiguous()) return false;
  const auto t = A_log.scalar_type();
  if (t != at::kFloat && t != at::kHalf && t != at::kBFloat16) return false;
  auto like_A_log = [&](const at::Tensor& v) {
    return vector_ok(v, A_log.size(0)) && (!v.defined() || (v.device() == A_log.device() && v.scalar_type() == t));
  };
  return like_A_log(D) && like_A_log(delta_bias);
}

ScanParams32 scan_params_fp32_cuda(const at::Tensor& A_log, const at::Tensor& D,
                                                const at::Tensor& delta_bias) {
  MCD_CHECK(scan_params_fp32_supported(A_log, D, delta_bias), "scan_params_fp32 (CUDA): unsupported tensors: A_log ",
            A_log.sizes(), " ", A_log.scalar_type());
  const c10::cuda::CUDAGuard guard(A_log.device());
  const auto f32 = A_log.options().dtype(at::kFloat);
  const int64_t E = A_log.size(0);
  ScanParams32 out{fresh(at::empty(A_log.sizes(), f32)), D.defined() ? fresh(at::empty({E}, f32)) : D,
                   delta_bias.defined() ? fresh(at::empty({E}, f32)) : delta_bias};
  ScanParamsFp32Params k;
  k.dtype = dtype_code(A_log.scalar_type(), "scan_params_fp32 (CUDA)");
  k.dim = E;
  k.dstate = A_log.size(1);
  k.A_log = A_log.data_ptr();
  k.D = D.defined() ? D.data_ptr() : nullptr;
  k.delta_bias = delta_bias.defined() ? delta_bias.data_ptr() : nullptr;
  k.A = out.A.data_ptr<float>();
  k.D32 = D.defined() ? out.D.data_ptr<float>() : nullptr;
  k.delta_bias32 = delta_bias.defined() ? out.delta_bias.data_ptr<float>() : nullptr;
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  scan_params_fp32(k);
  return out;
}

}  // namespace mcd::ops::cuda
