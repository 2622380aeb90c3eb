// Tests for eval/statistics: descriptive statistics and numpy-style percentiles worked by hand,
// Student's t against closed forms, the Abramowitz & Stegun finite series and published
// quantiles, the paired t-test on a case whose p-value has a closed form, and the seeded
// bootstrap (reproducibility, hand-countable resampling distributions, coverage sanity).
// No numpy/scipy on the build machine: every reference is derived in a comment or cited.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "eval/statistics.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd::eval {
namespace {

const double kPi = std::acos(-1.0);

using test::expect_error;

// Abramowitz & Stegun 26.7.3 (odd ν) and 26.7.4 (even ν): A(t|ν) = P(|T| < t) for integer ν as
// a finite trigonometric series — an algorithm independent of the incomplete beta function.
double two_sided_mass_series(double t, int nu) {
  const double theta = std::atan(std::abs(t) / std::sqrt(static_cast<double>(nu)));
  const double s = std::sin(theta), c = std::cos(theta);
  double term = 1, sum = 1;
  if (nu % 2 == 1) {
    // (2/π){θ + sinθ·cosθ·[1 + (2/3)cos²θ + (2·4)/(3·5)cos⁴θ + ... up to cos^(ν-3)θ]}
    for (int k = 1; k <= (nu - 3) / 2; ++k) {
      term *= (2.0 * k) / (2.0 * k + 1) * c * c;
      sum += term;
    }
    return 2 / kPi * (theta + (nu > 1 ? s * c * sum : 0.0));
  }
  // sinθ·[1 + (1/2)cos²θ + (1·3)/(2·4)cos⁴θ + ... up to cos^(ν-2)θ]
  for (int k = 1; k <= (nu - 2) / 2; ++k) {
    term *= (2.0 * k - 1) / (2.0 * k) * c * c;
    sum += term;
  }
  return s * sum;
}

double cdf_series(double t, int nu) {
  const double mass = two_sided_mass_series(t, nu);
  return t >= 0 ? 0.5 + 0.5 * mass : 0.5 - 0.5 * mass;
}

// Normal variates by Box–Muller from the engine's raw bits (no library distribution), so the
// test data are the same everywhere.
std::vector<double> normal_sample(size_t n, double mean_value, double sd, uint64_t seed) {
  std::mt19937_64 engine(seed);
  auto uniform = [&] { return (static_cast<double>(engine() >> 11) + 0.5) * 0x1.0p-53; };
  std::vector<double> out(n);
  for (double& v : out) {
    v = mean_value + sd * std::sqrt(-2 * std::log(uniform())) * std::cos(2 * kPi * uniform());
  }
  return out;
}

// ---- Descriptive ----

TEST(Descriptive, MeanAndSampleSdByHand) {
  // {2,4,4,4,5,5,7,9}: mean 40/8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32;
  // sample sd = √(32/7) = 2.13808993529939507747... (bc -l).
  const std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(mean(v), 5.0);  // exact sums of small integers
  // 4 ulps (EXPECT_DOUBLE_EQ): one division and one sqrt of exact integers
  EXPECT_DOUBLE_EQ(sample_sd(v), 2.1380899352993950775);
  EXPECT_EQ(sample_sd({3, 3, 3}), 0.0);  // constant input: no spread, exactly
}

TEST(Descriptive, PercentileIsNumpyLinear) {
  // numpy.percentile's documentation example: [[10, 7, 4], [3, 2, 1]] → 50th percentile 3.5
  // (sorted 1 2 3 4 7 10, virtual index 5·0.5 = 2.5 → 3 + 0.5·(4 - 3)).
  EXPECT_EQ(percentile({10, 7, 4, 3, 2, 1}, 50), 3.5);
  // {15, 20, 35, 40, 50} given unsorted: index 4·p/100.
  const std::vector<double> v = {40, 15, 50, 35, 20};
  EXPECT_EQ(percentile(v, 0), 15.0);
  EXPECT_EQ(percentile(v, 100), 50.0);
  EXPECT_EQ(percentile(v, 50), 35.0);  // index 2 exactly
  // 40th: index 1.6 → 20 + 0.6·(35 - 20) = 29; 95th: index 3.8 → 40 + 0.8·10 = 48.
  // 1e-12: 0.4 and 0.95 are not exact in binary, so the index carries ~1e-16 relative error.
  EXPECT_NEAR(percentile(v, 40), 29.0, 1e-12);
  EXPECT_NEAR(percentile(v, 95), 48.0, 1e-12);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);  // even count: midpoint of 2 and 3
  EXPECT_EQ(median({5, 1, 3}), 3.0);
  EXPECT_EQ(percentile({7}, 99), 7.0);  // one value is every percentile
}

TEST(Descriptive, SummaryOfOneToHundred) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  const Summary s = summarize(v);
  EXPECT_EQ(s.n, 100);
  EXPECT_EQ(s.mean, 50.5);  // 5050 / 100, exact
  // sample variance of 1..n is n(n+1)/12 = 841.67; √ = 29.01149197588201713... (bc -l).
  EXPECT_DOUBLE_EQ(s.sd, 29.011491975882017135);
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.max, 100.0);
  EXPECT_EQ(s.p50, 50.5);  // index 49.5 → 50 + 0.5
  // index 99·0.95 = 94.05 → 95.05; 99·0.99 = 98.01 → 99.01. 1e-12: inexact 0.95, 0.99.
  EXPECT_NEAR(s.p95, 95.05, 1e-12);
  EXPECT_NEAR(s.p99, 99.01, 1e-12);

  const Summary one = summarize({0.25});
  EXPECT_EQ(one.n, 1);
  EXPECT_EQ(one.sd, 0.0);  // documented: no spread observed
  EXPECT_EQ(one.p99, 0.25);
}

TEST(Descriptive, Errors) {
  expect_error([] { mean({}); }, "needs at least 1");
  expect_error([] { sample_sd({1.0}); }, "needs at least 2");
  expect_error([] { summarize({}); }, "summarize");
  expect_error([] { mean({1.0, std::nan(""), 2.0}); }, "values[1] is nan");
  expect_error([] { percentile({1.0, INFINITY}, 50); }, "infinity");
  expect_error([] { percentile({1.0, 2.0}, 101); }, "percent must be in [0, 100]");
}

// ---- Student's t ----

TEST(StudentT, IncompleteBetaIdentities) {
  // Closed forms: I_x(1,1) = x; I_x(a,1) = x^a; I_x(1,b) = 1-(1-x)^b; I_x(2,2) = 3x²-2x³;
  // I_½(a,a) = ½ by symmetry. 1e-15: these are O(1) values, a few roundings from exact.
  for (double x : {0.0, 1e-6, 0.1, 0.37, 0.5, 0.9, 1.0}) {
    EXPECT_NEAR(regularized_incomplete_beta(1, 1, x), x, 1e-15);
    EXPECT_NEAR(regularized_incomplete_beta(3.5, 1, x), std::pow(x, 3.5), 1e-15);
    EXPECT_NEAR(regularized_incomplete_beta(1, 2.5, x), 1 - std::pow(1 - x, 2.5), 1e-15);
    EXPECT_NEAR(regularized_incomplete_beta(2, 2, x), 3 * x * x - 2 * x * x * x, 1e-15);
    // Reflection I_x(a,b) = 1 - I_{1-x}(b,a) across both branches of the fraction.
    EXPECT_NEAR(regularized_incomplete_beta(7.3, 0.4, x),
                1 - regularized_incomplete_beta(0.4, 7.3, 1 - x), 1e-14);
  }
  for (double a : {0.05, 0.5, 3.0, 40.0, 1e4, 1e7}) {
    // At the mode of a large-parameter beta: the balanced prefactor and the contracted fraction
    // at their hardest (a plain ln-form prefactor is off by ~6e-10 at a = 1e7). 1e-13: the
    // fraction takes ~√a terms here, each adding rounding.
    EXPECT_NEAR(regularized_incomplete_beta(a, a, 0.5), 0.5, 1e-13) << "a = " << a;
  }
  // Far below the mean with both parameters >= 10 (the prefactor's expansion must not be used
  // there). The power series I_x(a,b) = x^a/(a·B(a,b))·Σ (1-b)_n/n!·a/(a+n)·x^n with a = 10,
  // b = 47, x = 1e-10: 1/(a·B) = 56!/(10!·46!) = C(56,10) = 35607051480, and the series is
  // 1 - 46·(10/11)·1e-10 + (46·45/2)·(10/12)·1e-20 - ... → 3.56070513310977878505e-90 (exact
  // rational arithmetic). 1e-13 relative: a tail formed from logarithms of size ~230.
  EXPECT_NEAR(regularized_incomplete_beta(10, 47, 1e-10) / 3.56070513310977878505e-90, 1.0,
              1e-13);
  expect_error([] { regularized_incomplete_beta(0, 1, 0.5); }, "a and b must be positive");
  expect_error([] { regularized_incomplete_beta(1, 1, 1.5); }, "x must be in [0, 1]");
}

TEST(StudentT, CdfMatchesClosedForms) {
  // ν = 1 (Cauchy): ½ + atan(t)/π. ν = 2: ½ + t/(2√(2+t²)). ν = 3: ½ + (θ + sinθcosθ)/π with
  // θ = atan(t/√3) (A&S 26.7.3). 2e-15 absolute: the closed forms, evaluated in double, round
  // at the ~1e-16 level around ½.
  for (double t : {-50.0, -7.0, -2.0, -0.6, -1e-8, 0.0, 0.3, 1.0, 4.0, 1e3}) {
    EXPECT_NEAR(student_t_cdf(t, 1), 0.5 + std::atan(t) / kPi, 2e-15) << t;
    EXPECT_NEAR(student_t_cdf(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 2e-15) << t;
    const double theta = std::atan(t / std::sqrt(3.0));
    EXPECT_NEAR(student_t_cdf(t, 3),
                0.5 + (theta + std::sin(theta) * std::cos(theta)) / kPi, 2e-15) << t;
  }
  EXPECT_EQ(student_t_cdf(0, 7.5), 0.5);
  EXPECT_EQ(student_t_cdf(INFINITY, 3), 1.0);
  EXPECT_EQ(student_t_cdf(-INFINITY, 3), 0.0);
  // Deep Cauchy tail, relative: P(T < -t) = atan(1/t)/π ≈ 1/(πt) - 1/(3πt³) for t = 1e6.
  // 1e-13 relative: a tail computed directly, not as 1 - something.
  const double tail = 1 / (kPi * 1e6) - 1 / (3 * kPi * 1e18);
  EXPECT_NEAR(student_t_cdf(-1e6, 1) / tail, 1.0, 1e-13);
}

TEST(StudentT, CdfMatchesAbramowitzStegunSeries) {
  // Every integer ν from 1 to 30 against the A&S 26.7.3/26.7.4 series (a different algorithm).
  // 1e-14 absolute: the series sums at most 15 positive terms after a few trig roundings.
  for (int nu = 1; nu <= 30; ++nu) {
    for (double t : {-40.0, -5.0, -2.2, -1.0, -0.25, 0.0, 0.1, 0.7, 1.5, 2.9, 6.0, 25.0}) {
      EXPECT_NEAR(student_t_cdf(t, nu), cdf_series(t, nu), 1e-14) << "nu " << nu << " t " << t;
    }
  }
}

TEST(StudentT, QuantilesMatchPublishedValues) {
  // t_{0.975}(ν), t_{0.995}(ν) to 15 significant digits. ν = 1, 2, 4 are exact closed forms
  // (listed e.g. on Wikipedia's Student's t page) evaluated with bc -l at 40 digits:
  // tan(π(p-½)); (2p-1)/√(2p(1-p)); and for ν = 4, 2√(q-1) with q = cos(acos(√α)/3)/√α,
  // α = 4p(1-p). ν = 9 and 30 are the 15-digit values tabulated by R (qt), confirmed
  // independently by the A&S series check in this loop.
  // 1e-13 relative: the references are rounded to 15 digits (≤ 5e-15), the inversion is
  // solved to ~1e-15.
  struct Case {
    double p, df, expected;
  };
  const Case cases[] = {
      {0.975, 1, 12.7062047361747},  {0.975, 2, 4.30265272974946}, {0.975, 4, 2.77644510519779},
      {0.975, 9, 2.26215716279820},  {0.975, 30, 2.04227245630124}, {0.995, 4, 4.60409487134999},
      {0.995, 1, 63.6567411628716},
  };
  for (const Case& c : cases) {
    EXPECT_NEAR(student_t_quantile(c.p, c.df), c.expected, 1e-13 * c.expected)
        << "p " << c.p << " df " << c.df;
    EXPECT_NEAR(student_t_quantile(1 - c.p, c.df), -c.expected, 1e-13 * c.expected);
    // The tabulated quantile maps back to p under the series (A&S) where ν is an integer:
    // 1e-13 covers the reference's 15-digit rounding times the density.
    EXPECT_NEAR(cdf_series(c.expected, static_cast<int>(c.df)), c.p, 1e-13);
  }
}

TEST(StudentT, QuantileAtLargeDfMatchesCornishFisher) {
  // t_p(ν) = z + (z³+z)/(4ν) + (5z⁵+16z³+3z)/(96ν²) + O(ν⁻³) (A&S 26.7.5), with the normal
  // quantile z_{0.975} = 1.95996398454005423552 (tabulated to 20 digits, e.g. R's qnorm).
  // bc -l: ν = 1e6 → 1.95996635681410703270; ν = 1e12 → 1.95996398454242650675.
  // 1e-13: the dropped O(ν⁻³) term is < 1e-16 and the solver reaches ~1e-15. The continued
  // fraction summed as written would miss by ~1e-12 at 1e6 and ~1e-5 at 1e12 (docs/eval.md,
  // [Note: incomplete beta fraction]): this case guards that.
  EXPECT_NEAR(student_t_quantile(0.975, 1e6), 1.95996635681410703270, 1e-13);
  EXPECT_NEAR(student_t_quantile(0.975, 1e12), 1.95996398454242650675, 1e-13);
}

TEST(StudentT, QuantileAndCdfRoundTrip) {
  // Over real-valued df down to 0.05 and p down to 1e-200: the lower tail compared relatively
  // (it is computed directly), the upper by absolute error (1 - tail rounds at 1e-16).
  for (double df : {0.05, 0.3, 1.0, 2.5, 4.0, 7.7, 30.0, 250.0, 1e4, 1e6, 1e9}) {
    for (double p : {1e-200, 1e-30, 1e-8, 1e-3, 0.025, 0.2, 0.3, 0.4999, 0.5001, 0.7, 0.975,
                     0.999}) {
      const double t = student_t_quantile(p, df);
      if (std::isinf(t)) {
        // Only a quantile beyond the largest double may be infinite (small df, tiny p).
        EXPECT_GT(student_t_cdf(-DBL_MAX, df), p) << "df " << df << " p " << p;
        continue;
      }
      const double back = student_t_cdf(t, df);
      if (p < 0.5) {
        // 1e-12 relative: tail accurate to ~1e-14 at worst, times the solver's last step.
        EXPECT_NEAR(back / p, 1.0, 1e-12) << "df " << df << " p " << p;
      } else {
        EXPECT_NEAR(back, p, 1e-15) << "df " << df << " p " << p;  // a few ulps of 1
        // Symmetry, exactly: 1 - p is exact for p >= ½ and both calls solve for that tail.
        EXPECT_EQ(student_t_quantile(1 - p, df), -t) << "df " << df << " p " << p;
      }
    }
  }
  EXPECT_EQ(student_t_quantile(0.5, 3), 0.0);
}

TEST(StudentT, Errors) {
  expect_error([] { student_t_quantile(0, 3); }, "p must be in (0, 1)");
  expect_error([] { student_t_quantile(1, 3); }, "p must be in (0, 1)");
  expect_error([] { student_t_quantile(0.5, 0); }, "df must be positive");
  expect_error([] { student_t_cdf(1, -2); }, "df must be positive");
  expect_error([] { student_t_cdf(1, INFINITY); }, "finite");
  expect_error([] { student_t_cdf(std::nan(""), 2); }, "t is NaN");
}

// ---- Intervals and tests ----

TEST(Intervals, TIntervalByHand) {
  // {1,2,3,4,5}: mean 3, sd √2.5, se = √(2.5/5) = √0.5; t_{0.975}(4) = 2.77644510519779
  // (above), half width 2.77644510519779·√0.5 = 1.96324316147755770 (bc -l).
  // 1e-13: the quantile's tolerance carried through one product.
  const TInterval ci = t_interval({1, 2, 3, 4, 5});
  EXPECT_EQ(ci.n, 5);
  EXPECT_DOUBLE_EQ(ci.mean, 3.0);
  EXPECT_DOUBLE_EQ(ci.sd, std::sqrt(2.5));
  EXPECT_NEAR(ci.t_critical, 2.77644510519779436, 1e-13);
  EXPECT_NEAR(ci.half_width, 1.96324316147755770, 1e-13);
  EXPECT_NEAR(ci.lower, 1.03675683852244230, 1e-13);
  EXPECT_NEAR(ci.upper, 4.96324316147755770, 1e-13);
  // 99%: t_{0.995}(4) = 4.60409487134999323 → half width ·√0.5 = 3.25558670475778533.
  EXPECT_NEAR(t_interval({1, 2, 3, 4, 5}, 0.99).half_width, 3.25558670475778533, 1e-13);

  const TInterval flat = t_interval({2, 2, 2});
  EXPECT_EQ(flat.half_width, 0.0);  // constant input: a zero-width interval at the mean
  EXPECT_EQ(flat.lower, 2.0);

  expect_error([] { t_interval({1.0}); }, "needs at least 2");
  expect_error([] { t_interval({1.0, 2.0}, 1.0); }, "level must be in (0, 1)");
  expect_error([] { t_interval({1.0, std::nan("")}); }, "NaN");
}

TEST(Intervals, PairedTTestByHand) {
  // Variant a vs reference b over five seeds; d = a - b = {1,2,3,4,5}: mean 3, sd √2.5,
  // t = 3/√(2.5/5) = 3√2 = 4.24264068711928515, df 4. For ν = 4, A&S 26.7.4 gives
  // P(|T| < t) = sinθ(1 + ½cos²θ) with tanθ = t/2 = 3/√2: sinθ = 3/√11, cos²θ = 2/11, so
  // p = 1 - (3/√11)(12/11) = 1 - 36/(11√11) = 0.01323559956368268952 (bc -l).
  const std::vector<double> a = {81, 83, 84, 86, 88};
  const std::vector<double> b = {80, 81, 81, 82, 83};
  const PairedTTest test = paired_t_test(a, b);
  EXPECT_EQ(test.n, 5);
  EXPECT_EQ(test.df, 4.0);
  EXPECT_DOUBLE_EQ(test.mean_difference, 3.0);
  EXPECT_DOUBLE_EQ(test.sd_difference, std::sqrt(2.5));
  EXPECT_DOUBLE_EQ(test.t, 4.24264068711928515);
  // 1e-15 absolute (~1e-13 relative): an O(1e-2) tail from the incomplete beta function.
  EXPECT_NEAR(test.p_two_sided, 0.01323559956368268952, 1e-15);
  EXPECT_NEAR(test.p_greater, 0.00661779978184134476, 1e-15);  // half: t > 0
  EXPECT_NEAR(test.difference.lower, 1.03675683852244230, 1e-13);  // as TIntervalByHand
  EXPECT_NEAR(test.difference.upper, 4.96324316147755770, 1e-13);

  // Swapped roles: t = -3√2, the same two-sided p, and P(T >= t) = 1 - p/2.
  const PairedTTest swapped = paired_t_test(b, a);
  EXPECT_DOUBLE_EQ(swapped.t, -4.24264068711928515);
  EXPECT_NEAR(swapped.p_two_sided, 0.01323559956368268952, 1e-15);
  EXPECT_NEAR(swapped.p_greater, 0.99338220021815865524, 1e-15);
}

TEST(Intervals, PairedTTestConstantDifferences) {
  const PairedTTest shifted = paired_t_test({2, 3, 4}, {1, 2, 3});  // every d = 1
  EXPECT_EQ(shifted.t, INFINITY);
  EXPECT_EQ(shifted.p_two_sided, 0.0);
  EXPECT_EQ(shifted.p_greater, 0.0);
  const PairedTTest same = paired_t_test({1, 2, 3}, {1, 2, 3});  // every d = 0
  EXPECT_EQ(same.t, 0.0);
  EXPECT_EQ(same.p_two_sided, 1.0);
  EXPECT_EQ(same.p_greater, 0.5);
  expect_error([] { paired_t_test({1, 2, 3}, {1, 2}); }, "one b per a");
  expect_error([] { paired_t_test({1}, {1}); }, "needs at least 2");
}

// ---- Bootstrap ----

TEST(Bootstrap, EngineIsTheStandardOne) {
  // The seed rule's reproducibility rests on std::mt19937_64 being the same everywhere: the
  // C++ standard ([rand.predef]) fixes its 10000th output from the default seed.
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ULL);
}

TEST(Bootstrap, MeanDifferenceOfTwoPairsByCounting) {
  // d = {0, 1}: a resample of two differences has mean 0, ½ or 1 with probabilities ¼, ½, ¼.
  // With 10000 resamples about 2500 are 0 and 2500 are 1, so the 2.5th percentile (index
  // 249.975) and the 97.5th (index 9749.025) both fall inside those runs: exactly 0 and 1.
  const BootstrapInterval ci = bootstrap_mean_difference({1, 2}, {1, 1});
  EXPECT_EQ(ci.estimate, 0.5);
  EXPECT_EQ(ci.lower, 0.0);
  EXPECT_EQ(ci.upper, 1.0);
  EXPECT_EQ(ci.resamples, 10000);
  EXPECT_EQ(ci.seed, kDefaultBootstrapSeed);
}

TEST(Bootstrap, MedianRatioByCounting) {
  // b = {1, 1}: every resample's median is 1. a = {1, 3}: a resample's median is 1, 2 or 3
  // with probabilities ¼, ½, ¼ (the even-count median averages the two values), so the
  // interval is [1, 3] by the same counting as above; the estimate is median(a)/median(b) = 2.
  const BootstrapInterval ci = bootstrap_median_ratio({1, 3}, {1, 1});
  EXPECT_EQ(ci.estimate, 2.0);
  EXPECT_EQ(ci.lower, 1.0);
  EXPECT_EQ(ci.upper, 3.0);
  // Constant sets: every resample gives the same ratio.
  const BootstrapInterval flat = bootstrap_median_ratio({4, 4, 4}, {2, 2});
  EXPECT_EQ(flat.lower, 2.0);
  EXPECT_EQ(flat.upper, 2.0);
}

TEST(Bootstrap, SameSeedSameInterval) {
  const std::vector<double> a = normal_sample(40, 0.52, 0.03, 1);  // variant latencies (ms)
  const std::vector<double> b = normal_sample(40, 0.60, 0.03, 2);  // reference latencies
  const BootstrapInterval first = bootstrap_median_ratio(a, b);
  const BootstrapInterval again = bootstrap_median_ratio(a, b);
  EXPECT_EQ(first.lower, again.lower);  // bit for bit: one engine per call, seeded only by seed
  EXPECT_EQ(first.upper, again.upper);
  BootstrapOptions other;
  other.seed = 7;
  const BootstrapInterval reseeded = bootstrap_median_ratio(a, b, other);
  EXPECT_NE(first.lower, reseeded.lower);  // a different stream (continuous data: no ties)
  EXPECT_EQ(first.estimate, reseeded.estimate);  // the point estimate does not resample
  // Two seeds agree to Monte Carlo error (~1% of the width at 10000 resamples; 5% leaves room).
  const double width = first.upper - first.lower;
  EXPECT_NEAR(reseeded.lower, first.lower, 0.05 * width);
  EXPECT_NEAR(reseeded.upper, first.upper, 0.05 * width);
}

TEST(Bootstrap, PinnedValuesGuardTheSeedRule) {
  // Recorded from this implementation (not derived): they change only if the seed rule, the
  // draw order or the index sampling changes, which would make old reports irreproducible.
  // Integer data keep every resampled statistic exact, so the values are the same on any
  // IEEE-754 machine. Sanity by hand: the mean-difference interval lies within [1, 9] (the
  // data's range), the ratio interval within [3/7, 8/4].
  const std::vector<double> d = {3, 1, 4, 1, 5, 9, 2, 6};
  const BootstrapInterval mean_ci = bootstrap_mean_difference(d, std::vector<double>(8, 0.0));
  EXPECT_EQ(mean_ci.estimate, 3.875);  // 31/8
  EXPECT_EQ(mean_ci.lower, 2.25);
  EXPECT_EQ(mean_ci.upper, 5.75);
  const BootstrapInterval ratio_ci = bootstrap_median_ratio({5, 3, 8, 6, 7}, {4, 6, 5, 7});
  EXPECT_EQ(ratio_ci.estimate, 6 / 5.5);  // median 6 over median 5.5
  EXPECT_EQ(ratio_ci.lower, 3 / 5.5);
  EXPECT_EQ(ratio_ci.upper, 8 / 5.0);
  BootstrapOptions options;
  options.seed = 1;
  options.resamples = 1000;
  options.level = 0.9;
  const BootstrapInterval seeded =
      bootstrap_mean_difference(d, std::vector<double>(8, 0.0), options);
  // Interpolated between neighbouring resamples (index 999·0.05): 4 ulps.
  EXPECT_DOUBLE_EQ(seeded.lower, 2.4937499999999986);
  EXPECT_DOUBLE_EQ(seeded.upper, 5.3812499999999943);
}

TEST(Bootstrap, IntervalsContainTheEstimateAndNarrowWithN) {
  const std::vector<double> scores = normal_sample(400, 0.8, 1.5, 11);  // paired differences
  const std::vector<double> zeros(scores.size(), 0.0);
  const std::vector<double> small(scores.begin(), scores.begin() + 10);
  const std::vector<double> small_zeros(10, 0.0);
  const BootstrapInterval wide = bootstrap_mean_difference(small, small_zeros);
  const BootstrapInterval narrow = bootstrap_mean_difference(scores, zeros);
  for (const auto& ci : {wide, narrow}) {
    EXPECT_LE(ci.lower, ci.estimate);
    EXPECT_GE(ci.upper, ci.estimate);
  }
  // Width scales like 1/√n: 400 vs 10 values → ~6× narrower; 2× is a safe floor.
  EXPECT_GT(wide.upper - wide.lower, 2 * (narrow.upper - narrow.lower));

  // At n = 400 the percentile bootstrap of a mean is close to the t-interval: its width is
  // about z/t_{0.975}(399)·√((n-1)/n) ≈ 0.99 of the t width, plus ~2% Monte Carlo error.
  // [0.9, 1.1] leaves room for both.
  const TInterval t = t_interval(scores);
  const double ratio = (narrow.upper - narrow.lower) / (t.upper - t.lower);
  EXPECT_GT(ratio, 0.9);
  EXPECT_LT(ratio, 1.1);
  // A lower level gives a narrower interval from the same resamples.
  BootstrapOptions eighty;
  eighty.level = 0.8;
  const BootstrapInterval inner = bootstrap_mean_difference(scores, zeros, eighty);
  EXPECT_GT(inner.lower, narrow.lower);
  EXPECT_LT(inner.upper, narrow.upper);

  // Latency ratio: 0.9× with noise; the interval holds the estimate and is narrower at n = 400.
  const std::vector<double> fast = normal_sample(400, 0.9, 0.05, 21);
  const std::vector<double> slow = normal_sample(400, 1.0, 0.05, 22);
  const BootstrapInterval many = bootstrap_median_ratio(fast, slow);
  const BootstrapInterval few = bootstrap_median_ratio(
      std::vector<double>(fast.begin(), fast.begin() + 8),
      std::vector<double>(slow.begin(), slow.begin() + 8));
  for (const auto& ci : {many, few}) {
    EXPECT_LE(ci.lower, ci.estimate);
    EXPECT_GE(ci.upper, ci.estimate);
  }
  EXPECT_GT(few.upper - few.lower, 2 * (many.upper - many.lower));
  // sd of a median ≈ 1.25·σ/√n: ratio sd ≈ 0.0044 at n = 400, so ±0.02 around 0.9 is ~4.5 sd.
  EXPECT_NEAR(many.estimate, 0.9, 0.02);
}

TEST(Bootstrap, Errors) {
  expect_error([] { bootstrap_mean_difference({1}, {1}); }, "needs at least 2");
  expect_error([] { bootstrap_mean_difference({1, 2, 3}, {1, 2}); }, "one b per a");
  expect_error([] { bootstrap_median_ratio({1, 2}, {1, -2}); }, "b[1] is -2");
  expect_error([] { bootstrap_median_ratio({1, 2}, {1, std::nan("")}); }, "NaN");
  BootstrapOptions none;
  none.resamples = 0;
  expect_error([&] { bootstrap_mean_difference({1, 2}, {0, 0}, none); }, "resamples");
  BootstrapOptions bad_level;
  bad_level.level = 0;
  expect_error([&] { bootstrap_median_ratio({1, 2}, {1, 2}, bad_level); }, "level");
}

}  // namespace
}  // namespace mcd::eval

namespace mcd::eval {
namespace {

// Φ⁻¹ at known points (the 95 % and 99 % two-sided z to their printed digits) and Φ(Φ⁻¹(p)) = p
// through erfc, an independent formula, to 1e-14 across the range.
TEST(Normal, QuantileInvertsTheCdf) {
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-14);
  EXPECT_NEAR(normal_quantile(0.995), 2.5758293035489004, 1e-14);
  EXPECT_EQ(normal_quantile(0.5), 0.0);
  // Lower half: Φ(z) back to p within a few ulps of p plus the bisection's 1e-15 in z times the density (≤ 0.4).
  for (double p : {1e-10, 0.001, 0.2, 0.45})
    EXPECT_NEAR(0.5 * std::erfc(-normal_quantile(p) / std::sqrt(2.0)), p, 1e-13 * p + 1e-16) << p;
  // Upper half by symmetry, exactly: the tail 1 − p keeps its precision.
  for (double p : {0.7, 0.999999, 1 - 1e-12}) EXPECT_EQ(normal_quantile(p), -normal_quantile(1 - p)) << p;
  expect_error([] { normal_quantile(1.0); }, "p must be in (0, 1)");
}

// Wilson's interval by hand: 50 of 100 at 95 % is 0.5 ± 1.96·√(0.25/100 + 1.96²/40000) / (1 + 1.96²/100)
// = [0.4038, 0.5962] (the textbook value); 0 of 10 starts at 0 and 10 of 10 ends at 1 exactly, their
// other ends z²/(n + z²) = 0.2775 away; a larger n narrows it.
TEST(Proportion, WilsonIntervalByHand) {
  const ProportionInterval half = wilson_interval(50, 100);
  EXPECT_NEAR(half.lower, 0.40383153, 1e-7);
  EXPECT_NEAR(half.upper, 0.59616847, 1e-7);
  EXPECT_EQ(half.estimate, 0.5);
  const double z2 = std::pow(normal_quantile(0.975), 2);
  const ProportionInterval none = wilson_interval(0, 10), all = wilson_interval(10, 10);
  EXPECT_EQ(none.lower, 0.0);
  EXPECT_NEAR(none.upper, z2 / (10 + z2), 1e-15);
  EXPECT_EQ(all.upper, 1.0);
  EXPECT_NEAR(all.lower, 10 / (10 + z2), 1e-15);
  EXPECT_LT(wilson_interval(500, 1000).upper - wilson_interval(500, 1000).lower, half.upper - half.lower);
  // The ends are exact at the extremes for any n (centre ± half alone rounds a few ulps off, e.g. 3 of 3 and
  // 872 of 872 gave 0.9999999999999999, below the estimate) and never cross the estimate.
  for (int64_t n : {1, 3, 872, 100000}) {
    EXPECT_EQ(wilson_interval(n, n).upper, 1.0) << n;
    EXPECT_EQ(wilson_interval(0, n).lower, 0.0) << n;
    for (int64_t k : {int64_t(0), n / 3, n - 1, n}) {
      if (k < 0) continue;
      const ProportionInterval w = wilson_interval(k, n);
      EXPECT_LE(w.lower, w.estimate) << k << "/" << n;
      EXPECT_GE(w.upper, w.estimate) << k << "/" << n;
    }
  }
  expect_error([] { wilson_interval(3, 2); }, "need 0 <= successes <= n");
}

// McNemar's exact test by hand: 0 and 5 discordant → 2 · (1/2)^5 = 1/16; 2 and 8 → 2 · (1 + 10 + 45)/1024 =
// 112/1024; equal counts and none at all → 1.
TEST(Proportion, McNemarExactByHand) {
  EXPECT_NEAR(mcnemar_exact_p(0, 5), 1.0 / 16, 1e-15);
  EXPECT_NEAR(mcnemar_exact_p(8, 2), 112.0 / 1024, 1e-14);
  EXPECT_EQ(mcnemar_exact_p(3, 3), 1.0);
  EXPECT_EQ(mcnemar_exact_p(0, 0), 1.0);
  EXPECT_LT(mcnemar_exact_p(0, 2000), 1e-300);  // log space: no overflow at large counts
}

}  // namespace
}  // namespace mcd::eval
