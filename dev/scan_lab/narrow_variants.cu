// The block forward at the pruned models' prefill widths (B = 1, E = 384 … 1152, below or near
// kBlockFwdStagedMinChannels): the library's choices there (when written: BlockFwdManyWaves below 768, two warps per
// channel — version 30 — up to 1,024, the staged configurations above) beside their neighbours in warps per channel, steps
// per thread and states at a time: a standalone program like staged_variants.cu, for one short device call.
// Why: two warps per channel (lab version 30) took 5.6 µs per layer off 130M's half-width prefill in
// the thirty-eighth session, leaving its ratio to dense at 0.758 against the 0.748 target (1.7 µs per layer more would
// meet it); the nineteenth session's lab had timed only versions 30, 34 and 45 at E = 768.
// Prediction: at E = 768 some neighbour (four warps of 8 steps held to one wave by registers, above all) beats
// version 30 by ≥ 3 %; a variant that does is the next candidate for the library, measured in the model.
// Outcome (thirty-ninth session, H100, two rounds): at E = 768 the staged version 79 (BlockFwdStaged) 72.9 / 71.8 µs,
// four warps x 8 held to 6 per SM 73.6 / 73.0, version 30 77.9 / 77.9 — the library now runs BlockFwdStaged from 768
// channels (0.758 → 0.743 of dense in the model); docs/results/2026-12-07h_staged_at_768/.
// Outputs are checked against the first configuration's within bf16 rounding (staged_bench.cuh, compare_and_time).
//   nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math --expt-relaxed-constexpr -I src dev/scan_lab/narrow_variants.cu
//   ./a.out [--reps N] [--shape L,E,N] …   (default shapes: L = 4096, N = 16, E = 768, 384, 512, 1152)
#include "staged_bench.cuh"

int main(int argc, char** argv) {
  int reps;
  std::vector<Shape> shapes = {{4096, 768, 16}, {4096, 384, 16}, {4096, 512, 16}, {4096, 1152, 16}};
  if (!parse_lab_args(argc, argv, "narrow_variants", reps, shapes)) return 2;
  // BlockFwdTraits<warps, items, channels, states, recompute, stage B/C, roll states, fixed columns, blocks per SM>; the first is
  // the reference of the output check. Unstaged configurations read B and C from global memory (L2-resident at these
  // widths: (N, L) rows shared by every channel).
  const std::vector<Config> configs = {
      {"2 warps x 16, 1 state (30)", &run<cu::BlockFwdTraits<2, 16, 1>>},
      {"BlockFwdManyWaves (34)", &run<cu::BlockFwdManyWaves>},
      {"4 warps x 16, 1 state (28)", &run<cu::BlockFwdTraits<4, 16, 1>>},
      {"4 warps x 8, 1 state (31)", &run<cu::BlockFwdTraits<4, 8, 1>>},
      {"2 warps x 8, 2 kept (35)", &run<cu::BlockFwdTraits<2, 8, 1, 2, false>>},
      {"2 warps x 8, 1 state", &run<cu::BlockFwdTraits<2, 8, 1>>},
      {"2 warps x 16, 1 state, recompute", &run<cu::BlockFwdTraits<2, 16, 1, 1, true>>},
      {"8 warps x 8, 1 state", &run<cu::BlockFwdTraits<8, 8, 1>>},
      {"8 warps x 4, 1 state", &run<cu::BlockFwdTraits<8, 4, 1>>},
      {"2 warps x 16, 2 channels", &run<cu::BlockFwdTraits<2, 16, 2>>},
      // Held to one wave by registers (kMinBlocks): E = 768's 768 four-warp blocks need 6 per SM on 132 SMs (≤ 85
      // registers: ptxas -v gives the vector kernel 80, no spill, against 91 unbounded), E = 384's 384 eight-warp
      // ones 3 (80 registers, 8 bytes spilled, against 95). Two states kept at 6 per SM spilled 252 bytes and two
      // warps × 16 at 9 per SM 84 (nvcc 13, sm_90): left out.
      {"4 warps x 8, 1 state, 6/SM", &run<cu::BlockFwdTraits<4, 8, 1, 1, false, false, false, false, 6>>},
      {"8 warps x 8, 1 state, 3/SM", &run<cu::BlockFwdTraits<8, 8, 1, 1, false, false, false, false, 3>>},
      {"staged 2 warps x 8, 4 ch", &run<cu::BlockFwdTraits<2, 8, 4, 2, true, true, true, true>>},
      {"BlockFwdStaged (79)", &run<cu::BlockFwdStaged>},
  };
  return compare_and_time(configs, shapes, reps) ? 0 : 1;
}
