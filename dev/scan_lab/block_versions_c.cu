// The scan lab's block-forward versions 45–49 and 54–57 (lab_version.h).
#include "block_forward_version.cuh"

namespace scan_lab {

std::vector<Version> block_forward_versions_c() {
  return {
      // B and C staged in shared memory per chunk, one chunk ahead (tenth session; 45 is the library's
      // BlockFwdStaged, ScanAlgorithm::kBlockForwardStaged), against 37.
      block_forward<1, 16, 4, 2, true, true>("45"), block_forward<1, 8, 4, 2, false, true>("46"),
      block_forward<1, 16, 4, 2, false, true>("47"), block_forward<1, 8, 8, 2, true, true>("48"),
      block_forward<1, 16, 4, 4, true, true>("49"),
      // Eighteenth session (not yet run): B and C staged with two warps per channel, for the pruned
      // widths (1, 4096, 384 … 1024), where 45's one warp per channel walks all 4,096 steps in under one
      // block per SM. Chunks of 512 steps, as 45's (fp32's staged rows then still fit: 128 KB).
      block_forward<2, 8, 4, 2, false, true>("54"), block_forward<2, 8, 2, 2, false, true>("55"),
      block_forward<2, 8, 1, 2, false, true>("56"), block_forward<2, 8, 2, 2, true, true>("57"),
  };
}

}  // namespace scan_lab
