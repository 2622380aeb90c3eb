// The verdicts of METHOD §5's hypotheses H1–H4 from the numbers a run measured. Torch-free (eval
// and util only) so that every rule is unit-tested on hand-computed cases; the CLI's report
// gathers the measurements (tests/pipeline/test_hypotheses.cpp, docs/pipeline.md "Hypotheses").
//
// Rules (METHOD §5):
//   - latency: ratio of medians of per-iteration timings measured in the same process, with a
//     bootstrap 95 % interval (eval::bootstrap_median_ratio);
//   - scores: paired by seed — the 95 % t-interval of the mean difference (variant − reference)
//     and the paired t-test; "non-inferior" = the interval's lower bound is above −1 point;
//   - deterministic quantities (FLOPs, trainable parameters, peak memory) compared directly;
//   - a verdict: holds when the whole interval is on the claimed side of the threshold, fails
//     when it is wholly on the other side, inconclusive when it straddles; a deterministic
//     comparison holds or fails;
//   - a compound hypothesis (H1's two cases, H2, H3, H4's parts) fails if any part fails, is not
//     evaluated if any part is not (and none fails), holds if every part holds, else is
//     inconclusive;
//   - a part whose variant was not in the experiment, or whose measurement is missing, is "not
//     evaluated" with the reason.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/statistics.h"

namespace mcd::pipeline {

enum class Verdict { kHolds, kFails, kInconclusive, kNotEvaluated };
const char* verdict_name(Verdict v);  // "holds", "fails", "inconclusive", "not evaluated"

// An interval [lower, upper] of a quantity claimed to be ≤ threshold: holds if upper ≤ threshold,
// fails if lower > threshold, otherwise inconclusive.
Verdict verdict_at_most(double lower, double upper, double threshold);
// … claimed to be > threshold: holds if lower > threshold, fails if upper ≤ threshold.
Verdict verdict_above(double lower, double upper, double threshold);
// Compound verdict, as above: any fails → fails; else any not evaluated → not evaluated; all
// hold → holds; else inconclusive. An empty list is not evaluated.
Verdict combine(const std::vector<Verdict>& parts);

// What the hypotheses need of one variant. Missing values: NaN, -1 or empty.
struct VariantMeasurements {
  std::string model;  // the deployed model (equal strings: the same network at inference)
  // Seed → the average task score (points) over the experiment's tasks; only seeds with a result
  // for every task, so that averages pair across variants.
  std::map<int64_t, double> average_score;
  double flops = NAN;             // forward FLOPs of the deployed classifier (one sequence)
  int64_t trainable = -1;         // trainable parameters of the fine-tuning (head excluded)
  double peak_memory_bytes = NAN;  // peak inference memory; NaN when not measured (CPU)
  std::vector<double> prefill_ms;  // per-iteration timings, prefill B = 1, L = 1024
  std::vector<double> decode_ms;   // per-iteration timings, batch-1 decode
};

struct HypothesisInputs {
  std::map<std::string, VariantMeasurements> variants;  // by report name ("M_base", …): those run
  eval::BootstrapOptions bootstrap;                     // for every latency ratio
  double level = 0.95;                                  // t-intervals
};

struct HypothesisPart {
  std::string claim;      // what this part tests, e.g. "decode latency M_CSP / M_base ≤ 0.9"
  Verdict verdict = Verdict::kNotEvaluated;
  std::string evidence;   // the numbers in words, or (not evaluated) the reason
  nlohmann::json numbers = nlohmann::json::object();  // the raw inputs and statistics
};

struct HypothesisResult {
  std::string id;         // "H1" … "H4"
  std::string statement;  // METHOD's wording
  Verdict verdict = Verdict::kNotEvaluated;  // combine() of the parts
  std::vector<HypothesisPart> parts;
};

std::vector<HypothesisResult> evaluate_hypotheses(const HypothesisInputs& in);
nlohmann::json hypotheses_json(const std::vector<HypothesisResult>& results);

// Scores of two variants paired by seed: the seeds both have, in increasing order.
struct PairedScores {
  std::vector<int64_t> seeds;
  std::vector<double> variant, reference;
};
PairedScores pair_by_seed(const std::map<int64_t, double>& variant, const std::map<int64_t, double>& reference);

}  // namespace mcd::pipeline
