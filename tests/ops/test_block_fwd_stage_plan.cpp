// The staged block forward's fixed-column staging plan (ops/cuda/block_fwd_stage_plan.h,
// BlockFwdTraits::kStageFixedColumn): plain arithmetic the kernel runs per thread, checked here on the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/cuda/block_fwd_stage_plan.h"

namespace mcd {
namespace {

// The threads of a block, each walking its rows as stage_bc_chunk_fixed_column does (first_row, then every step-th,
// at most max_copies of them, stopping at N), must copy every (row, column) of the chunk's N rows exactly once, and
// each copy must read the bytes of its vector that lie inside the rows: 16 inside, the elements left where the
// vector straddles the end, 0 past it — for the library's staged configurations (steps per staged row × threads:
// BlockFwdStaged 512 × 128, BlockFwdStagedEight 512 × 256, BlockFwdStagedWide 256 × 256) in bf16 and fp32, N = 1, 5,
// 16 (kScanBlockMaxState), and chunks that are whole or straddle the rows' end.
TEST(BlockFwdStagePlan, ThreadsCopyEveryRowAndColumnOnceWithTheBytesInsideTheRows) {
  constexpr int kMaxRows = 16;  // kScanBlockMaxState (ops/cuda/scan_params.h)
  struct Config {
    int chunk, threads;
  };
  for (const Config cfg : {Config{512, 128}, Config{512, 256}, Config{256, 256}}) {
    for (const int elem : {2, 4}) {
      const ops::cuda::FixedColumnStage plan(cfg.chunk, cfg.threads, elem);
      const int per = 16 / elem, row_vecs = cfg.chunk / per;
      ASSERT_EQ(plan.row_vecs, row_vecs);
      ASSERT_EQ(cfg.threads % row_vecs, 0) << "every thread one column";
      for (const int N : {1, 5, kMaxRows}) {
        // whole chunks; a straddling vector with per − 1 elements inside (7 = 8 − 1 in bf16, 4 + 3 in fp32), with 1,
        // with 5 (37)
        for (const int64_t len : {int64_t(cfg.chunk) * 3, int64_t(cfg.chunk) * 2 + 7, int64_t(cfg.chunk) * 2 + 1,
                                  int64_t(cfg.chunk) * 2 + 37}) {
          for (int64_t t0 = 0; t0 < len; t0 += cfg.chunk) {
            std::vector<int> copies(size_t(N) * row_vecs, 0);
            for (int t = 0; t < cfg.threads; ++t) {
              const int v = plan.column(t);
              for (int j = 0; j < plan.max_copies(kMaxRows); ++j) {
                const int n = plan.first_row(t) + j * plan.step;
                if (n >= N) break;
                ++copies[size_t(n) * row_vecs + v];
                const int64_t inside = std::clamp<int64_t>(len - (t0 + int64_t(v) * per), 0, per);
                ASSERT_EQ(plan.bytes(v, t0, len, elem), int(inside) * elem)
                    << "chunk " << cfg.chunk << " threads " << cfg.threads << " elem " << elem << " len " << len
                    << " t0 " << t0 << " column " << v;
              }
            }
            const auto [lo, hi] = std::minmax_element(copies.begin(), copies.end());
            ASSERT_TRUE(*lo == 1 && *hi == 1) << "chunk " << cfg.chunk << " threads " << cfg.threads << " elem "
                                              << elem << " N " << N << ": each (row, column) copied " << *lo << " to "
                                              << *hi << " times";
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace mcd
