// The scan parameters widened to fp32 in one launch (scan_params_fp32_params.h). exp in double,
// rounded once to fp32: this file is compiled with --use_fast_math, under which expf would be the
// approximate __expf; the eager memo and the captured prefill both take these values
// (ops::scan_params_fp32), so an eager and a replayed prefill give the same bits.
#include <string>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/scan_params_fp32_params.h"

namespace mcd::ops::cuda {
namespace {

constexpr int kThreads = 256;

template <typename W>
__global__ void __launch_bounds__(kThreads) scan_params_fp32_kernel(ScanParamsFp32Params p) {
  const int64_t en = p.dim * p.dstate;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < en + 2 * p.dim;
       i += int64_t(gridDim.x) * kThreads) {
    if (i < en) {
      p.A[i] = -static_cast<float>(exp(static_cast<double>(to_float(static_cast<const W*>(p.A_log)[i]))));
    } else if (i < en + p.dim) {
      if (p.D) p.D32[i - en] = to_float(static_cast<const W*>(p.D)[i - en]);
    } else if (p.delta_bias) {
      p.delta_bias32[i - en - p.dim] = to_float(static_cast<const W*>(p.delta_bias)[i - en - p.dim]);
    }
  }
}

template <typename W>
void launch(const ScanParamsFp32Params& p) {
  const int64_t n = p.dim * p.dstate + 2 * p.dim;
  const unsigned blocks = unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 1024));
  scan_params_fp32_kernel<W><<<blocks, kThreads, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void scan_params_fp32(const ScanParamsFp32Params& p) {
  if (p.dim == 0) return;
  switch (p.dtype) {
    case DType::kFloat32: launch<float>(p); return;
    case DType::kFloat16: launch<__half>(p); return;
    case DType::kBFloat16: launch<__nv_bfloat16>(p); return;
  }
  fail("scan_params_fp32: unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace mcd::ops::cuda
