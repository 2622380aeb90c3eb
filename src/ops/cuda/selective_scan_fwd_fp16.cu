// Selective-scan forward, __half instantiation (see selective_scan_fwd.cuh).
#include "ops/cuda/selective_scan_fwd.cuh"

namespace mcd::ops::cuda {
template void selective_scan_fwd_launch<__half>(const SelectiveScanParams&);
}  // namespace mcd::ops::cuda
