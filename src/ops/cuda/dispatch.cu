// dtype dispatch: the entry points declared in scan_params.h and conv_params.h pick the launch
// template instantiated in the per-dtype .cu files.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"
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
namespace {
// One thread per (b, e, n) walks the segments ([Note: scan time segments] in scan_params.h).
__global__ void scan_segment_combine_kernel(const float* A, const float* segment_states, const float* dt_sums,
                                            float* init_states, int64_t segments, int64_t rows, int64_t dim,
                                            int64_t dstate) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // (b, e, n), rows = B·E
  if (i >= rows * dstate) return;
  const int64_t row = i / dstate, e = row % dim;
  const float a2 = A[e * dstate + i % dstate] * kLog2e;
  float h = 0.f;
  init_states[i] = 0.f;
  for (int64_t s = 1; s < segments; ++s) {
    h = fmaf(exp2f(a2 * dt_sums[(s - 1) * rows + row]), h, segment_states[(s - 1) * rows * dstate + i]);
    init_states[s * rows * dstate + i] = h;
  }
}
}  // namespace

void scan_segment_combine(const float* A, const float* segment_states, const float* dt_sums, float* init_states,
                          int64_t segments, int64_t batch, int64_t dim, int64_t dstate, cudaStream_t stream) {
  const int64_t n = batch * dim * dstate;
  if (n == 0) return;
  constexpr int kThreads = 256;
  scan_segment_combine_kernel<<<static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      A, segment_states, dt_sums, init_states, segments, batch * dim, dim, dstate);
  MCD_CUDA_CHECK(cudaGetLastError());
}

void causal_conv_bwd(const CausalConvParams& p) {
  by_dtype(p, [&](auto* tag) { causal_conv_bwd_launch<std::remove_pointer_t<decltype(tag)>>(p); });
}

}  // namespace mcd::ops::cuda
