// The scan lab's block-forward versions 45–49 (lab_version.h).
#include "block_forward_version.cuh"

namespace scan_lab {

std::vector<Version> block_forward_versions_c() {
  return {
      // B and C staged in shared memory per chunk, one chunk ahead (tenth session; 45 is the library's
      // BlockFwdStaged, ScanAlgorithm::kBlockForwardStaged), against 37.
      block_forward<1, 16, 4, 2, true, true>("45"), block_forward<1, 8, 4, 2, false, true>("46"),
      block_forward<1, 16, 4, 2, false, true>("47"), block_forward<1, 8, 8, 2, true, true>("48"),
      block_forward<1, 16, 4, 4, true, true>("49"),
  };
}

}  // namespace scan_lab
