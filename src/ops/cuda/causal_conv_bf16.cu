// Causal depthwise conv1d forward and backward, __nv_bfloat16 instantiation (see causal_conv.cuh).
#include "ops/cuda/causal_conv.cuh"

namespace mcd::ops::cuda {
template void causal_conv_fwd_launch<__nv_bfloat16>(const CausalConvParams&);
template void causal_conv_bwd_launch<__nv_bfloat16>(const CausalConvParams&);
}  // namespace mcd::ops::cuda
