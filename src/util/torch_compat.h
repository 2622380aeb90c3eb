// The one place where LibTorch 1.13 (Debian, CPU) and 2.x (GPU machines) differ for us.
// Everything else includes this header instead of spelling version-specific names.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <optional>

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

inline bool cuda_available() { return torch::cuda::is_available(); }

inline std::string torch_version_string() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace mcd
