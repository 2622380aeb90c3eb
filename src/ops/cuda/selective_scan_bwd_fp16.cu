// Selective-scan backward, __half instantiation (see selective_scan_bwd.cuh).
#include "ops/cuda/selective_scan_bwd.cuh"

namespace mcd::ops::cuda {
template void selective_scan_bwd_launch<__half>(const SelectiveScanParams&);
}  // namespace mcd::ops::cuda
