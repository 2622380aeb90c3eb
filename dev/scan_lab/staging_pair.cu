// The staged block forward's two ways of staging B and C (BlockFwdTraits::kStageFixedColumn off / on) at the library's
// three staged configurations, without the rest of the lab: a standalone program (CUDA runtime and the scan headers,
// no LibTorch, no mcd_kernels) that builds in under a minute, so that one short device call can time it. The staging
// changes where copies are issued, not a single sum, so each pair must give the same output bits; then each
// configuration is timed (CUDA events, median of --reps launches, bf16, B = 1, time-contiguous rows as the model's
// prefill passes them, inputs rotated past the 50 MB L2).
//   nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math --expt-relaxed-constexpr -I src dev/scan_lab/staging_pair.cu
//   ./a.out [--reps N] [--shape L,E,N] …
#include "staged_bench.cuh"

int main(int argc, char** argv) {
  int reps;
  std::vector<Shape> shapes = {{4096, 1536, 16}, {4096, 2048, 16}, {4096, 1152, 16}};
  if (!parse_lab_args(argc, argv, "staging_pair", reps, shapes)) return 2;
  // Pairs: per-copy staging (the library's until the thirty-third session), fixed-column staging
  // (BlockFwdTraits::kStageFixedColumn; the library's since: 6–11 % faster on an H100, docs/PERF_NOTES.md).
  const std::vector<std::pair<Config, Config>> pairs = {
      {{"59 BlockFwdStaged", &run<cu::BlockFwdTraits<1, 16, 4, 2, true, true, true>>},
       {"79 59 fixed columns", &run<cu::BlockFwdTraits<1, 16, 4, 2, true, true, true, true>>}},
      {{"65 BlockFwdStagedEight", &run<cu::BlockFwdTraits<1, 16, 8, 2, true, true, true>>},
       {"80 65 fixed columns", &run<cu::BlockFwdTraits<1, 16, 8, 2, true, true, true, true>>}},
      {{"48 BlockFwdStagedWide", &run<cu::BlockFwdTraits<1, 8, 8, 2, true, true>>},
       {"48 fixed columns", &run<cu::BlockFwdTraits<1, 8, 8, 2, true, true, false, true>>}},
  };
  print_device();
  bool all_same = true;
  for (const Shape& shape : shapes) {
    const int64_t L = shape.L, E = shape.E, N = shape.N;
    std::vector<Set> in = input_sets(L, E, N);
    for (const auto& pr : pairs) {
      const std::vector<T> ref = output_of(pr.first, in[0], L, E, N), got = output_of(pr.second, in[0], L, E, N);
      const bool same = std::memcmp(ref.data(), got.data(), ref.size() * sizeof(T)) == 0;
      int64_t nan = 0;
      for (const T& v : ref) nan += __bfloat162float(v) != __bfloat162float(v);
      all_same = all_same && same && nan == 0;
      std::printf("L%ld E%ld N%ld  %-24s vs %-24s outputs %s, %ld NaN\n", long(L), long(E), long(N), pr.first.name,
                  pr.second.name, same ? "bit for bit equal" : "DIFFER", long(nan));
    }
    for (int round = 0; round < 2; ++round)
      for (const auto& pr : pairs)
        for (const Config* c : {&pr.first, &pr.second}) {
          const Timing t = time_config(*c, in, L, E, N, reps);
          std::printf("L%ld E%ld N%ld round %d  %-24s median %.1f us  (min %.1f, max %.1f)\n", long(L), long(E), long(N),
                      round + 1, c->name, t.median, t.min, t.max);
        }
    for (auto& s : in) free_set(s);
  }
  std::printf("check: %s\n", all_same ? "every pair bit for bit equal, no NaN" : "FAILED");
  return all_same ? 0 : 1;
}
