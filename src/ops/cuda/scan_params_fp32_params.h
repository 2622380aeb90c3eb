// Parameters of the kernel that widens a Mamba layer's scan parameters to the fp32 the scan kernels
// take (ops/cuda/scan_params_fp32.cu), filled by the host op (ops/cuda/scan_params_fp32_cuda.cpp):
//   A = −exp(A_log)   (E, N)      D32 = D   (E)      delta_bias32 = delta_bias   (E)
// in one launch where the composite is five (A_log's cast, exp, the negation, two casts) — what a
// captured prefill replays per layer, since no memo may stand in for them there (model/mamba.h).
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

struct ScanParamsFp32Params {
  DType dtype = DType::kFloat32;  // of A_log, D and delta_bias alike
  int64_t dim = 0, dstate = 0;    // E, N
  const void* A_log = nullptr;       // (E, N) contiguous
  const void* D = nullptr;           // (E) contiguous, or null
  const void* delta_bias = nullptr;  // (E) contiguous, or null
  float* A = nullptr;                // (E, N) out
  float* D32 = nullptr;              // (E) out, or null with D
  float* delta_bias32 = nullptr;     // (E) out, or null with delta_bias
  cudaStream_t stream = nullptr;
};

void scan_params_fp32(const ScanParamsFp32Params& p);

}  // namespace mcd::ops::cuda
