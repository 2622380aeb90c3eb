// Fused mixer: option, support check and dispatch (see mamba_inner.h). The autograd node is
// in ops/cuda/mamba_inner_cuda.cpp.
#include "ops/mamba_inner.h"

#include "ops/backend.h"
#include "ops/options.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {

bool fused_mixer_enabled() { return ops_options().fused_mixer; }

bool mamba_inner_supported(const at::Tensor& xz, const MambaInnerWeights& w) {
#ifdef MCD_WITH_CUDA
  return fused_mixer_enabled() && backend() == Backend::kAuto && xz.is_cuda() && xz.dim() == 3 &&
         cuda::mamba_inner_cuda_supported(xz, w);
#else
  (void)xz;
  (void)w;
  return false;
#endif
}

at::Tensor mamba_inner(const at::Tensor& xz, const MambaInnerWeights& w) {
  MCD_CHECK(mamba_inner_supported(xz, w), "mamba_inner: not supported for these inputs (xz ", xz.sizes(),
            " on ", xz.device(), "); use the op-by-op mixer");
#ifdef MCD_WITH_CUDA
  return cuda::mamba_inner_cuda(xz, w, at::globalContext().deterministicAlgorithms());
#else
  fail("mamba_inner: built without CUDA kernels");
#endif
}

}  // namespace mcd::ops
