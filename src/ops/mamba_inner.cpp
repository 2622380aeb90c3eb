// Fused mixer: switch, support check and dispatch (see mamba_inner.h). The autograd node is
// in ops/cuda/mamba_inner_cuda.cpp.
#include "ops/mamba_inner.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "ops/backend.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {
namespace {

// A switch from the environment: "0" turns it off, "1" on, anything else (or unset) keeps `fallback`.
bool env_switch(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  const std::string s(v);
  return s == "0" ? false : s == "1" ? true : fallback;
}
std::atomic<bool>& fused_flag() {
  static std::atomic<bool> flag{env_switch("MCD_FUSED_MIXER", true)};
  return flag;
}
std::atomic<bool>& save_u_flag() {
  static std::atomic<bool> flag{env_switch("MCD_MIXER_SAVE_U", false)};
  return flag;
}

}  // namespace

bool fused_mixer_enabled() { return fused_flag().load(); }
void set_fused_mixer(bool on) { fused_flag().store(on); }
bool mixer_saves_conv_output() { return save_u_flag().load(); }
void set_mixer_saves_conv_output(bool on) { save_u_flag().store(on); }

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
