// Tests for batch sampling (data/batch.h): determinism and resume, rank decomposition, bounds,
// seed/step sensitivity, argument checks, and sequential evaluation windows.
#include "data/batch.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>
#include <vector>

#include "data_test_util.h"

namespace mcd::data {
namespace {

// Tokens 0, 1, ..., n-1 (so a window's contents reveal its start).
struct Ramp {
  std::vector<uint16_t> ids;
  explicit Ramp(int n) : ids(size_t(n)) { std::iota(ids.begin(), ids.end(), uint16_t(0)); }
  TokenSpan span() const { return TokenSpan{ids.data(), int64_t(ids.size())}; }
};

std::vector<int64_t> sample(const TokenSpan& t, uint64_t seed, int64_t step, int64_t batch,
                            int64_t rank, int64_t world, int64_t window) {
  std::vector<int64_t> out(size_t(batch / world * window), -1);
  sample_windows(t, seed, step, batch, rank, world, window, out.data());
  return out;
}

TEST(BatchSample, DeterministicAndResumable) {
  const Ramp r(5000);
  const auto a = sample(r.span(), 42, 7, 16, 0, 1, 33);
  // A "resumed" run: other steps sampled in between, then step 7 again.
  for (int step = 0; step < 7; ++step) sample(r.span(), 42, step, 16, 0, 1, 33);
  EXPECT_EQ(sample(r.span(), 42, 7, 16, 0, 1, 33), a);
  // Each row depends only on (seed, step, global row).
  for (int64_t row = 0; row < 16; ++row)
    EXPECT_EQ(a[size_t(row * 33)], window_start(5000, 42, 7, row, 33));
}

TEST(BatchSample, StartsArePinned) {
  // A checkpoint resumed by a later build must see the same batches: these values never change.
  EXPECT_EQ(window_start(1000000, 0, 0, 0, 1025), 202894);
  EXPECT_EQ(window_start(1000000, 1234, 56, 7, 1025), 572338);
  EXPECT_EQ(window_start(22171119, 42, 100000, 255, 2049), 17112537);
}

TEST(BatchSample, RanksSplitTheGlobalBatch) {
  const Ramp r(3000);
  for (int64_t world : {2, 4, 8}) {
    const auto global = sample(r.span(), 1, 3, 8, 0, 1, 17);
    std::vector<int64_t> joined;
    for (int64_t rank = 0; rank < world; ++rank) {
      const auto part = sample(r.span(), 1, 3, 8, rank, world, 17);
      joined.insert(joined.end(), part.begin(), part.end());
    }
    EXPECT_EQ(joined, global) << "world size " << world;
  }
}

TEST(BatchSample, WindowsAreContiguousAndInBounds) {
  const Ramp r(200);
  std::set<int64_t> starts;
  for (int64_t step = 0; step < 200; ++step) {
    const auto out = sample(r.span(), 9, step, 4, 0, 1, 50);
    for (int64_t row = 0; row < 4; ++row) {
      const int64_t start = out[size_t(row * 50)];
      ASSERT_GE(start, 0);
      ASSERT_LE(start, 200 - 50);
      for (int64_t k = 0; k < 50; ++k) ASSERT_EQ(out[size_t(row * 50 + k)], start + k);
      starts.insert(start);
    }
  }
  EXPECT_GT(starts.size(), 140u);  // 800 draws over 151 starts cover nearly all of them
  EXPECT_TRUE(starts.count(0) && starts.count(150)) << "both ends are reachable";
  // A window as long as the data can only start at 0.
  EXPECT_EQ(sample(r.span(), 5, 0, 2, 0, 1, 200)[0], 0);
}

TEST(BatchSample, SeedAndStepChangeTheBatch) {
  const Ramp r(60000);
  const auto a = sample(r.span(), 1, 0, 8, 0, 1, 9);
  EXPECT_NE(sample(r.span(), 2, 0, 8, 0, 1, 9), a);
  EXPECT_NE(sample(r.span(), 1, 1, 8, 0, 1, 9), a);
}

TEST(BatchSample, ArgumentChecks) {
  const Ramp r(10);
  std::vector<int64_t> out(100);
  const auto err = [&](int64_t batch, int64_t rank, int64_t world, int64_t window) {
    return test::error_of(
        [&] { sample_windows(r.span(), 0, 0, batch, rank, world, window, out.data()); });
  };
  EXPECT_NE(err(6, 0, 4, 5).find("not a positive multiple of world size 4"), std::string::npos);
  EXPECT_NE(err(4, 2, 2, 5).find("rank 2 out of range"), std::string::npos);
  EXPECT_NE(err(4, 0, 1, 11).find("window of 11 tokens"), std::string::npos);
  EXPECT_NE(err(4, 0, 1, 1).find("window of 1 tokens"), std::string::npos);
}

TEST(BatchSequential, TargetsTileTheTokensOnce) {
  const Ramp r(10);
  EXPECT_EQ(num_sequential_windows(10, 4), 3);  // targets 1..9
  std::vector<int64_t> targets;
  std::vector<int64_t> w(4);
  for (int64_t i = 0; i < 3; ++i) {
    sequential_window(r.span(), i, 4, w.data());
    for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(w[size_t(k)], i * 3 + k);
    targets.insert(targets.end(), w.begin() + 1, w.end());
  }
  EXPECT_EQ(targets, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(num_sequential_windows(11, 4), 3);  // token 10 does not fill a window: dropped
  EXPECT_EQ(num_sequential_windows(13, 4), 4);
  EXPECT_EQ(num_sequential_windows(3, 4), 0);
  EXPECT_EQ(num_sequential_windows(4, 4), 1);
  EXPECT_NE(test::error_of([&] {
              sequential_window(r.span(), 3, 4, w.data());
            }).find("out of range [0, 3)"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { num_sequential_windows(10, 1); }).find("at least 2"),
            std::string::npos);
}

}  // namespace
}  // namespace mcd::data
