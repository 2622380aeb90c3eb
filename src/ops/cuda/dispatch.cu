// dtype dispatch: the entry points declared in scan_params.h and conv_params.h pick the launch
// template instantiated in the per-dtype .cu files.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "ops/cuda/conv_params.h"
#include "ops/cuda/scan_params.h"
#include "util/error.h"

namespace mcd::ops::cuda {

template <typename T> void selective_scan_fwd_launch(const SelectiveScanParams&);
template <typename T> void selective_scan_bwd_launch(const SelectiveScanParams&);
template <typename T> void causal_conv_fwd_launch(const CausalConvParams&);
template <typename T> void causal_conv_bwd_launch(const CausalConvParams&);

namespace {
template <class Params, class Fn>
void by_dtype(const Params& p, Fn&& fn) {
  switch (p.dtype) {
    case DType::kFloat32: fn(static_cast<float*>(nullptr)); return;
    case DType::kFloat16: fn(static_cast<__half*>(nullptr)); return;
    case DType::kBFloat16: fn(static_cast<__nv_bfloat16*>(nullptr)); return;
  }
  fail("CUDA kernels: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}
}  // namespace

void selective_scan_fwd(const SelectiveScanParams& p) {
  by_dtype(p, [&](auto* tag) { selective_scan_fwd_launch<std::remove_pointer_t<decltype(tag)>>(p); });
}
void selective_scan_bwd(const SelectiveScanParams& p) {
  by_dtype(p, [&](auto* tag) { selective_scan_bwd_launch<std::remove_pointer_t<decltype(tag)>>(p); });
}
void causal_conv_fwd(const CausalConvParams& p) {
  by_dtype(p, [&](auto* tag) { causal_conv_fwd_launch<std::remove_pointer_t<decltype(tag)>>(p); });
}
void causal_conv_bwd(const CausalConvParams& p) {
  by_dtype(p, [&](auto* tag) { causal_conv_bwd_launch<std::remove_pointer_t<decltype(tag)>>(p); });
}

}  // namespace mcd::ops::cuda
