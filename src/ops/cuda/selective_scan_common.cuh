// Kernel traits of the selective scan (forward and backward share them, so the backward finds
// the forward's chunk-start states where it expects them). See [Note: scan kernel layout] in
// docs/PERF_NOTES.md.
#pragma once

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/scan_params.h"

namespace mcd::ops::cuda {

// One block = one batch row × kChannels channels; each channel is served by kLanes adjacent
// lanes of one warp, lane j owning the kItems consecutive timesteps j·kItems … of the chunk.
// Per state n a lane runs its items sequentially and the lanes combine their segments with a
// shuffle scan of the affine maps h ↦ P·h + S.
template <int kLanes_, int kItems_, int kChannels_>
struct ScanTraits {
  static constexpr int kLanes = kLanes_;
  static constexpr int kItems = kItems_;
  static constexpr int kChannels = kChannels_;
  static constexpr int kThreads = kLanes * kChannels;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kChunk = kLanes * kItems;
  // A shared row holds one channel's (or one state's) chunk, time t at (t % kItems)·(kLanes+1)
  // + t / kItems: lane j's item i is then at i·(kLanes+1) + j, so a warp reading item i hits
  // consecutive banks, and the odd row pitch keeps channel-contiguous tile loads spread too.
  static constexpr int kPitch = kItems * (kLanes + 1) + 1;
  static_assert(32 % kLanes == 0 && kThreads % 32 == 0, "a channel's lanes share one warp");
  struct Layout {
    __device__ __forceinline__ static int at(int r, int t) {
      return r * kPitch + (t % kItems) * (kLanes + 1) + t / kItems;
    }
  };
};

// 16 lanes × 8 items per channel (ScanAlgorithm::kTimeParallel); 32 lanes × 4 items
// (kTimeParallelWide: twice the threads per channel, for small B·E). Both keep kScanChunk and kScanChannels, so the states and
// the deterministic partial slices are laid out alike.
using ScanConfig = ScanTraits<16, 8, kScanChannels>;
using ScanConfigWide = ScanTraits<32, 4, kScanChannels>;
static_assert(ScanConfig::kChunk == kScanChunk && ScanConfigWide::kChunk == kScanChunk,
              "kScanChunk must match the kernel traits");

// A channel's constants for the forward and backward kernels: D, Δ's bias and the mask (0, 0 and 1
// past the last channel, where e_ok is false).
struct ScanChannelConsts {
  float D, bias, mask;
};
__device__ __forceinline__ ScanChannelConsts scan_channel_consts(const SelectiveScanParams& p, int64_t e, bool e_ok) {
  return {(p.D != nullptr && e_ok) ? p.D[e] : 0.f, (p.delta_bias != nullptr && e_ok) ? p.delta_bias[e] : 0.f,
          (p.mask != nullptr && e_ok) ? p.mask[e] : 1.f};
}

// Batch row b's inputs at channel row `row` (B and C have no channel row; z is null without kHasZ).
template <typename T>
struct ScanInputRows {
  const T* u;
  const T* dt;
  const T* z;
  const T* B;
  const T* C;
};
template <typename T, bool kHasZ>
__device__ __forceinline__ ScanInputRows<T> scan_input_rows(const SelectiveScanParams& p, int64_t b, int64_t row) {
  return {static_cast<const T*>(p.u) + b * p.u_s.batch + row * p.u_s.row,
          static_cast<const T*>(p.delta) + b * p.delta_s.batch + row * p.delta_s.row,
          kHasZ ? static_cast<const T*>(p.z) + b * p.z_s.batch + row * p.z_s.row : nullptr,
          static_cast<const T*>(p.Bm) + b * p.B_s.batch, static_cast<const T*>(p.Cm) + b * p.C_s.batch};
}

// A call's runtime flags as compile-time traits: with_{forward,backward}_flags() turn them into one Flags
// type in one place, and every scan kernel takes that type instead of positional bools.
template <bool kHasZ_, bool kSoftplus_, bool kDeterministic_>
struct ScanFlags {
  static constexpr bool kHasZ = kHasZ_;                    // z given: out = y·SiLU(z)
  static constexpr bool kSoftplus = kSoftplus_;            // Δ = softplus(Δ + bias), else Δ + bias
  static constexpr bool kDeterministic = kDeterministic_;  // backward: dB/dC as per-slice partials
};

// Calls fn(ScanFlags<…>{}) for p's z and softplus: the forward (no reduction, so it is compiled
// once, kDeterministic = false), and the backward also for p.deterministic. Each switch
// instantiates every branch, so the forward must not switch on the reduction mode.
template <class Fn>
void with_forward_flags(const SelectiveScanParams& p, Fn&& fn) {
  MCD_BOOL_SWITCH(p.z != nullptr, kHasZ, [&] {
    MCD_BOOL_SWITCH(p.delta_softplus, kSoftplus, [&] { fn(ScanFlags<kHasZ, kSoftplus, false>{}); });
  });
}
template <class Fn>
void with_backward_flags(const SelectiveScanParams& p, Fn&& fn) {
  MCD_BOOL_SWITCH(p.deterministic, kDet, [&] {
    with_forward_flags(p, [&](auto flags) {
      using F = decltype(flags);
      fn(ScanFlags<F::kHasZ, F::kSoftplus, kDet>{});
    });
  });
}

}  // namespace mcd::ops::cuda
