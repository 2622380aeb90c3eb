// Plain types shared by the CUDA kernels' parameter structs (scan_params.h, conv_params.h).
// No LibTorch here: the kernels compile with plain nvcc, and only the host ops in
// ops/cuda/*.cpp translate tensors into these structs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mcd::ops::cuda {

// Element type of the activation tensors (u, Δ, z, B, C, x, out and their gradients). Weights,
// A, D, biases and the mask are always fp32; states and accumulations are always fp32.
enum class DType : int { kFloat32, kFloat16, kBFloat16 };

// Element strides (64-bit) of a 3-d tensor (batch, row, time): (B, E, L) or (B, N, L).
struct Strides3 {
  int64_t batch = 0, row = 0, time = 0;
};

}  // namespace mcd::ops::cuda
