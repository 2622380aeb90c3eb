// The one place where LibTorch 1.13 (Debian, CPU) and 2.x (GPU machines) differ for us.
// Everything else includes this header instead of spelling version-specific names.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <optional>
#include <sstream>
#include <type_traits>

namespace mcd {

constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// An optional tensor argument as LibTorch's own ops take it: c10::optional in 1.x, which is a
// distinct type there, and std::optional (aliased by c10::optional) in 2.x.
#if TORCH_VERSION_MAJOR >= 2
using OptTensor = std::optional<at::Tensor>;
#else
using OptTensor = c10::optional<at::Tensor>;
#endif

// A CPU random generator seeded deterministically (the factory's name changed in 2.x).
inline at::Generator make_cpu_generator(uint64_t seed) {
#if TORCH_VERSION_MAJOR >= 2
  return at::make_generator<at::CPUGeneratorImpl>(seed);
#else
  return at::detail::createCPUGenerator(seed);
#endif
}

// A random generator on `device` seeded deterministically: the CPU one above, or a copy of the device's
// default generator reseeded (same calls in both versions; the default itself is left untouched).
inline at::Generator make_generator(uint64_t seed, const torch::Device& device) {
  if (device.is_cpu()) return make_cpu_generator(seed);
  at::Generator gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

inline bool cuda_available() { return torch::cuda::is_available(); }

// a·b (2-D) in fp32. From LibTorch 2.9 cuBLAS writes fp32 straight from bf16/fp16 CUDA operands (mm's
// out_dtype overload): one pass, where a product in the operands' dtype needs a cast pass after it
// (and rounds the result to 8 bits of mantissa on the way). Used for weight gradients.
inline at::Tensor mm_fp32(const at::Tensor& a, const at::Tensor& b) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
  const auto t = a.scalar_type();
  if (a.is_cuda() && (t == at::kBFloat16 || t == at::kHalf) && b.scalar_type() == t) return at::mm(a, b, at::kFloat);
#endif
  return at::mm(a, b).to(at::kFloat);
}
// out = a·b for an fp32 out whose contents are ignored (it may be uninitialised): from bf16/fp16
// CUDA operands cuBLAS writes fp32 straight into it (addmm's out_dtype overload with beta = 0, which
// does not read C; LibTorch 2.9+); else a product into it (same dtype) or a product and a copy.
inline void mm_fp32_out(at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
  const auto t = a.scalar_type();
  if (a.is_cuda() && (t == at::kBFloat16 || t == at::kHalf) && b.scalar_type() == t &&
      out.scalar_type() == at::kFloat) {
    at::addmm_out(out, out, a, b, at::kFloat, /*beta=*/0, /*alpha=*/1);
    return;
  }
#endif
  if (a.scalar_type() == out.scalar_type() && b.scalar_type() == out.scalar_type()) at::mm_out(out, a, b);
  else out.copy_(at::mm(a, b));
}
// acc += a·b for an fp32 acc: one cuBLAS call from bf16/fp16 CUDA operands (addmm's out_dtype
// overload, LibTorch 2.9+), else a product in the operands' dtype and an add.
inline void addmm_fp32_(at::Tensor& acc, const at::Tensor& a, const at::Tensor& b) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
  const auto t = a.scalar_type();
  if (a.is_cuda() && (t == at::kBFloat16 || t == at::kHalf) && b.scalar_type() == t &&
      acc.scalar_type() == at::kFloat) {
    at::addmm_out(acc, acc, a, b, at::kFloat);
    return;
  }
#endif
  acc.add_(at::mm(a, b));
}

// CUDA autocast (mixed precision) on/off with a low-precision dtype; the API moved from
// set_enabled/set_autocast_gpu_dtype (1.x) to per-device-type functions (2.x).
inline void set_cuda_autocast(bool enabled, at::ScalarType dtype = at::kBFloat16) {
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
  at::autocast::set_enabled(enabled);
  at::autocast::set_autocast_gpu_dtype(dtype);
#endif
}
inline void clear_autocast_cache() { at::autocast::clear_cache(); }
// Whether CUDA autocast is on in this thread, and its low-precision dtype.
inline bool cuda_autocast_enabled() {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}
inline at::ScalarType cuda_autocast_dtype() {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

// bf16 CUDA autocast for one scope (when `enabled`): on at construction; off, with its cast cache
// cleared, at destruction. The cache must not outlive the forward it served.
class CudaAutocastScope {
 public:
  explicit CudaAutocastScope(bool enabled) : enabled_(enabled) {
    if (enabled_) set_cuda_autocast(true);
  }
  ~CudaAutocastScope() {
    if (!enabled_) return;
    set_cuda_autocast(false);
    clear_autocast_cache();
  }
  CudaAutocastScope(const CudaAutocastScope&) = delete;
  CudaAutocastScope& operator=(const CudaAutocastScope&) = delete;

 private:
  bool enabled_;
};

// The key under which torch::optim keeps a parameter's state: a string of the TensorImpl
// address in 1.x, the address itself in later versions.
template <typename StateMap>
auto optimizer_state_key(const StateMap&, const at::Tensor& param) {
  using Key = typename StateMap::key_type;
  void* impl = param.unsafeGetTensorImpl();
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << impl;
    return os.str();
  } else {
    return static_cast<Key>(impl);
  }
}

inline std::string torch_version_string() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace mcd
