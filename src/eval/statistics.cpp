// Implementation of eval/statistics.h. Student's t goes through the regularized incomplete beta
// function: for t >= 0, P(T > t) = I_x(df/2, 1/2) / 2 and P(0 < T < t) = I_y(1/2, df/2) / 2, with
// x = df/(df + t²) and y = t²/(df + t²) = 1 - x (both formed directly, never as 1 - the other).
#include "eval/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include "util/error.h"

namespace mcd::eval {
namespace {

constexpr double kEpsilon = std::numeric_limits<double>::epsilon();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

void check_values(const std::vector<double>& values, const char* function, size_t min_count,
                  const char* name = "values") {
  MCD_CHECK(values.size() >= min_count, function, ": needs at least ", min_count, " value(s) in ",
            name, ", got ", values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    MCD_CHECK(std::isfinite(values[i]), function, ": ", name, "[", i, "] is ", values[i],
              " (NaN and infinity are not allowed)");
  }
}

void check_level(double level, const char* function) {
  MCD_CHECK(level > 0 && level < 1, function, ": level must be in (0, 1), got ", level);
}

void check_df(double df, const char* function) {
  MCD_CHECK(df > 0 && std::isfinite(df), function, ": df must be positive and finite, got ", df);
}

// numpy's linear interpolation: from b's side when t >= 0.5, so t = 1 gives b exactly and the
// result matches numpy.percentile bit for bit.
double interpolate(double a, double b, double t) {
  const double difference = b - a;
  return t >= 0.5 ? b - difference * (1 - t) : a + difference * t;
}

double percentile_of_sorted(const std::vector<double>& sorted, double percent) {
  const size_t n = sorted.size();
  const double virtual_index = static_cast<double>(n - 1) * (percent / 100.0);
  const double below = std::floor(virtual_index);
  const size_t index = static_cast<size_t>(below);
  if (index >= n - 1) return sorted[n - 1];
  return interpolate(sorted[index], sorted[index + 1], virtual_index - below);
}

// The same value as percentile(values, 50), in O(n) on a scratch buffer (reordered).
double median_in_place(std::vector<double>& values) {
  const size_t n = values.size();
  const size_t middle = (n - 1) / 2;
  std::nth_element(values.begin(), values.begin() + middle, values.end());
  const double lower = values[middle];
  if (n % 2 == 1) return lower;
  const double upper = *std::min_element(values.begin() + middle + 1, values.end());
  return interpolate(lower, upper, 0.5);
}

// lnΓ(x) - [(x - 1/2)·ln x - x + ln √(2π)]: the Stirling series' remainder, for x >= 10. Eight
// terms B_2k / (2k(2k-1)·x^(2k-1)); the first one left out is below 2e-18 at x = 10.
double stirling_remainder(double x) {
  static constexpr double kTerms[] = {1.0 / 12,   -1.0 / 360,        1.0 / 1260, -1.0 / 1680,
                                      1.0 / 1188, -691.0 / 360360.0, 1.0 / 156,  -3617.0 / 122400};
  const double inverse_square = 1 / (x * x);
  double sum = 0;
  for (int k = 7; k >= 0; --k) sum = sum * inverse_square + kTerms[k];
  return sum / x;
}

// ln B(a, b). With a large argument, lgamma(large) - lgamma(large + small) would subtract two
// numbers of size ~large·ln(large) and lose digits (1e-10 relative at df = 1e6), so the
// Stirling form is rearranged to subtract only O(1) quantities.
double log_beta(double a, double b) {
  const double small = std::min(a, b);
  const double large = std::max(a, b);
  const double sum = small + large;
  if (large < 10) return std::lgamma(small) + std::lgamma(large) - std::lgamma(sum);
  const double correction = stirling_remainder(large) - stirling_remainder(sum);
  if (small < 10) {
    // lnΓ(large) - lnΓ(sum) = -(large - 1/2)·ln(1 + small/large) - small·ln(sum) + small + ...
    return std::lgamma(small) - (large - 0.5) * std::log1p(small / large) -
           small * std::log(sum) + small + correction;
  }
  const double log_sqrt_2pi = 0.91893853320467274178;  // ln √(2π)
  return log_sqrt_2pi - 0.5 * std::log(large) + (small - 0.5) * std::log(small / sum) -
         large * std::log1p(small / large) + stirling_remainder(small) + correction;
}

// The argument of I_x(a, b) as x, y = 1 - x and their logarithms, each formed directly (never as
// 1 - the other), so a tail keeps its digits and an x that underflows still has its logarithm.
struct BetaArgument {
  double x, y, log_x, log_y;
};

BetaArgument beta_argument(double x) {
  const double y = 1 - x;
  return {x, y, x < 0.5 ? std::log(x) : std::log1p(-y), y < 0.5 ? std::log(y) : std::log1p(-x)};
}

// The continued fraction G = 1 + d1 / (1 + d2 / (1 + d3 / ...)) of DLMF 8.17.22, whose quotient
// x^a y^b / (a·B(a, b)) / G is I_x(a, b) (y = 1 - x). It is summed in its odd contraction
// G = (1 + d1) - d1 d2 / ((1 + d3 + d2) - d3 d4 / (...)) so that each 1 + d_odd, which is close
// to 0 when a is large, is formed without cancellation (see [Note: incomplete beta fraction] in
// docs/eval.md). Modified Lentz; converges quickly for x < (a + 1)/(a + b + 2).
double beta_continued_fraction(double a, double b, double x, double y) {
  constexpr double kTiny = 1e-300;  // stands in for a zero denominator (Lentz's rule)
  constexpr int64_t kMaxTerms = 10'000'000;
  auto even_term = [&](double m) {  // d_2m
    return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
  };
  auto odd_term = [&](double m) {  // d_2m+1
    return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
  };
  // 1 + d_2m+1 is near 0 for large a with x near 1, or near the mode x0 = a/(a+b) for large a
  // and b. Two forms of its numerator cancel in different places: P - Q from the definition,
  // and the same expanded with x = 1 - y, a(1-b) + m(2a+3m+2-b) + (a+m)(a+b+m)·y (no cancellation
  // when b <= 1). Take whichever loses fewer digits.
  auto one_plus_odd_term = [&](double m) {
    const double denominator = (a + 2 * m) * (a + 2 * m + 1);
    const double direct = denominator - (a + m) * (a + b + m) * x;
    const double direct_size = denominator + (a + m) * (a + b + m) * x;
    const double first = a * (1 - b), second = m * (2 * a + 3 * m + 2 - b);
    const double third = (a + m) * (a + b + m) * y;
    const double expanded = first + second + third;
    const double expanded_size = std::abs(first) + std::abs(second) + third;
    // |value| / size is the fraction of the operands' digits that survive.
    const bool use_expanded = std::abs(expanded) * direct_size >= std::abs(direct) * expanded_size;
    return (use_expanded ? expanded : direct) / denominator;
  };

  double value = one_plus_odd_term(0);
  if (std::abs(value) < kTiny) value = kTiny;
  double c = value;
  double d = 0;
  for (int64_t k = 1; k <= kMaxTerms; ++k) {
    const double m = static_cast<double>(k);
    const double numerator = -odd_term(m - 1) * even_term(m);  // -d_2k-1 · d_2k
    const double denominator = one_plus_odd_term(m) + even_term(m);  // 1 + d_2k + d_2k+1
    d = denominator + numerator * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = denominator + numerator / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double step = c * d;
    value *= step;
    if (std::abs(step - 1) <= kEpsilon) return value;
  }
  fail(cat("regularized_incomplete_beta: continued fraction did not converge for a = ", a,
           ", b = ", b, ", x = ", x));
}

// log1p(z) - z without the cancellation near 0: with u = z/(2 + z), log1p(z) = 2·atanh(u), so
// log1p(z) - z = -z·u + 2(u³/3 + u⁵/5 + ...); |u| <= 1/3 for |z| <= 1/2 (30 terms reach 1e-30).
double log1p_minus_x(double z) {
  if (std::abs(z) > 0.5) return std::log1p(z) - z;
  const double u = z / (2 + z), u2 = u * u;
  double power = u * u2, series = 0;
  for (int k = 3; k < 64; k += 2) {
    const double term = power / k;
    series += term;
    if (std::abs(term) <= kEpsilon * std::abs(series)) break;
    power *= u2;
  }
  return -z * u + 2 * series;
}

// ln(x^a y^b / B(a, b)). With both parameters large, a·ln x, b·ln y and ln B(a, b) are each of
// size ~(a + b) and cancel to O(1), losing ~(a + b)·1e-16; so expand around the mean
// x0 = a/(a+b), y0 = b/(a+b) instead: with s = x·b - y·a (so x/x0 = 1 + s/a, y/y0 = 1 - s/b)
// and ρ the Stirling remainder above,
//   a·ln(x/x0) + b·ln(y/y0) = a·[ln(x/x0) - s/a] + b·[ln(y/y0) + s/b]   (the added terms cancel)
//   ln(x0^a y0^b / B(a, b)) = ½·ln(ab/(a+b)) - ln √(2π) - ρ(a) - ρ(b) + ρ(a+b)
// Each bracket is log1pmx(z) near the mean (|z| <= ½); farther out 1 + z would cancel, and the
// logarithm is taken from ln x (ln y) directly.
double log_power_over_beta(double a, double b, const BetaArgument& arg) {
  if (std::min(a, b) < 10) return a * arg.log_x + b * arg.log_y - log_beta(a, b);
  const double shift = arg.x * b - arg.y * a;
  auto deviation = [](double z, double log_ratio_to_mean) {  // ln(1 + z) - z
    return std::abs(z) <= 0.5 ? log1p_minus_x(z) : log_ratio_to_mean - z;
  };
  const double log_sqrt_2pi = 0.91893853320467274178;  // ln √(2π)
  return a * deviation(shift / a, arg.log_x + std::log1p(b / a)) +
         b * deviation(-shift / b, arg.log_y + std::log1p(a / b)) +
         0.5 * std::log(a * b / (a + b)) - log_sqrt_2pi - stirling_remainder(a) -
         stirling_remainder(b) + stirling_remainder(a + b);
}

double incomplete_beta(double a, double b, BetaArgument arg) {
  if (arg.log_x == -kInfinity) return 0;
  if (arg.log_y == -kInfinity) return 1;
  const bool reflect = arg.x > (a + 1) / (a + b + 2);  // then I_y(b, a) is the fast fraction
  if (reflect) {
    std::swap(a, b);
    std::swap(arg.x, arg.y);
    std::swap(arg.log_x, arg.log_y);
  }
  const double log_front = log_power_over_beta(a, b, arg) - std::log(a);
  const double value = std::exp(log_front) / beta_continued_fraction(a, b, arg.x, arg.y);
  return reflect ? 1 - value : value;
}

double softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

// x = df/(df + t²) and y = t²/(df + t²) for t >= 0, through s = t²/df = y/x: x = 1/(1 + s),
// y = s/(1 + s), ln x = -ln(1 + s), ln y = -ln(1 + 1/s), none of them a difference of two
// large terms. Where s overflows or underflows, ln s comes from ln t and ln df instead (a heavy
// tail at small df still has a value).
BetaArgument t_beta_argument(double t, double df) {
  const double s = t * t / df;
  if (std::isfinite(s) && s >= std::numeric_limits<double>::min()) {
    const double log_s = std::log(s);
    return {1 / (1 + s), s / (1 + s), -softplus(log_s), -softplus(-log_s)};
  }
  if (t == 0) return {1, 0, 0, -kInfinity};
  const double log_s = 2 * std::log(t) - std::log(df);
  const double log_x = -softplus(log_s), log_y = -softplus(-log_s);
  return {std::exp(log_x), std::exp(log_y), log_x, log_y};
}

double t_upper_tail(double t, double df) {  // P(T > t), t >= 0
  if (t == kInfinity) return 0;
  return 0.5 * incomplete_beta(df / 2, 0.5, t_beta_argument(t, df));
}

double t_central(double t, double df) {  // P(0 < T < t), t >= 0
  if (t == kInfinity) return 0.5;
  const BetaArgument arg = t_beta_argument(t, df);
  return 0.5 * incomplete_beta(0.5, df / 2, {arg.y, arg.x, arg.log_y, arg.log_x});
}

double t_density(double t, double df) {
  return std::exp(-(df + 1) / 2 * std::log1p(t * t / df) - 0.5 * std::log(df) -
                  log_beta(df / 2, 0.5));
}

// A uniform index in [0, n): rejection of the engine's top partial block of 2^64 values, then
// the remainder (same result with every standard library, unlike uniform_int_distribution).
uint64_t uniform_index(std::mt19937_64& engine, uint64_t n) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const uint64_t partial_block = (kMax % n + 1) % n;  // 2^64 mod n
  uint64_t value = engine();
  while (value > kMax - partial_block) value = engine();
  return value % n;
}

void check_bootstrap_options(const BootstrapOptions& options, const char* function) {
  MCD_CHECK(options.resamples >= 1, function, ": resamples must be at least 1, got ",
            options.resamples);
  check_level(options.level, function);
}

BootstrapInterval percentile_interval(double estimate, std::vector<double> statistics,
                                      const BootstrapOptions& options) {
  std::sort(statistics.begin(), statistics.end());
  BootstrapInterval interval;
  interval.estimate = estimate;
  interval.lower = percentile_of_sorted(statistics, 100 * (1 - options.level) / 2);
  interval.upper = percentile_of_sorted(statistics, 100 * (1 + options.level) / 2);
  interval.level = options.level;
  interval.resamples = options.resamples;
  interval.seed = options.seed;
  return interval;
}

}  // namespace

// ---- Descriptive ----

double mean(const std::vector<double>& values) {
  check_values(values, "mean", 1);
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double sample_sd(const std::vector<double>& values) {
  check_values(values, "sample_sd", 2);
  const double centre = mean(values);
  double sum_squares = 0;
  for (double v : values) sum_squares += (v - centre) * (v - centre);
  return std::sqrt(sum_squares / static_cast<double>(values.size() - 1));
}

double percentile(const std::vector<double>& values, double percent) {
  check_values(values, "percentile", 1);
  MCD_CHECK(percent >= 0 && percent <= 100, "percentile: percent must be in [0, 100], got ",
            percent);
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  return percentile_of_sorted(sorted, percent);
}

double median(const std::vector<double>& values) {
  check_values(values, "median", 1);
  std::vector<double> scratch = values;
  return median_in_place(scratch);
}

Summary summarize(const std::vector<double>& values) {
  check_values(values, "summarize", 1);
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  Summary s;
  s.n = static_cast<int64_t>(values.size());
  s.mean = mean(values);
  s.sd = values.size() >= 2 ? sample_sd(values) : 0.0;
  s.min = sorted.front();
  s.p50 = percentile_of_sorted(sorted, 50);
  s.p95 = percentile_of_sorted(sorted, 95);
  s.p99 = percentile_of_sorted(sorted, 99);
  s.max = sorted.back();
  return s;
}

// ---- Student's t ----

double regularized_incomplete_beta(double a, double b, double x) {
  MCD_CHECK(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b),
            "regularized_incomplete_beta: a and b must be positive and finite, got a = ", a,
            ", b = ", b);
  MCD_CHECK(x >= 0 && x <= 1, "regularized_incomplete_beta: x must be in [0, 1], got ", x);
  return incomplete_beta(a, b, beta_argument(x));
}

double student_t_cdf(double t, double df) {
  check_df(df, "student_t_cdf");
  MCD_CHECK(!std::isnan(t), "student_t_cdf: t is NaN");
  const double tail = t_upper_tail(std::abs(t), df);
  return t < 0 ? tail : 1 - tail;
}

double student_t_two_sided_p(double t, double df) {
  check_df(df, "student_t_two_sided_p");
  MCD_CHECK(!std::isnan(t), "student_t_two_sided_p: t is NaN");
  return std::min(1.0, 2 * t_upper_tail(std::abs(t), df));
}

double normal_quantile(double p) {
  MCD_CHECK(p > 0 && p < 1, "normal_quantile: p must be in (0, 1), got ", p);
  if (p == 0.5) return 0;  // exact, as the symmetry says (the bisection ends ~1e-16 from it)
  // Solve in the lower half, where p keeps its full relative precision: Φ⁻¹(p) = −Φ⁻¹(1 − p) (1 − p is exact for p > ½).
  if (p > 0.5) return -normal_quantile(1 - p);
  // Φ(z) = erfc(−z/√2)/2 increases with z; Φ(±40) is 0 / 1 in doubles, so the root lies inside.
  double low = -40, high = 40;
  for (int i = 0; i < 200 && high - low > 1e-15; ++i) {
    const double mid = 0.5 * (low + high);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

ProportionInterval wilson_interval(int64_t successes, int64_t n, double level) {
  MCD_CHECK(n >= 1 && successes >= 0 && successes <= n, "wilson_interval: need 0 <= successes <= n and n >= 1, got ",
            successes, " of ", n);
  MCD_CHECK(level > 0 && level < 1, "wilson_interval: level must be in (0, 1), got ", level);
  const double z = normal_quantile(0.5 + level / 2), z2 = z * z, nn = double(n), phat = double(successes) / nn;
  const double centre = (phat + z2 / (2 * nn)) / (1 + z2 / nn);
  const double half = z / (1 + z2 / nn) * std::sqrt(phat * (1 - phat) / nn + z2 / (4 * nn * nn));
  ProportionInterval out;
  out.successes = successes;
  out.n = n;
  out.estimate = phat;
  // At 0 (n) successes the lower (upper) end is 0 (1) exactly, where centre ∓ half rounds a few ulps off; and the
  // ends never cross the estimate.
  out.lower = successes == 0 ? 0.0 : std::min(phat, std::max(0.0, centre - half));
  out.upper = successes == n ? 1.0 : std::max(phat, std::min(1.0, centre + half));
  out.level = level;
  return out;
}

double mcnemar_exact_p(int64_t only_a, int64_t only_b) {
  MCD_CHECK(only_a >= 0 && only_b >= 0, "mcnemar_exact_p: counts must be >= 0, got ", only_a, " and ", only_b);
  const int64_t n = only_a + only_b, k = std::min(only_a, only_b);
  if (n == 0 || 2 * k == n) return 1;
  // 2 · P(X <= k) for X ~ Binomial(n, ½), the terms summed in log space (n may be large).
  double total = 0;
  for (int64_t i = 0; i <= k; ++i)
    total += std::exp(std::lgamma(double(n) + 1) - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) -
                      double(n) * std::log(2.0));
  return std::min(1.0, 2 * total);
}

double student_t_quantile(double p, double df) {
  check_df(df, "student_t_quantile");
  MCD_CHECK(p > 0 && p < 1, "student_t_quantile: p must be in (0, 1), got ", p);
  if (p == 0.5) return 0;
  const double sign = p < 0.5 ? -1 : 1;
  // Solve for |t| with whichever probability keeps full relative precision: the tail beyond
  // |t| when it is small, the mass between 0 and |t| near the centre. Both targets are exact
  // (Sterbenz: 1 - p for p >= 1/2, |p - 1/2| for p in [1/4, 3/4]).
  const double tail = p < 0.5 ? p : 1 - p;
  const bool central = tail > 0.25;
  const double target = central ? 0.5 - tail : tail;
  // Newton on residual(t), which increases with t and is 0 at the answer: the central mass
  // itself, or the log of the tail (the tail falls like exp(-t²/2) at large df; Newton on its
  // logarithm takes full steps where Newton on the tail crawls by ~1/t).
  struct Residual {
    double value, slope;
  };
  auto residual = [&](double t) -> Residual {
    if (central) return {t_central(t, df) - target, t_density(t, df)};
    const double upper = t_upper_tail(t, df);
    return {std::log(target) - std::log(upper), t_density(t, df) / upper};
  };

  double low = 0, high = 1;  // residual(low) < 0 <= residual(high) once bracketed
  while (residual(high).value < 0) {
    low = high;
    high *= 2;
    if (!std::isfinite(high)) return sign * kInfinity;  // beyond the largest double
  }
  // Newton's method, kept inside the bracket by a bisection step when it would leave it.
  double t = low + 0.5 * (high - low);
  for (int iteration = 0; iteration < 400; ++iteration) {
    const Residual r = residual(t);
    if (r.value == 0) break;
    if (r.value < 0) low = t; else high = t;
    double next = t - r.value / r.slope;
    if (!(next > low && next < high)) next = low + 0.5 * (high - low);
    const bool converged = std::abs(next - t) <= 4 * kEpsilon * t;
    t = next;
    if (converged || high - low <= 4 * kEpsilon * high) break;
  }
  return sign * t;
}

// ---- Intervals and tests ----

TInterval t_interval(const std::vector<double>& values, double level) {
  check_values(values, "t_interval", 2);
  check_level(level, "t_interval");
  TInterval interval;
  interval.n = static_cast<int64_t>(values.size());
  interval.mean = mean(values);
  interval.sd = sample_sd(values);
  interval.level = level;
  interval.t_critical =
      student_t_quantile(1 - (1 - level) / 2, static_cast<double>(interval.n - 1));
  interval.half_width =
      interval.t_critical * interval.sd / std::sqrt(static_cast<double>(interval.n));
  interval.lower = interval.mean - interval.half_width;
  interval.upper = interval.mean + interval.half_width;
  return interval;
}

PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b,
                          double level) {
  check_values(a, "paired_t_test", 2, "a");
  check_values(b, "paired_t_test", 2, "b");
  MCD_CHECK(a.size() == b.size(), "paired_t_test: a has ", a.size(), " values and b has ",
            b.size(), "; a paired test needs one b per a (same seeds)");
  check_level(level, "paired_t_test");
  std::vector<double> differences(a.size());
  for (size_t i = 0; i < a.size(); ++i) differences[i] = a[i] - b[i];

  PairedTTest test;
  test.difference = t_interval(differences, level);
  test.n = test.difference.n;
  test.mean_difference = test.difference.mean;
  test.sd_difference = test.difference.sd;
  test.df = static_cast<double>(test.n - 1);
  if (test.sd_difference > 0) {
    test.t = test.mean_difference / (test.sd_difference / std::sqrt(static_cast<double>(test.n)));
  } else {
    // Identical differences: certain of the sign when the mean is not 0, no evidence when it is.
    test.t = test.mean_difference > 0 ? kInfinity : test.mean_difference < 0 ? -kInfinity : 0.0;
  }
  test.p_two_sided = student_t_two_sided_p(test.t, test.df);
  test.p_greater = student_t_cdf(-test.t, test.df);  // P(T >= t) = P(T <= -t), tail kept exact
  return test;
}

// ---- Bootstrap ----

BootstrapInterval bootstrap_mean_difference(const std::vector<double>& a,
                                            const std::vector<double>& b,
                                            const BootstrapOptions& options) {
  const char* function = "bootstrap_mean_difference";
  check_values(a, function, 2, "a");
  check_values(b, function, 2, "b");
  MCD_CHECK(a.size() == b.size(), function, ": a has ", a.size(), " values and b has ",
            b.size(), "; paired differences need one b per a");
  check_bootstrap_options(options, function);
  const size_t n = a.size();
  std::vector<double> differences(n);
  for (size_t i = 0; i < n; ++i) differences[i] = a[i] - b[i];

  std::mt19937_64 engine(options.seed);
  std::vector<double> statistics(static_cast<size_t>(options.resamples));
  for (double& statistic : statistics) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += differences[uniform_index(engine, n)];
    statistic = sum / static_cast<double>(n);
  }
  return percentile_interval(mean(differences), std::move(statistics), options);
}

BootstrapInterval bootstrap_median_ratio(const std::vector<double>& a,
                                         const std::vector<double>& b,
                                         const BootstrapOptions& options) {
  const char* function = "bootstrap_median_ratio";
  check_values(a, function, 2, "a");
  check_values(b, function, 2, "b");
  for (const auto* set : {&a, &b}) {
    for (size_t i = 0; i < set->size(); ++i) {
      MCD_CHECK((*set)[i] > 0, function, ": ", set == &a ? "a" : "b", "[", i, "] is ",
                (*set)[i], "; a ratio of medians needs positive values (timings)");
    }
  }
  check_bootstrap_options(options, function);

  std::mt19937_64 engine(options.seed);
  std::vector<double> resample_a(a.size()), resample_b(b.size());
  std::vector<double> statistics(static_cast<size_t>(options.resamples));
  for (double& statistic : statistics) {
    for (double& v : resample_a) v = a[uniform_index(engine, a.size())];
    for (double& v : resample_b) v = b[uniform_index(engine, b.size())];
    statistic = median_in_place(resample_a) / median_in_place(resample_b);
  }
  return percentile_interval(median(a) / median(b), std::move(statistics), options);
}

}  // namespace mcd::eval
