// CSP ordering (src/csp/ordering.h): objectives, the greedy start, and 2-opt/Or-opt local search
// on matrices with a known answer and on structured random ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "csp/ordering.h"
#include "test_support.h"

namespace mcd::csp {
namespace {

WeightMatrix zeros(int64_t n) { return WeightMatrix{n, std::vector<double>(size_t(n * n), 0.0)}; }
void set(WeightMatrix& m, int64_t a, int64_t b, double v) { m.w[size_t(a * m.n + b)] = m.w[size_t(b * m.n + a)] = v; }

// Planted blocks: `clusters` groups of `size` channels, scattered by a random relabelling; weights
// within a group ~U(0.6, 0.9), across ~U(0, 0.3). label[i] is node i's group.
WeightMatrix planted(int64_t clusters, int64_t size, uint64_t seed, std::vector<int64_t>& label) {
  const int64_t n = clusters * size;
  std::vector<int64_t> relabel(static_cast<size_t>(n));
  std::iota(relabel.begin(), relabel.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(relabel.begin(), relabel.end(), rng);
  label.assign(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i) label[size_t(relabel[size_t(i)])] = i / size;
  std::uniform_real_distribution<double> within(0.6, 0.9), across(0.0, 0.3);
  WeightMatrix m = zeros(n);
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = a + 1; b < n; ++b) set(m, a, b, label[size_t(a)] == label[size_t(b)] ? within(rng) : across(rng));
  return m;
}

bool is_permutation(std::vector<int64_t> order, int64_t n) {
  std::sort(order.begin(), order.end());
  for (int64_t i = 0; i < n; ++i)
    if (order[size_t(i)] != i) return false;
  return int64_t(order.size()) == n;
}

TEST(CspOrdering, PathObjectiveSumsNeighbourWeights) {
  WeightMatrix m = zeros(4);
  set(m, 0, 1, 0.5);
  set(m, 1, 2, 0.25);
  set(m, 2, 3, 0.125);
  set(m, 0, 3, 1.0);
  // 0-1-2-3: 0.5 + 0.25 + 0.125; 3-0-1-2: 1 + 0.5 + 0.25 (exact binary fractions).
  EXPECT_EQ(path_objective(m, {0, 1, 2, 3}), 0.875);
  EXPECT_EQ(path_objective(m, {3, 0, 1, 2}), 1.75);
  EXPECT_NE(test::error_of([&] { path_objective(m, {0, 1, 1, 3}); }).find("not a permutation"), std::string::npos);
  EXPECT_NE(test::error_of([&] { path_objective(m, {0, 1, 2}); }).find("3 entries, expected 4"), std::string::npos);
}

TEST(CspOrdering, GreedyFollowsAHiddenChainAndLocalSearchImprovesARandomStart) {
  // A chain hidden under a shuffle: w(c_i, c_{i+1}) = 1, every other pair 0.1; the chain is the only
  // path of objective n − 1. Greedy starts on a chain edge (the heaviest pair) and each end's
  // heaviest unused neighbour is its chain neighbour, so greedy must return the chain itself.
  const int64_t n = 40;
  std::vector<int64_t> chain(n);
  std::iota(chain.begin(), chain.end(), 0);
  std::mt19937_64 rng(5);
  std::shuffle(chain.begin(), chain.end(), rng);
  WeightMatrix m = zeros(n);
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = a + 1; b < n; ++b) set(m, a, b, 0.1);
  for (int64_t i = 0; i + 1 < n; ++i) set(m, chain[size_t(i)], chain[size_t(i + 1)], 1.0);
  std::vector<int64_t> order = greedy_path(m);
  ASSERT_TRUE(is_permutation(order, n));
  EXPECT_NEAR(path_objective(m, order), double(n - 1), 1e-9);
  // From a random order (≈ 2 chain edges of 39 expected) the local search must gain chain edges:
  // every 2-opt/Or-opt move it takes adds weight, and a random path has many improving moves.
  std::vector<int64_t> random = chain;
  std::shuffle(random.begin(), random.end(), rng);
  const double before = path_objective(m, random);
  LocalSearchOptions o;
  o.time_limit_s = 30;
  const LocalSearchStats stats = improve_path(m, random, o);
  ASSERT_TRUE(is_permutation(random, n));
  EXPECT_TRUE(stats.converged);
  EXPECT_GT(stats.two_opt_moves + stats.or_opt_moves, 0);
  EXPECT_GT(path_objective(m, random), before + 0.9 * 5);  // at least 5 more chain edges (0.9 each)
}

TEST(CspOrdering, LocalSearchNeverWorsensAndBeatsGreedyOnPlantedBlocks) {
  // Structured random matrices (planted groups). The local search takes only strictly improving
  // moves, so final >= greedy on every instance; on these noisy instances greedy's path is not a
  // 2-opt optimum, so the search must find strictly better paths — and it must recover the planted
  // structure: each group's channels contiguous in the final order (within-group weights ≥ 0.6 beat
  // any across-group weight ≤ 0.3, so splitting a group costs more than it can gain).
  double greedy_total = 0, final_total = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<int64_t> label;
    const WeightMatrix m = planted(8, 12, seed, label);
    std::vector<int64_t> order = greedy_path(m);
    const double greedy = path_objective(m, order);
    LocalSearchOptions o;
    o.time_limit_s = 30;  // a generous limit: n = 96 converges in milliseconds
    const LocalSearchStats stats = improve_path(m, order, o);
    ASSERT_TRUE(is_permutation(order, m.n));
    const double final = path_objective(m, order);
    EXPECT_GE(final, greedy) << "seed " << seed;
    EXPECT_TRUE(stats.converged) << "seed " << seed;
    greedy_total += greedy;
    final_total += final;
    int64_t boundaries = 0;
    for (size_t i = 1; i < order.size(); ++i) boundaries += label[size_t(order[i])] != label[size_t(order[i - 1])];
    EXPECT_EQ(boundaries, 7) << "seed " << seed << ": the 8 planted groups are not contiguous";
  }
  EXPECT_GT(final_total, greedy_total + 1e-6);
}

TEST(CspOrdering, RoundsAndTimeLimitAreHonoured) {
  std::vector<int64_t> label;
  const WeightMatrix m = planted(6, 10, 9, label);
  std::vector<int64_t> order = greedy_path(m);
  const std::vector<int64_t> greedy = order;
  LocalSearchOptions none;
  none.time_limit_s = 0;  // greedy only
  const LocalSearchStats s0 = improve_path(m, order, none);
  EXPECT_EQ(order, greedy);
  EXPECT_FALSE(s0.converged);
  LocalSearchOptions one;
  one.max_rounds = 1;
  const LocalSearchStats s1 = improve_path(m, order, one);
  EXPECT_LE(s1.rounds, 1);
  EXPECT_GE(path_objective(m, order), path_objective(m, greedy));
}

TEST(CspOrdering, TinyAndDegenerateInputs) {
  WeightMatrix one = zeros(1);
  EXPECT_EQ(greedy_path(one), std::vector<int64_t>{0});
  std::vector<int64_t> order{0};
  EXPECT_NO_THROW(improve_path(one, order, {}));
  WeightMatrix two = zeros(2);
  set(two, 0, 1, 0.5);
  order = greedy_path(two);
  improve_path(two, order, {});
  EXPECT_EQ(path_objective(two, order), 0.5);
  // All weights equal: nothing improves strictly, the search stops at once.
  WeightMatrix flat = zeros(10);
  for (int64_t a = 0; a < 10; ++a)
    for (int64_t b = a + 1; b < 10; ++b) set(flat, a, b, 0.3);
  order = greedy_path(flat);
  const LocalSearchStats s = improve_path(flat, order, {});
  EXPECT_TRUE(s.converged);
  EXPECT_EQ(s.two_opt_moves + s.or_opt_moves, 0);
}

}  // namespace
}  // namespace mcd::csp
