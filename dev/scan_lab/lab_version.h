// The scan lab's versions (scan_lab.cu): a name, the kernels it runs and what it takes. Split over
// translation units (block_versions_{a,b,c,d}.cu: the block forwards) so that nvcc compiles them in
// parallel: as one file the lab took ~3 minutes to build, more than a device call could spare.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ops/cuda/scan_params.h"
#include "ops/cuda/selective_scan_common.cuh"

namespace scan_lab {

using mcd::ops::cuda::SelectiveScanParams;
using Flags = mcd::ops::cuda::ScanFlags<true, true, false>;  // z, softplus, atomic (every optional input present)

struct Version {
  std::string name;
  int64_t chunk;  // steps between saved states
  std::function<void(const SelectiveScanParams&)> fwd, bwd;  // bwd empty: a forward-only version
  int64_t max_state = mcd::ops::cuda::kScanMaxState;         // the largest N it takes
  std::function<void(const SelectiveScanParams&)> fwd_bf16;  // also timed with bf16 activations, if set
  std::function<void(const SelectiveScanParams&)> bwd_bf16;  // with fwd_bf16: fwd+bwd timed in bf16 too
};

// The library's block forward in the configurations the lab times: versions 28–36, 37–44, 45–49 and
// 54–57, 59–67 (block_versions_{a,b,c,d}.cu).
std::vector<Version> block_forward_versions_a();
std::vector<Version> block_forward_versions_b();
std::vector<Version> block_forward_versions_c();
std::vector<Version> block_forward_versions_d();

}  // namespace scan_lab
