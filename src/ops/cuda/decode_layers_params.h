// Parameters of the persistent decode kernel (ops/cuda/decode_layers.cu), filled by the host op
// (ops/cuda/decode_layers_cuda.cpp): every Mamba layer of one decode token for a batch of 1–64 rows in ONE kernel
// (issue 14). Semantics: ops/decode_layers.h. Why one kernel: at batch 64 the per-layer chain is ~145 kernels per
// token of a few µs of latency each; the weights never depend on the token, so a kernel that lives through all
// layers requests layer l's weight slices and states while layer l − 1 still computes (docs/results/
// 2026-12-07d_persistent_layers/README.md, where the design was measured as a lab first).
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kDecodeLayersMaxRows = 64;
constexpr int kDecodeLayersMaxLayers = 64;
constexpr int kDecodeLayersCluster = 8;  // blocks per cluster (x_proj's and out_proj's inner slices)

// One layer's weights (nn.Linear layout (out, in), all bf16) and decode state, used in place.
struct DecodeLayerPointers {
  const void *norm_weight = nullptr, *in_proj = nullptr, *conv_weight = nullptr, *conv_bias = nullptr;
  const void *x_proj = nullptr, *dt_proj_weight = nullptr, *dt_proj_bias = nullptr, *A_log = nullptr, *D = nullptr;
  const void* out_proj = nullptr;
  void* conv_state = nullptr;  // (rows, E, 3) bf16 contiguous
  float* ssm_state = nullptr;  // (rows, E, 16) fp32 contiguous
};

// The table travels in the kernel's parameters (`__grid_constant__`; CUDA ≥ 12.1 allows 32 KB of them), so a
// captured graph holds it and nothing is copied to the device per step.
struct DecodeLayersParams {
  int layers = 0, rows = 0;              // rows ≤ kDecodeLayersMaxRows
  int d_model = 0, d_inner = 0, dt_rank = 0;  // one of the compiled shapes (decode_layers_shape_compiled)
  float eps = 1e-5f;                     // every layer's norm
  const int64_t* tokens = nullptr;       // (rows)
  const void* embedding = nullptr;       // (V, D) bf16: layer 0's input is embedding[tokens[m]] (its residual too)
  float* residual = nullptr;             // (rows, D) fp32: the residual stream before the last layer's output
  void* pending = nullptr;               // (rows, D) bf16: the last layer's out_proj
  void* scratch = nullptr;               // decode_layers_scratch_bytes(...) bytes, 16-byte aligned
  unsigned* counter = nullptr;           // the grid barrier's counter; zeroed by decode_layers before the kernel
  DecodeLayerPointers layer[kDecodeLayersMaxLayers];
  cudaStream_t stream = nullptr;
};

// Whether the kernel is compiled for these widths (d_state 16, conv width 4): the 130M and 370M presets.
bool decode_layers_shape_compiled(int d_model, int d_inner, int dt_rank);
// Whether the current device holds enough clusters of the kernel's blocks at once (every block must be resident:
// the layers meet at grid barriers). False on devices before sm_90.
bool decode_layers_fits_device(int d_model, int d_inner, int dt_rank);
size_t decode_layers_scratch_bytes(int d_model, int d_inner);
void decode_layers(const DecodeLayersParams& p);

}  // namespace mcd::ops::cuda
