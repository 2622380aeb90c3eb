// Host op of the narrow product at batch rows (narrow_linear_params.h): which tensors it takes, and the launch on
// LibTorch's current stream. The dispatch is in ops/decode_linear.cpp.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include "ops/cuda/host_common.h"
#include "ops/cuda/narrow_linear_params.h"
#include "ops/cuda/ops_cuda.h"
#include "ops/options.h"
#include "util/error.h"

namespace mcd::ops::cuda {
namespace {

// Clusters of blocks (and the kernel's body) need compute capability 9.0.
bool device_has_clusters(int device) { return at::cuda::getDeviceProperties(device)->major >= 9; }

// A bf16 matrix the kernel reads by 16-byte pieces: unit inner stride, rows a whole number of pieces apart, an aligned base.
bool rows_of_pieces(const at::Tensor& t) {
  return t.stride(1) == 1 && t.stride(0) % 8 == 0 && aligned16(t.data_ptr());
}

}  // namespace

bool narrow_linear_supported(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (bias.defined() || !x.defined() || !weight.defined() || !x.is_cuda() || !weight.is_cuda()) return false;
  if (x.scalar_type() != at::kBFloat16 || weight.scalar_type() != at::kBFloat16 || x.dim() != 2 || weight.dim() != 2 ||
      weight.device() != x.device())
    return false;
  const int64_t rows = x.size(0), in = x.size(1), out = weight.size(0);
  return rows >= kNarrowLinearMinRows && rows <= kNarrowLinearMaxRows && weight.size(1) == in && in > 0 &&
         in % kNarrowLinearInStep == 0 && in <= kNarrowLinearMaxIn && out >= 1 && out <= kNarrowLinearMaxOut &&
         rows_of_pieces(x) && rows_of_pieces(weight) && device_has_clusters(x.get_device());
}

at::Tensor narrow_linear_cuda(const at::Tensor& x, const at::Tensor& weight) {
  MCD_CHECK(narrow_linear_supported(x, weight, at::Tensor()), "narrow_linear (CUDA): unsupported tensors: x ",
            x.sizes(), " ", x.scalar_type(), ", weight ", weight.sizes(), " ", weight.scalar_type());
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = fresh(at::empty({x.size(0), weight.size(0)}, x.options()));
  NarrowLinearParams k;
  k.rows = x.size(0);
  k.in_features = x.size(1);
  k.out_features = weight.size(0);
  k.x = x.data_ptr();
  k.x_row_stride = x.stride(0);
  k.weight = weight.data_ptr();
  k.w_row_stride = weight.stride(0);
  k.out = out.data_ptr();
  k.overlap = ops_options().decode_overlap;
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  narrow_linear(k);
  return out;
}

}  // namespace mcd::ops::cuda
