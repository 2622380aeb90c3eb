// CSP ordering (METHOD.md §3): an order of a layer's channels that maximises Σ|corr| between
// neighbours — an open max-TSP path. A greedy nearest-neighbour path (grown at both ends from the
// strongest pair), then 2-opt and Or-opt local search until a local optimum or the time limit.
// Torch-free: weights are a dense row-major n×n matrix of doubles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mcd::csp {

// A symmetric n×n weight matrix (the diagonal is ignored).
struct WeightMatrix {
  int64_t n = 0;
  std::vector<double> w;  // row-major n·n
  double operator()(int64_t a, int64_t b) const { return w[size_t(a * n + b)]; }
};

// Σ w(order[i], order[i+1]) over consecutive positions.
double path_objective(const WeightMatrix& weights, const std::vector<int64_t>& order);

// Nearest-neighbour path: starts from the heaviest pair and repeatedly attaches, at whichever end
// gains more, the unused node with the heaviest edge to that end. O(n²).
std::vector<int64_t> greedy_path(const WeightMatrix& weights);

struct LocalSearchOptions {
  double time_limit_s = 2.0;  // wall time for 2-opt + Or-opt after the greedy start (0: greedy only)
  int64_t max_rounds = -1;    // rounds of (2-opt pass, Or-opt pass); -1: until a local optimum
};

struct LocalSearchStats {
  bool converged = false;  // a whole round found no improving move (a 2-opt/Or-opt local optimum)
  int64_t rounds = 0, two_opt_moves = 0, or_opt_moves = 0;
  double seconds = 0;
};

// Improves `order` in place by 2-opt (reverse a segment) and Or-opt (move a segment of 1–3 nodes,
// possibly reversed) moves; only strictly improving moves are taken, so the objective never
// decreases. The open path is handled as a cycle through a virtual node joined to every node by
// weight 0, so moves at the path's ends are ordinary cycle moves.
LocalSearchStats improve_path(const WeightMatrix& weights, std::vector<int64_t>& order,
                              const LocalSearchOptions& options);

}  // namespace mcd::csp
