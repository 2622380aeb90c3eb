// Parameters of one causal depthwise conv1d (+ optional SiLU) call on CUDA, forward and
// backward, filled by the host op (ops/cuda/causal_conv_cuda.cpp) and read by the kernels
// (ops/cuda/causal_conv.cuh). out[b,e,t] = act(bias[e] + Σ_k w[e,k]·x[b,e,t−(K−1)+k]).
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kConvMaxWidth = 4;    // K = 1..4
constexpr int kConvTimeTile = 128;  // tile kernels: timesteps per block and per weight-gradient partial
constexpr int kConvSeg = 32;        // channel-contiguous kernels: timesteps per thread and per partial
constexpr int kConvLastCh = 4;      // channel-contiguous kernels: adjacent channels per thread

struct CausalConvParams {
  DType dtype = DType::kFloat32;
  int64_t batch = 0, dim = 0, len = 0;  // B, E, L
  int width = 0;                        // K
  // The channel-contiguous kernels (causal_conv_last.cuh) run when the host sets this: x, out /
  // dout, dx have unit channel stride, E % kConvLastCh == 0, and every base pointer and time
  // stride is aligned to kConvLastCh elements.
  bool channel_last = false;
  // The forward's time-contiguous kernel (causal_conv_rows.cuh) runs when the host sets this instead:
  // x and out have unit time stride or one step (16-byte vectors wherever a row's alignment allows).
  bool time_rows = false;
  int64_t n_time_tiles = 0;             // ceil(L / (channel_last ? kConvSeg : kConvTimeTile))

  const void* x = nullptr;  Strides3 x_s;  // (B, E, L) in dtype, any strides
  const float* weight = nullptr;           // (E, K) fp32 contiguous
  const float* bias = nullptr;             // (E) fp32, or null
  // With time_rows only, instead of weight and bias: both in dtype (a half-precision model served),
  // converted in registers to the very fp32 values a cast would give — no cast kernels per call.
  const void* weight_in_dtype = nullptr;   // (E, K) contiguous
  const void* bias_in_dtype = nullptr;     // (E), or null
  bool silu = true;

  void* out = nullptr;  Strides3 out_s;    // forward: (B, E, L)
  // Forward with time_rows only, or null: the conv state after x, (B, E, K − 1) in dtype — x's last
  // K − 1 steps, zeros before t = 0 — written by the kernel (the prefill hands it to the decoder).
  void* final_state = nullptr;  Strides3 final_state_s;

  const void* dout = nullptr;  Strides3 dout_s;  // backward
  void* dx = nullptr;          Strides3 dx_s;
  // The weight gradients leave either as partials (B, n_time_tiles, E[, K]) that the host sums in a
  // fixed order (deterministic; every tile kernel), or, with the channel-contiguous kernels only,
  // added atomically into dweight (E, K) / dbias (E), zero-filled by the host.
  float* dweight_part = nullptr;
  float* dbias_part = nullptr;    // or null (no bias)
  float* dweight = nullptr;       // non-null: the atomic path
  float* dbias = nullptr;         // or null (no bias)

  cudaStream_t stream = nullptr;
};

void causal_conv_fwd(const CausalConvParams& p);
void causal_conv_bwd(const CausalConvParams& p);

}  // namespace mcd::ops::cuda
