// Statistics for reporting results (METHOD.md §5): means, sds and t-intervals over seeds, the
// paired t-test, seeded percentile bootstraps (score differences, latency ratios), numpy-style
// percentiles and the timing `Summary` a profiler prints. Torch-free, plain C++17; definitions
// and conventions in docs/eval.md. Every function checks its input (empty, too small for the
// statistic, NaN or infinite) and throws mcd::Error naming what was wrong.
#pragma once

#include <cstdint>
#include <vector>

namespace mcd::eval {

// ---- Descriptive ----

double mean(const std::vector<double>& values);       // n >= 1
double sample_sd(const std::vector<double>& values);  // n >= 2, divisor n - 1

// numpy.percentile's default ('linear', R type 7): the value at virtual index (n-1)·percent/100
// of the sorted values, interpolated between its two neighbours. percent in [0, 100].
double percentile(const std::vector<double>& values, double percent);
double median(const std::vector<double>& values);  // percentile(values, 50)

// What a profiler prints for a set of timings. sd is the sample sd, 0 for a single value (no
// spread was observed); the percentiles are percentile() above.
struct Summary {
  int64_t n = 0;
  double mean = 0;
  double sd = 0;
  double min = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
};
Summary summarize(const std::vector<double>& values);  // n >= 1

// ---- Student's t distribution (any real df > 0) ----

// The regularized incomplete beta function I_x(a, b), a, b > 0, x in [0, 1]: a continued
// fraction (modified Lentz) on whichever of I_x(a, b) and 1 - I_{1-x}(b, a) converges fast,
// arranged to keep its digits at large a or b ([Note: incomplete beta fraction], docs/eval.md).
double regularized_incomplete_beta(double a, double b, double x);
double student_t_cdf(double t, double df);  // P(T <= t); t may be ±infinity
// The t with P(T <= t) = p, p in (0, 1), to ~1e-15 relative at ordinary p; ±infinity when it
// lies beyond the largest double (a tiny p at a small df).
double student_t_quantile(double p, double df);
double student_t_two_sided_p(double t, double df);  // P(|T| >= |t|)

// The standard normal's z with P(Z <= z) = p, p in (0, 1): bisection on erfc in the lower half
// (symmetry above ½), to ~1e-15 absolute.
double normal_quantile(double p);

// ---- Intervals and tests ----

// Wilson's score interval for a binomial proportion (successes of n trials, n >= 1): unlike the
// normal approximation (which collapses to a point at 0 or n successes) it stays inside [0, 1] and
// has width there; its coverage still dips below the level for small n near 0 or 1. Used for a
// zero-shot accuracy over n examples. Ends exactly 0 / 1 at 0 / n successes.
struct ProportionInterval {
  int64_t successes = 0, n = 0;
  double estimate = 0;  // successes / n
  double lower = 0, upper = 0;
  double level = 0.95;
};
ProportionInterval wilson_interval(int64_t successes, int64_t n, double level = 0.95);

// McNemar's exact test of two classifiers on the same examples: only_a examples only A gets right,
// only_b only B; two-sided p = 2·P(X <= min) for X ~ Binomial(only_a + only_b, ½), capped at 1 (1 when
// nothing is discordant). The paired counterpart of an accuracy difference; unlike a bootstrap
// interval of the 0/1 outcomes it does not collapse to certainty when few examples disagree.
double mcnemar_exact_p(int64_t only_a, int64_t only_b);

// mean ± t(1 - (1 - level)/2, n - 1) · sd / √n (METHOD §5: t, never z). n >= 2.
struct TInterval {
  int64_t n = 0;
  double mean = 0;
  double sd = 0;          // sample sd (n - 1)
  double level = 0.95;    // two-sided coverage
  double t_critical = 0;  // t(1 - (1 - level)/2, n - 1)
  double half_width = 0;  // t_critical · sd / √n
  double lower = 0;
  double upper = 0;
};
TInterval t_interval(const std::vector<double>& values, double level = 0.95);

// Paired t-test of d_i = a_i - b_i (a the variant, b the reference, paired by seed), n >= 2.
// When every d_i is equal, sd is 0: t is ±infinity (p = 0) when the mean is not 0, and t = 0
// (p_two_sided = 1) when it is — no evidence of a difference either way.
struct PairedTTest {
  int64_t n = 0;
  double mean_difference = 0;  // mean of a - b
  double sd_difference = 0;    // sample sd of a - b
  double t = 0;                // mean / (sd / √n)
  double df = 0;               // n - 1
  double p_two_sided = 1;      // P(|T| >= |t|): H1 mean difference != 0
  double p_greater = 0.5;      // P(T >= t): H1 mean difference > 0 (a better than b)
  TInterval difference;        // t-interval of the mean difference at the requested level
};
PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b,
                          double level = 0.95);

// ---- Bootstrap (percentile intervals) ----

// Seed rule: each call builds its own std::mt19937_64 from `seed` and nothing else, so the same
// inputs, seed, resamples and level give the same interval on every platform and run. Indices
// are drawn by rejection from the engine's raw 64-bit output (std::uniform_int_distribution is
// not the same algorithm in every standard library). Reusing one seed for several comparisons
// is fine: each interval is valid on its own.
constexpr uint64_t kDefaultBootstrapSeed = 20261202;

struct BootstrapOptions {
  int64_t resamples = 10000;
  double level = 0.95;
  uint64_t seed = kDefaultBootstrapSeed;
};

// estimate: the statistic on the data as given; lower/upper: percentile() of the resampled
// statistics at 100·(1 - level)/2 and 100·(1 + level)/2.
struct BootstrapInterval {
  double estimate = 0;
  double lower = 0;
  double upper = 0;
  double level = 0.95;
  int64_t resamples = 0;
  uint64_t seed = 0;
};

// Mean of the paired differences a_i - b_i; each resample draws n pairs with replacement.
// n >= 2.
BootstrapInterval bootstrap_mean_difference(const std::vector<double>& a,
                                            const std::vector<double>& b,
                                            const BootstrapOptions& options = {});

// median(a) / median(b) of two independent sets of positive values (per-iteration timings of
// two models); each resample draws |a| values from a, then |b| values from b, with replacement.
// Each set has n >= 2.
BootstrapInterval bootstrap_median_ratio(const std::vector<double>& a,
                                         const std::vector<double>& b,
                                         const BootstrapOptions& options = {});

}  // namespace mcd::eval
