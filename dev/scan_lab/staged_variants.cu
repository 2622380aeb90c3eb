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
// Different variants sum in different orders, so outputs are compared against the library configuration's within
// bf16 rounding: each element's difference in units of its bf16 spacing (2^-7 of its magnitude, the spacing's
// largest relative size; magnitudes below the output's rms / 256 count as that, where summation order moves the last
// bits of a near-cancelled sum) — the largest such difference and how many exceed 2 units are printed; a NaN or an
// element beyond 8 units marks the variant FAILED.
//   nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math --expt-relaxed-constexpr -I src dev/scan_lab/staged_variants.cu
//   ./a.out [--reps N] [--shape L,E,N] …
#include <cmath>

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
  cudaDeviceProp prop;
  MCD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s\n", prop.name);
  bool all_ok = true;
  for (const Shape& shape : shapes) {
    const int64_t L = shape.L, E = shape.E, N = shape.N;
    std::vector<Set> in;
    for (int k = 0, sets = rotated_sets(L, E, N); k < sets; ++k) in.push_back(make_set(L, E, N, 1234u + k));
    const std::vector<T> ref = output_of(configs[0], in[0], L, E, N);
    double sq = 0;
    for (const T& v : ref) sq += double(__bfloat162float(v)) * __bfloat162float(v);
    const double floor_mag = std::sqrt(sq / double(ref.size())) / 256;  // near-zero outputs: spacing of rms / 256
    for (const Config& c : configs) {
      const std::vector<T> got = output_of(c, in[0], L, E, N);
      double worst = 0;
      int64_t over2 = 0, nan = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        const double r = __bfloat162float(ref[i]), g = __bfloat162float(got[i]);
        if (std::isnan(r) || std::isnan(g)) { ++nan; continue; }
        const double spacing = std::max(std::fabs(r), floor_mag) / 128.0;
        const double units = std::fabs(g - r) / spacing;
        worst = std::max(worst, units);
        over2 += units > 2;
      }
      const bool ok = nan == 0 && worst <= 8;
      all_ok = all_ok && ok;
      std::printf("L%ld E%ld N%ld  %-26s vs the first: largest difference %.2f bf16 spacings, %ld beyond 2, %ld NaN%s\n",
                  long(L), long(E), long(N), c.name, worst, long(over2), long(nan), ok ? "" : "  FAILED");
    }
    for (int round = 0; round < 2; ++round)
      for (const Config& c : configs) {
        const Timing t = time_config(c, in, L, E, N, reps);
        std::printf("L%ld E%ld N%ld round %d  %-26s median %.1f us  (min %.1f, max %.1f)\n", long(L), long(E), long(N),
                    round + 1, c.name, t.median, t.min, t.max);
      }
    for (auto& s : in) free_set(s);
  }
  std::printf("check: %s\n", all_ok ? "every variant within 8 bf16 spacings of the first, no NaN" : "FAILED");
  return all_ok ? 0 : 1;
}
