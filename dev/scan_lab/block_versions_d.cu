// The scan lab's block-forward versions 59–67 (lab_version.h): the state-group loop rolled; 79–81 staged by fixed columns.
#include "block_forward_version.cuh"

namespace scan_lab {

std::vector<Version> block_forward_versions_d() {
  return {
      // Twenty-fifth session (H200, (1, 4096, E, 16) bf16, µs): 59 92.9 against 45's 101.6 at E = 1,536 and
      // 65 105.0 against 48's 131.1 at 2,048 — now the library's BlockFwdStaged and BlockFwdStagedEight;
      // 60 ≈ 48, 61/63 no better than 59/60, 64 ≈ 34 (36.9 / 41.6 against 39.5 / 41.6 at E = 384 / 512),
      // 66/67 138 (docs/PERF_NOTES.md). Twenty-fourth session's plan: the library's configurations and their neighbours with the
      // loop over state groups not unrolled (BlockFwdTraits::kRollStates): one group's code instead of
      // eight (two states at a time) or four copies. Hypothesis: the unrolled kernels' instruction-cache
      // misses (11 % of version 37's warp samples, ncu, tenth session) cost more than the rolled loop's
      // few instructions per group. Prediction: 59 ≥ 5 % faster than 45 at E = 1,536 and 60 than 48 at
      // 2,048; four states at a time (61, 63), which lost unrolled (49: 149.8 against 45's 101.1 µs),
      // come back beside two. Against: 59 ≈ 45 (the misses hide behind other stalls).
      block_forward<1, 16, 4, 2, true, true, true>("59"),   // 45 rolled (BlockFwdStaged since)
      block_forward<1, 8, 8, 2, true, true, true>("60"),    // 48 rolled (BlockFwdStagedWide)
      block_forward<1, 16, 4, 4, true, true, true>("61"),   // 49 rolled
      block_forward<1, 16, 4, 2, false, true, true>("62"),  // 47 rolled (kept)
      block_forward<1, 8, 8, 4, true, true, true>("63"),    // 48 with four states, rolled
      block_forward<4, 8, 1, 2, false, false, true>("64"),  // 34 rolled (BlockFwdManyWaves: below 1,024 channels)
      // 59's thread with eight channels per block (two 256-thread blocks per SM by registers): E = 2,048's
      // 256 blocks in one wave with 16 steps per thread, where 48 / 60 take 8.
      block_forward<1, 16, 8, 2, true, true, true>("65"),   // (BlockFwdStagedEight since)
      // Two warps per channel, 8 steps per thread, four channels per block (54, rolled; and recomputing):
      // at E = 1,536 one warp per channel caps an SM at ~12 warps (1,536 warps over 132 SMs) whatever
      // the registers; with two, 100 registers fit two of these 256-thread blocks per SM: 16 warps.
      block_forward<2, 8, 4, 2, false, true, true>("66"),
      block_forward<2, 8, 4, 2, true, true, true>("67"),
      // Thirty-second session: the library's staged configurations with B and C staged by fixed columns
      // (BlockFwdTraits::kStageFixedColumn). ncu on 59 at (1, 4096, 1,536): its copy loop issued ~17 % of the
      // kernel's warp instructions (~50 per 16-byte copy) where ~4 would do. Prediction: 79 ≥ 6 % faster than 59
      // at E = 1,536, 80 than 65 at 2,048, 81 than 60 (the copies are the same share there).
      block_forward<1, 16, 4, 2, true, true, true, true>("79"),  // 59 (BlockFwdStaged)
      block_forward<1, 16, 8, 2, true, true, true, true>("80"),  // 65 (BlockFwdStagedEight)
      block_forward<1, 8, 8, 2, true, true, true, true>("81"),   // 60 (48 rolled; BlockFwdStagedWide unrolled)
  };
}

}  // namespace scan_lab
