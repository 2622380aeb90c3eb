// Max-TSP path heuristics (see ordering.h).
#include "csp/ordering.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "util/error.h"

namespace mcd::csp {
namespace {

// Moves must gain more than this: weights are |corr| ≤ 1 summed over ≤ 4 edges, so a gain below
// 1e-12 is float64 rounding of equal sums, and taking it could cycle between equal orders.
constexpr double kMinGain = 1e-12;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check_order(const WeightMatrix& weights, const std::vector<int64_t>& order) {
  MCD_CHECK(int64_t(weights.w.size()) == weights.n * weights.n, "CSP ordering: weight matrix has ",
            weights.w.size(), " entries, expected ", weights.n, "x", weights.n);
  MCD_CHECK(int64_t(order.size()) == weights.n, "CSP ordering: order has ", order.size(), " entries, expected ",
            weights.n);
  std::vector<char> seen(size_t(weights.n), 0);
  for (int64_t v : order) {
    MCD_CHECK(v >= 0 && v < weights.n && !seen[size_t(v)], "CSP ordering: order is not a permutation of [0, ",
              weights.n, ")");
    seen[size_t(v)] = 1;
  }
}

// The cycle view of an open path: node `n` is the virtual node, weight 0 to everything. The tour
// keeps it at position 0, so tour[1..n] is the path.
struct Tour {
  const WeightMatrix& m;
  std::vector<int64_t> t;  // n + 1 entries
  int64_t virt;
  Tour(const WeightMatrix& weights, const std::vector<int64_t>& order) : m(weights), virt(weights.n) {
    t.reserve(order.size() + 1);
    t.push_back(virt);
    t.insert(t.end(), order.begin(), order.end());
  }
  double w(int64_t a, int64_t b) const { return (a == virt || b == virt) ? 0.0 : m(a, b); }
  int64_t size() const { return int64_t(t.size()); }
  int64_t at(int64_t i) const { return t[size_t(i % size())]; }
};

// One first-improvement 2-opt pass: edges (t[i], t[i+1]) and (t[j], t[j+1]) become (t[i], t[j]) and
// (t[i+1], t[j+1]) by reversing t[i+1..j]. Position 0 (the virtual node) never moves.
int64_t two_opt_pass(Tour& tour, Clock::time_point deadline) {
  const int64_t size = tour.size();
  int64_t moves = 0;
  for (int64_t i = 0; i + 2 < size; ++i) {
    if (Clock::now() > deadline) break;
    for (int64_t j = i + 2; j < size; ++j) {
      if (i == 0 && j == size - 1) continue;  // the same two edges around position 0
      const int64_t a = tour.at(i), b = tour.at(i + 1), c = tour.at(j), d = tour.at(j + 1);
      const double gain = tour.w(a, c) + tour.w(b, d) - tour.w(a, b) - tour.w(c, d);
      if (gain > kMinGain) {
        std::reverse(tour.t.begin() + i + 1, tour.t.begin() + j + 1);
        ++moves;
      }
    }
  }
  return moves;
}

// One first-improvement Or-opt pass: a segment t[s..s+k−1] (k = 1..3, never position 0) is cut out
// and reinserted, forwards or reversed, between two other neighbours.
int64_t or_opt_pass(Tour& tour, Clock::time_point deadline) {
  const int64_t size = tour.size();
  int64_t moves = 0;
  std::vector<int64_t> rest, segment;
  for (int64_t k = 1; k <= 3; ++k) {
    for (int64_t s = 1; s + k <= size; ++s) {
      if (Clock::now() > deadline) return moves;
      if (size - k < 3) break;
      const int64_t first = tour.at(s), last = tour.at(s + k - 1);
      const int64_t prev = tour.at(s - 1), next = tour.at(s + k);
      const double removed = tour.w(prev, first) + tour.w(last, next) - tour.w(prev, next);
      // Best reinsertion between rest[p] and rest[p+1] of the cycle without the segment.
      rest.clear();
      for (int64_t i = 0; i < size; ++i)
        if (i < s || i >= s + k) rest.push_back(tour.t[size_t(i)]);
      const int64_t r = int64_t(rest.size());
      double best_gain = kMinGain;
      int64_t best_p = -1;
      bool best_reversed = false;
      for (int64_t p = 0; p < r; ++p) {
        const int64_t c = rest[size_t(p)], d = rest[size_t((p + 1) % r)];
        if (c == prev && d == next) continue;  // where it came from
        const double base = -tour.w(c, d) - removed;
        const double fwd = base + tour.w(c, first) + tour.w(last, d);
        const double rev = base + tour.w(c, last) + tour.w(first, d);
        if (fwd > best_gain) best_gain = fwd, best_p = p, best_reversed = false;
        if (rev > best_gain) best_gain = rev, best_p = p, best_reversed = true;
      }
      if (best_p < 0) continue;
      segment.assign(tour.t.begin() + s, tour.t.begin() + s + k);
      if (best_reversed) std::reverse(segment.begin(), segment.end());
      rest.insert(rest.begin() + best_p + 1, segment.begin(), segment.end());
      // Rotate so the virtual node is back at position 0.
      const auto v = std::find(rest.begin(), rest.end(), tour.virt);
      std::rotate(rest.begin(), v, rest.end());
      tour.t = rest;
      ++moves;
    }
  }
  return moves;
}

}  // namespace

double path_objective(const WeightMatrix& weights, const std::vector<int64_t>& order) {
  check_order(weights, order);
  double total = 0;
  for (size_t i = 1; i < order.size(); ++i) total += weights(order[i - 1], order[i]);
  return total;
}

std::vector<int64_t> greedy_path(const WeightMatrix& weights) {
  const int64_t n = weights.n;
  MCD_CHECK(n >= 1 && int64_t(weights.w.size()) == n * n, "CSP ordering: weight matrix has ", weights.w.size(),
            " entries, expected ", n, "x", n, " with n >= 1");
  if (n == 1) return {0};
  // The heaviest pair starts the path (first in row-major order on ties).
  int64_t sa = 0, sb = 1;
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = a + 1; b < n; ++b)
      if (weights(a, b) > weights(sa, sb)) sa = a, sb = b;
  std::vector<char> used(size_t(n), 0);
  used[size_t(sa)] = used[size_t(sb)] = 1;
  std::vector<int64_t> front{sa}, back{sb};  // path = reverse(front) + back
  auto best_from = [&](int64_t end) {
    int64_t best = -1;
    for (int64_t v = 0; v < n; ++v)
      if (!used[size_t(v)] && (best < 0 || weights(end, v) > weights(end, best))) best = v;
    return best;
  };
  int64_t cand_front = best_from(sa), cand_back = best_from(sb);
  for (int64_t placed = 2; placed < n; ++placed) {
    const int64_t f_end = front.back(), b_end = back.back();
    // A candidate may have been taken by the other end since it was computed.
    if (used[size_t(cand_front)]) cand_front = best_from(f_end);
    if (used[size_t(cand_back)]) cand_back = best_from(b_end);
    if (weights(f_end, cand_front) > weights(b_end, cand_back)) {
      used[size_t(cand_front)] = 1;
      front.push_back(cand_front);
      if (placed + 1 < n) cand_front = best_from(cand_front);
    } else {
      used[size_t(cand_back)] = 1;
      back.push_back(cand_back);
      if (placed + 1 < n) cand_back = best_from(cand_back);
    }
  }
  std::vector<int64_t> path(front.rbegin(), front.rend());
  path.insert(path.end(), back.begin(), back.end());
  return path;
}

LocalSearchStats improve_path(const WeightMatrix& weights, std::vector<int64_t>& order,
                              const LocalSearchOptions& options) {
  check_order(weights, order);
  MCD_CHECK(options.time_limit_s >= 0, "CSP ordering: time limit must be >= 0 s, got ", options.time_limit_s);
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(options.time_limit_s));
  LocalSearchStats stats;
  Tour tour(weights, order);
  while (options.max_rounds < 0 || stats.rounds < options.max_rounds) {
    if (Clock::now() > deadline) break;
    const int64_t two = two_opt_pass(tour, deadline);
    const int64_t orr = Clock::now() > deadline ? 0 : or_opt_pass(tour, deadline);
    stats.two_opt_moves += two;
    stats.or_opt_moves += orr;
    ++stats.rounds;
    // Converged only when a complete round (not cut by the deadline) found nothing.
    if (two == 0 && orr == 0 && Clock::now() <= deadline) {
      stats.converged = true;
      break;
    }
  }
  order.assign(tour.t.begin() + 1, tour.t.end());
  stats.seconds = seconds_since(t0);
  return stats;
}

}  // namespace mcd::csp
