// One lab version of the library's block forward (selective_scan_block_fwd.cuh) in a given
// configuration, fp32 and bf16; included by the block_versions_*.cu files, each instantiating a
// share of the configurations (separate translation units: nvcc builds them in parallel).
#pragma once

#include <cuda_bf16.h>

#include <string>

#include "lab_version.h"
#include "ops/cuda/selective_scan_block_fwd.cuh"

namespace scan_lab {

template <int kWarps, int kItems, int kChannels, int kStates = 1, bool kRecompute = false, bool kStage = false,
          bool kRollStates = false, bool kFixedColumn = false>
inline Version block_forward(const std::string& number) {
  using Tr = mcd::ops::cuda::BlockFwdTraits<kWarps, kItems, kChannels, kStates, kRecompute, kStage, kRollStates,
                                                kFixedColumn>;
  return {number + " block_forward " + std::to_string(kWarps) + "w x " + std::to_string(kItems) + " x " +
              std::to_string(kChannels) + "ch" +
              (kStates > 1 ? " " + std::to_string(kStates) + " states" + (kRecompute ? " recompute" : " kept") : "") +
              (kStage ? " B/C staged" : "") + (kRollStates ? " states rolled" : "") + (kFixedColumn ? " fixed columns" : ""),
          mcd::ops::cuda::kScanChunk,
          [](const SelectiveScanParams& p) {
            SelectiveScanParams q = p;
            q.states = nullptr;  // forward only
            mcd::ops::cuda::selective_scan_block_fwd_run<Tr, float, Flags>(q);
          },
          {}, mcd::ops::cuda::kScanBlockMaxState,
          [](const SelectiveScanParams& p) {
            SelectiveScanParams q = p;
            q.states = nullptr;
            mcd::ops::cuda::selective_scan_block_fwd_run<Tr, __nv_bfloat16, Flags>(q);
          }};
}

}  // namespace scan_lab
