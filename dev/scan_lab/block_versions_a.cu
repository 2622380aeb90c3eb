// The scan lab's block-forward versions 28–36 (lab_version.h).
#include "block_forward_version.cuh"

namespace scan_lab {

std::vector<Version> block_forward_versions_a() {
  return {
      // The library's block forward (ScanAlgorithm::kBlockForward, selective_scan_block_fwd.cuh): 16-byte loads
      // of time-contiguous rows; warps × steps × channels per block, states at a time. Versions 20-27 (the sixth
      // session's, with the next state's B/C loaded ahead) are gone with that option; PERF_NOTES keeps their times.
      block_forward<4, 16, 1>("28"), block_forward<1, 16, 2>("29"), block_forward<2, 16, 1>("30"),
      block_forward<4, 8, 1>("31"),
      // States in groups (seventh session): 2 or 4 states' chains interleaved, one barrier per group.
      block_forward<2, 16, 1, 2, true>("32"), block_forward<2, 16, 1, 2, false>("33"),
      block_forward<4, 8, 1, 2, false>("34"), block_forward<2, 8, 1, 2, false>("35"),
      block_forward<2, 16, 1, 4, true>("36"),
  };
}

}  // namespace scan_lab
