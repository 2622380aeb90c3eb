// The scan lab's block-forward versions 68–72 (lab_version.h): when a thread's u, δ and z rows are loaded.
#include "block_forward_version.cuh"

namespace scan_lab {

std::vector<Version> block_forward_versions_e() {
  return {
      // Twenty-ninth session's hypothesis: the staged block forward (59 = BlockFwdStaged, 65 =
      // BlockFwdStagedEight) waits on global memory twice per 512-step chunk — u and δ at the chunk's
      // start, z after the state loop — with ~12 (59 at E = 1,536) or 16 (65 at 2,048) warps per SM to
      // hide it behind; B and C already come one chunk ahead through shared memory. Versions 62 (kept
      // exponentials, half the MUFU work of 59) ran as fast as 59, so the kernel is not issue- or MUFU-bound.
      // Prediction: z loaded with u and δ (BlockFwdTraits::kPrefetch 1) takes ~half the exposed latency
      // off, the next chunk's rows loaded a chunk ahead (2) nearly all, i.e. ≥ 5 % at E = 1,536. 65 sits at
      // 128 registers for two 256-thread blocks per SM: kPrefetch 2's 24 more registers may cost it its
      // second block (then 71 loses and 70 is the candidate there).
      block_forward<1, 16, 4, 2, true, true, true, 1>("68"),   // 59, z early
      block_forward<1, 16, 4, 2, true, true, true, 2>("69"),   // 59, rows a chunk ahead
      block_forward<1, 16, 8, 2, true, true, true, 1>("70"),   // 65, z early
      block_forward<1, 16, 8, 2, true, true, true, 2>("71"),   // 65, rows a chunk ahead
      block_forward<1, 16, 4, 2, false, true, true, 2>("72"),  // 62 (kept), rows a chunk ahead
  };
}

}  // namespace scan_lab
