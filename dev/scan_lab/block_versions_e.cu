// The scan lab's block-forward versions 73–78 (lab_version.h): a channel's states split over warps.
#include "block_forward_version.cuh"

namespace scan_lab {

std::vector<Version> block_forward_versions_e() {
  return {
      // Thirty-first session (not yet run). The twenty-ninth session's ncu of 59 (the library's BlockFwdStaged at
      // E = 1,536): issue slots 62 % busy at 12 warps per SM, the per-state chains setting the pace; more warps
      // per channel splitting *time* (66/67) pay a barrier per state group and lost. Hypothesis: warps that
      // split a channel's *states* (BlockFwdTraits::kSplit; same steps, partial C·h sums added once per chunk
      // in shared memory) double the warps per SM without that barrier. At E = 1,536 one wave needs 12
      // channels per SM, i.e. 768 threads and ≤ 85 registers, hence 8 steps per thread (59 holds 16 in 128
      // registers). Prediction: 73 ≥ 7 % faster than 59 at (1, 4096, 1,536) (≤ 87 µs on an H100, issue 14's
      // 1.5×); against: the shuffle scan's cost per step doubles with 8 steps, and u, δ, softplus run twice.
      // Registers (ptxas, sm_90, bf16 vector kernel): one state at a time fits 80 without spilling (73, 74); two
      // (75) spill 80 bytes.
      block_forward<1, 8, 4, 1, true, true, true, 2, 3>("73"),   // 4 channels × 2 splits, 3 blocks per SM
      block_forward<1, 8, 4, 1, false, true, true, 2, 3>("74"),  // 73 keeping pass 1's products
      block_forward<1, 8, 4, 2, true, true, true, 2, 3>("75"),   // 73 two states at a time
      block_forward<1, 8, 3, 1, true, true, true, 2, 4>("76"),   // 3 channels per block, 4 blocks per SM
      block_forward<1, 8, 8, 1, true, true, true, 2, 2>("77"),   // for E = 2,048: 8 channels, 2 blocks per SM
      block_forward<1, 16, 4, 1, true, true, true>("78"),        // control: 59 one state at a time, unsplit
  };
}

}  // namespace scan_lab
