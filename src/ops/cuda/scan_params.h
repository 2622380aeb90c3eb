// Parameters of one selective-scan call on CUDA, forward and backward: sizes, 64-bit strides,
// raw pointers and flags, filled by the host op (ops/cuda/selective_scan_cuda.cpp) and read by
// the kernels (ops/cuda/selective_scan_{fwd,bwd}.cuh). See [Note: scan kernel layout] in
// docs/PERF_NOTES.md for the work split.
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kScanChunk = 128;     // timesteps per chunk; one saved state per chunk and channel
constexpr int kScanChannels = 8;    // channels per thread block (the dB/dC partial slices)
constexpr int kScanMaxState = 64;   // largest N the kernels accept (shared memory bound)
constexpr int kScanVariants = 12;  // kernel-lab versions, see selective_scan_{fwd,bwd}.cuh
constexpr int kSeqChunk = 32;     // variants 7–12: timesteps per tile (and per saved state in 7–11)
constexpr int kSeqSub = 8;        // variants 7–12: backward sub-tile; variant 12 saves a state every kSeqSub steps
constexpr int kSeqBwdChannels = 32;  // variants 7–12: channels per deterministic backward block (dB/dC slices)
constexpr int kSeqMaxState = 16;     // variants 7–12 take N ≤ 16; larger N runs variant 5 or 6
constexpr int kSeqFatBlocksPerSm = 3;  // variants 11, 12: backward blocks per SM (≤ 168 registers)

// The version variant = 0 selects (docs/PERF_NOTES.md), for N ≤ 16:
// - 12 when B·E channels × 4 lanes fill the GPU but the backward's blocks (32 channels each) fit
//   one wave at kSeqFatBlocksPerSm per SM: the GPU is under-occupied, so the backward takes the
//   registers of a 3-block SM, and the forward saves a state every 8 steps (4× the saved-state
//   memory of 8) so that the backward recomputes nothing twice;
// - 8 when more channels than that fill the GPU (four 128-register blocks per SM);
// - below B·E = 6144, 5 (16 lanes per channel over time) or 6 (32 lanes).
// sm_count 0 (unknown) never picks 12.
inline int scan_default_variant(int64_t batch, int64_t dim, int sm_count) {
  if (batch * dim < 6144) return batch * dim < 4096 ? 6 : 5;
  const int64_t blocks = batch * ((dim + kSeqBwdChannels - 1) / kSeqBwdChannels);
  return blocks <= int64_t(kSeqFatBlocksPerSm) * sm_count ? 12 : 8;
}
inline int scan_resolve_variant(int requested, int64_t batch, int64_t dim, int64_t dstate, int sm_count) {
  if (requested == 0) requested = scan_default_variant(batch, dim, sm_count);
  if (requested >= 7 && dstate > kSeqMaxState) requested = batch * dim < 4096 ? 6 : 5;
  return requested;
}
// Timesteps between the saved states, and channels per dB/dC partial slice, of a (resolved)
// variant: the forward and backward of one variant must agree, and the host allocates by them.
inline int64_t scan_state_chunk(int variant) {
  return variant == 12 ? kSeqSub : variant >= 7 ? kSeqChunk : kScanChunk;
}
inline int64_t scan_slice_channels(int variant) { return variant >= 7 ? kSeqBwdChannels : kScanChannels; }
// Saved states per channel over len steps, and dB/dC partial slices over dim channels.
inline int64_t scan_state_count(int variant, int64_t len) {
  return (len + scan_state_chunk(variant) - 1) / scan_state_chunk(variant);
}
inline int64_t scan_slice_count(int variant, int64_t dim) {
  return (dim + scan_slice_channels(variant) - 1) / scan_slice_channels(variant);
}

struct SelectiveScanParams {
  DType dtype = DType::kFloat32;
  int64_t batch = 0, dim = 0, len = 0, dstate = 0;  // B, E, L, N
  int64_t n_chunks = 0;  // ceil(L / scan_state_chunk(variant)): saved states per channel

  // Inputs in `dtype`, any strides. z may be null.
  const void* u = nullptr;      Strides3 u_s;      // (B, E, L)
  const void* delta = nullptr;  Strides3 delta_s;  // (B, E, L), before bias and softplus
  const void* z = nullptr;      Strides3 z_s;      // (B, E, L)
  const void* Bm = nullptr;     Strides3 B_s;      // (B, N, L)
  const void* Cm = nullptr;     Strides3 C_s;      // (B, N, L)
  // fp32, contiguous. D, delta_bias and mask may be null.
  const float* A = nullptr;           // (E, N)
  const float* D = nullptr;           // (E)
  const float* delta_bias = nullptr;  // (E)
  const float* mask = nullptr;        // (E): u' = mask ⊙ u feeds the scan and the D skip
  bool delta_softplus = true;
  bool deterministic = false;  // backward: dB/dC through per-slice partials, no atomics
  int variant = 0;             // kernel version (1..kScanVariants), resolved by the host op

  // Forward outputs. In the backward, a non-null out receives the forward's output again
  // (recomputed from the saved states), for callers that do not keep it.
  void* out = nullptr;  Strides3 out_s;  // (B, E, L) in dtype
  float* states = nullptr;       // (B, E, n_chunks, N) state at each chunk start, or null
  float* last_state = nullptr;   // (B, E, N) h_L, or null

  // Backward: dout in, gradients out. `states` must hold the forward's chunk-start states.
  const void* dout = nullptr;  Strides3 dout_s;  // (B, E, L)
  void* du = nullptr;          Strides3 du_s;
  void* ddelta = nullptr;      Strides3 ddelta_s;
  void* dz = nullptr;          Strides3 dz_s;    // null when z is
  float* dB = nullptr;         // (B, N, L) fp32; zero-filled by the host in atomic mode
  float* dC = nullptr;         // (B, N, L) fp32
  float* dB_part = nullptr;    // deterministic: (ceil(E / scan_slice_channels(variant)), B, N, L)
  float* dC_part = nullptr;
  // dA, dD, dΔ-bias, dmask: per-batch partials (B, E, N) / (B, E) summed by the host in a fixed
  // order, or (param_grads_atomic, the non-deterministic default) one zero-filled (E, N) / (E) row
  // that every batch adds into atomically.
  bool param_grads_atomic = false;
  float* dA_part = nullptr;
  float* dD_part = nullptr;
  float* ddelta_bias_part = nullptr;
  float* dmask_part = nullptr;

  cudaStream_t stream = nullptr;  // LibTorch's current stream, passed by the host op
};

// Launch on p.stream and check the launch; throw mcd::Error on a CUDA error.
void selective_scan_fwd(const SelectiveScanParams& p);
void selective_scan_bwd(const SelectiveScanParams& p);

}  // namespace mcd::ops::cuda
