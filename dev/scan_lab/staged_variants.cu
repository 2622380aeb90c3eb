// The staged block forward's neighbours, all staging B and C by fixed columns (the library's way since the
// thirty-third session), timed beside the library's three configurations: a standalone program like staging_pair.cu
// (the scan headers and the CUDA runtime only), for one short device call.
// Why: the fixed-column staging took ~15 % of the staged kernel's instructions away (ncu, thirty-second session: the
// kernel was close to its issue limit, 62 % of issue slots busy, 12 warps per SM). Neighbours that lost while the
// copies took those slots — four states at a time (more chains in flight, 61 lost unrolled and rolled), a and bx kept
// instead of recomputed (half the exponentials, 62 lost), two warps per channel (16 warps per SM, 66/67 lost) — may
// now win. Prediction: none beats the library's choice by more than 3 % (the chains' latency, not the issue rate,
// sets the rest); a variant that does is a candidate for the library.
// Outcome (thirty-third session, H100, docs/PERF_NOTES.md): held — every variant within 0.6 % of the library's choice
// at E = 1536 and 2048, or slower.
// Outputs are checked against the first configuration's within bf16 rounding (staged_bench.cuh, compare_and_time).
//   nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math --expt-relaxed-constexpr -I src dev/scan_lab/staged_variants.cu
//   ./a.out [--reps N] [--shape L,E,N] …
#include "staged_bench.cuh"

int main(int argc, char** argv) {
  int reps;
  std::vector<Shape> shapes = {{4096, 1536, 16}, {4096, 2048, 16}};
  if (!parse_lab_args(argc, argv, "staged_variants", reps, shapes)) return 2;
  // BlockFwdTraits<warps, items, channels, states, recompute, stage B/C, roll states, fixed columns>; the first is
  // the reference of the output check.
  const std::vector<Config> configs = {
      {"BlockFwdStaged (79)", &run<cu::BlockFwdStaged>},
      {"Staged, 4 states", &run<cu::BlockFwdTraits<1, 16, 4, 4, true, true, true, true>>},
      {"Staged, 1 state", &run<cu::BlockFwdTraits<1, 16, 4, 1, true, true, true, true>>},
      {"Staged, kept", &run<cu::BlockFwdTraits<1, 16, 4, 2, false, true, true, true>>},
      {"BlockFwdStagedEight (80)", &run<cu::BlockFwdStagedEight>},
      {"Eight, kept", &run<cu::BlockFwdTraits<1, 16, 8, 2, false, true, true, true>>},
      {"Eight, 4 states", &run<cu::BlockFwdTraits<1, 16, 8, 4, true, true, true, true>>},
      {"2 warps/ch, recompute", &run<cu::BlockFwdTraits<2, 8, 4, 2, true, true, true, true>>},
      {"2 warps/ch, kept", &run<cu::BlockFwdTraits<2, 8, 4, 2, false, true, true, true>>},
      {"BlockFwdStagedWide (81)", &run<cu::BlockFwdStagedWide>},
  };
  return compare_and_time(configs, shapes, reps) ? 0 : 1;
}
