// The CSP stage (see stage.h).
#include "csp/stage.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "util/error.h"

namespace mcd::csp {
namespace {

WeightMatrix to_weights(const at::Tensor& w) {
  const at::Tensor c = w.to(torch::kCPU, at::kDouble).contiguous();
  WeightMatrix m;
  m.n = c.size(0);
  m.w.assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  return m;
}

// An order of units → the order of their channels (each unit's channels stay in order).
std::vector<int64_t> expand(const std::vector<int64_t>& unit_order, int64_t unit) {
  std::vector<int64_t> out;
  out.reserve(unit_order.size() * size_t(unit));
  for (int64_t u : unit_order)
    for (int64_t i = 0; i < unit; ++i) out.push_back(u * unit + i);
  return out;
}

}  // namespace

LayerPermutation order_layer(const at::Tensor& corr, int64_t unit, const LocalSearchOptions& search,
                             uint64_t random_seed) {
  MCD_CHECK(corr.dim() == 2 && corr.size(0) == corr.size(1), "CSP ordering: correlation must be square, got ",
            corr.sizes());
  const int64_t width = corr.size(0);
  MCD_CHECK(unit >= 1 && width % unit == 0, "CSP ordering: width ", width, " is not a multiple of the unit ", unit);
  at::Tensor abs_corr = corr.to(torch::kCPU, at::kDouble).abs();
  abs_corr.diagonal().zero_();
  const WeightMatrix channels = to_weights(abs_corr);
  const int64_t units = width / unit;
  // Unit-level weights: mean |corr| between two units' channels.
  const WeightMatrix unit_weights =
      unit == 1 ? channels : to_weights(abs_corr.view({units, unit, units, unit}).mean({1, 3}));

  LayerPermutation lp;
  lp.width = width;
  lp.unit = unit;
  std::vector<int64_t> identity(static_cast<size_t>(units));
  std::iota(identity.begin(), identity.end(), 0);
  lp.objective.identity = path_objective(channels, expand(identity, unit));
  std::vector<int64_t> random = identity;
  std::mt19937_64 rng(random_seed);
  std::shuffle(random.begin(), random.end(), rng);
  lp.objective.random = path_objective(channels, expand(random, unit));

  std::vector<int64_t> order = greedy_path(unit_weights);
  lp.objective.greedy = path_objective(channels, expand(order, unit));
  const LocalSearchStats stats = improve_path(unit_weights, order, search);
  lp.order = expand(order, unit);
  lp.objective.final = path_objective(channels, lp.order);
  lp.converged = stats.converged;
  lp.rounds = stats.rounds;
  lp.two_opt_moves = stats.two_opt_moves;
  lp.or_opt_moves = stats.or_opt_moves;
  lp.seconds = stats.seconds;
  return lp;
}

Permutation find_permutation(const ModelConfig& config, const Calibration& calibration,
                             const OrderingOptions& options) {
  MCD_CHECK(int64_t(calibration.correlation.size()) == config.n_layer, "CSP: the calibration has ",
            calibration.correlation.size(), " layers, the model ", config.n_layer);
  const int64_t unit = config.gate_type.empty() ? 1 : config.gate_block;
  Permutation p;
  p.layers.resize(size_t(config.n_layer));
  p.calibration = {{"tokens", calibration.tokens()},
                   {"sequences", calibration.sequences},
                   {"seq_len", calibration.seq_len}};
  p.settings = {{"time_limit_s", options.search.time_limit_s},
                {"max_rounds", options.search.max_rounds},
                {"random_seed", options.seed},
                {"unit", unit}};

  int threads = options.threads > 0 ? options.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  threads = int(std::min<int64_t>(threads, config.n_layer));
  std::atomic<int64_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
  auto worker = [&] {
    for (int64_t l; (l = next++) < config.n_layer;) {
      try {
        LayerPermutation lp = order_layer(calibration.correlation[size_t(l)], unit, options.search,
                                          options.seed + uint64_t(l));
        std::lock_guard<std::mutex> lock(mutex);
        p.layers[size_t(l)] = std::move(lp);
        if (options.on_layer) options.on_layer(l, p.layers[size_t(l)]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return p;
}

}  // namespace mcd::csp
