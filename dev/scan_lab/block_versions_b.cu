// The scan lab's block-forward versions 37–44 (lab_version.h).
#include "block_forward_version.cuh"

namespace scan_lab {

std::vector<Version> block_forward_versions_b() {
  return {
      // 37 is the library's block_forward for 16-bit activations while its blocks fit at once, 34 otherwise.
      block_forward<1, 16, 2, 2, true>("37"),
      block_forward<4, 8, 1, 4, false>("38"), block_forward<4, 8, 1, 4, true>("39"),
      // Next to 37 (timed in the eighth session): more channels per block, fewer steps, four states.
      block_forward<1, 16, 4, 2, true>("40"), block_forward<1, 8, 4, 2, false>("41"),
      block_forward<1, 16, 2, 4, true>("42"), block_forward<2, 8, 2, 2, false>("43"),
      block_forward<1, 8, 2, 2, false>("44"),
  };
}

}  // namespace scan_lab
