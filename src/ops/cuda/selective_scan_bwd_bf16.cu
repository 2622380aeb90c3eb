// Selective-scan backward, __nv_bfloat16 instantiation (see selective_scan_bwd.cuh).
#include "ops/cuda/selective_scan_bwd.cuh"

namespace mcd::ops::cuda {
template void selective_scan_bwd_launch<__nv_bfloat16>(const SelectiveScanParams&);
}  // namespace mcd::ops::cuda
