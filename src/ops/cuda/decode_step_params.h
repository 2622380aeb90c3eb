// Parameters of the two decode-step kernels (ops/cuda/decode_step.cu), filled by the host ops
// (ops/cuda/decode_step_cuda.cpp). One token per sequence: each op is one launch instead of the
// 8 and 17 LibTorch ops of its composite, which is what a CUDA-graph decode step replays (issue 14).
// Semantics are the composites' in ops/causal_conv1d.cpp and ops/selective_scan.cpp, with every
// sum and the state in fp32:
//   conv step:  w = [state, x];  out = act(bias + Σ_k weight[e,k]·w[k]);  state = w[1:]
//   scan step:  dt = softplus?(delta + dt_bias), delta = delta_low·delta_projᵀ when delta_proj is given;
//               A = a_is_log ? −exp(A) : A
//               h = exp(dt·A)·h + dt·u·B;  y = Σ_n h·C + D·u;  y = y·silu(z)
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kStepThreads = 128;   // threads per block
constexpr int kScanStepLanes = 4;         // scan step: lanes per (sequence, channel)
constexpr int kScanStepMaxPerLane = 16;  // states per lane: the scan step takes N ≤ 64
// Overlapped launches (ops option decode_overlap) only up to this batch: at batch 64 the steps sit
// between cuBLAS products, and overlapping them made a 130M / 370M token 1 % / 2 % slower (H200,
// docs/PERF_NOTES.md, "Seventh session"); at batch ≤ 8 the neighbours were decode_linear kernels.
// Since the ops option decode_few_row_limit (default 1) sends batches 2–8 to cuBLAS's products too,
// those steps sit between cuBLAS products as well; overlapped there, 130M took 0.61–0.63 ms per token
// against batch 9's 0.62 without (H200, twenty-fifth session): no difference either way, unchanged.
constexpr int64_t kStepOverlapMaxBatch = 8;

// Rows are sequences: a (B, E) tensor is `ptr + b·batch_stride + e` (unit channel stride).
struct ConvStepParams {
  DType dtype = DType::kFloat32;         // x, out and the state
  DType weight_dtype = DType::kFloat32;  // weight and bias: fp32 or dtype
  int64_t batch = 0, dim = 0;            // B, E
  int width = 0;                         // K (1..4)
  const void* x = nullptr;  int64_t x_batch_stride = 0;
  void* state = nullptr;    Strides3 state_s;  // (B, E, K−1): batch, channel, time strides
  const void* weight = nullptr;  int64_t weight_row_stride = 0;  // (E, K), unit time stride
  const void* bias = nullptr;                                    // (E) contiguous, or null
  bool silu = true;
  void* out = nullptr;  // (B, E) contiguous
  bool overlap = false;  // an overlapped launch (cuda_common.cuh launch_overlapped; ops option decode_overlap)
  cudaStream_t stream = nullptr;
};

struct ScanStepParams {
  DType dtype = DType::kFloat32;         // u, delta, B, C, z, out
  DType weight_dtype = DType::kFloat32;  // A, D, dt_bias: fp32 or dtype
  int64_t batch = 0, dim = 0, dstate = 0;  // B, E, N
  float* state = nullptr;  // (B, E, N) fp32 contiguous, updated in place
  const void* u = nullptr;      int64_t u_batch_stride = 0;
  const void* delta = nullptr;  int64_t delta_batch_stride = 0;  // (B, E), or (B, rank) with delta_proj
  const void* delta_proj = nullptr;  int64_t rank = 0;  // (E, rank) contiguous in the weights' dtype, or null
  const void* B = nullptr;      int64_t B_batch_stride = 0;  // (B, N), unit state stride
  const void* C = nullptr;      int64_t C_batch_stride = 0;
  const void* z = nullptr;      int64_t z_batch_stride = 0;  // or null
  const void* A = nullptr;       // (E, N) contiguous
  bool a_is_log = false;         // A holds A_log: A = −exp(A_log)
  const void* D = nullptr;       // (E) contiguous, or null
  const void* dt_bias = nullptr; // (E) contiguous, or null
  bool softplus = true;
  void* out = nullptr;  // (B, E) contiguous
  bool overlap = false;  // an overlapped launch (cuda_common.cuh launch_overlapped; ops option decode_overlap)
  // With delta_proj, the caller's promise that the kernel launched just before this one writes
  // none of the state, u, z and the weights (only Δ's rows, B and C), and lets this one start only
  // after everything before it has finished (selective_scan_step_projected: its own x_proj kernel,
  // decode_linear.cu, which waits before it allows the next launch): the kernel then loads those
  // before waiting for its predecessor, so the state's round trip (from DRAM: it was written a
  // whole token ago) overlaps x_proj instead of following it. The same results.
  bool inputs_settled = false;
  cudaStream_t stream = nullptr;
};

void conv_step(const ConvStepParams& p);
void scan_step(const ScanStepParams& p);

}  // namespace mcd::ops::cuda
