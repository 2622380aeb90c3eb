// Selective-scan forward, __nv_bfloat16 instantiation (see selective_scan_fwd.cuh).
#include "ops/cuda/selective_scan_fwd.cuh"

namespace mcd::ops::cuda {
template void selective_scan_fwd_launch<__nv_bfloat16>(const SelectiveScanParams&);
}  // namespace mcd::ops::cuda
