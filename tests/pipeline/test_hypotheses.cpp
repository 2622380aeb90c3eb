// H1–H4's verdicts on hand-computed cases: each verdict reachable, compound rules, a missing
// variant or measurement → not evaluated with the reason.
//
// The score intervals below use n = 3 seeds, so t(0.975, 2) = 4.302652729911275 and a difference
// sd of 0.5 gives the half width 4.302652729911275 · 0.5 / √3 = 1.2420689 (1 → 2.4841377).
// Latency timings are constants where the ratio must be exact: every bootstrap resample then has
// the same medians, so the interval is the single point of the ratio.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "pipeline/hypotheses.h"
#include "util/error.h"

namespace mcd::pipeline {
namespace {

std::vector<double> constant(double v, int n = 10) { return std::vector<double>(size_t(n), v); }

// Average scores for seeds 1, 2, 3.
std::map<int64_t, double> scores(double a, double b, double c) { return {{1, a}, {2, b}, {3, c}}; }

const HypothesisResult& get(const std::vector<HypothesisResult>& r, const std::string& id) {
  for (const auto& h : r)
    if (h.id == id) return h;
  throw Error("no " + id);
}

TEST(Hypotheses, IntervalVerdictsOnEachSideAndAtTheBoundary) {
  EXPECT_EQ(verdict_at_most(0.8, 0.85, 0.9), Verdict::kHolds);
  EXPECT_EQ(verdict_at_most(0.8, 0.9, 0.9), Verdict::kHolds);  // ≤: the threshold itself is on the claimed side
  EXPECT_EQ(verdict_at_most(0.85, 0.95, 0.9), Verdict::kInconclusive);
  EXPECT_EQ(verdict_at_most(0.95, 1.0, 0.9), Verdict::kFails);
  EXPECT_EQ(verdict_above(-0.5, 2, -1), Verdict::kHolds);
  EXPECT_EQ(verdict_above(-1.5, 2, -1), Verdict::kInconclusive);
  EXPECT_EQ(verdict_above(-3, -1, -1), Verdict::kFails);  // > claimed: the threshold is the other side
  EXPECT_THROW(verdict_above(1, 0, 0), Error);
}

TEST(Hypotheses, CompoundFailsIfAnyFailsHoldsIfAllHold) {
  using V = Verdict;
  EXPECT_EQ(combine({V::kHolds, V::kHolds}), V::kHolds);
  EXPECT_EQ(combine({V::kHolds, V::kInconclusive}), V::kInconclusive);
  EXPECT_EQ(combine({V::kInconclusive, V::kFails}), V::kFails);
  EXPECT_EQ(combine({V::kNotEvaluated, V::kFails}), V::kFails);  // a failed part is a result either way
  EXPECT_EQ(combine({V::kNotEvaluated, V::kHolds}), V::kNotEvaluated);
  EXPECT_EQ(combine({V::kNotEvaluated, V::kInconclusive}), V::kNotEvaluated);
  EXPECT_EQ(combine({}), V::kNotEvaluated);
}

TEST(Hypotheses, PairBySeedKeepsCommonSeedsInOrder) {
  const PairedScores p = pair_by_seed({{3, 30}, {1, 10}, {2, 20}}, {{2, 2}, {3, 3}, {5, 5}});
  EXPECT_EQ(p.seeds, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(p.variant, (std::vector<double>{20, 30}));
  EXPECT_EQ(p.reference, (std::vector<double>{2, 3}));
}

TEST(Hypotheses, MissingVariantsAreNotEvaluatedWithTheReason) {
  HypothesisInputs in;
  in.variants["M_base"].model = "base";
  const auto r = evaluate_hypotheses(in);
  ASSERT_EQ(r.size(), 4u);
  for (const auto& h : r) EXPECT_EQ(h.verdict, Verdict::kNotEvaluated) << h.id;
  EXPECT_NE(get(r, "H1").parts[0].evidence.find("M_CSP is not among the experiment's variants"), std::string::npos)
      << get(r, "H1").parts[0].evidence;
  EXPECT_NE(get(r, "H4").parts[0].evidence.find("M_full is not among"), std::string::npos);
}

TEST(Hypotheses, H1FromRatiosOfMedians) {
  HypothesisInputs in;
  in.bootstrap.resamples = 2000;
  auto& base = in.variants["M_base"];
  auto& csp = in.variants["M_CSP"];
  base.model = "base";
  csp.model = "csp";
  base.prefill_ms = constant(10);
  base.decode_ms = constant(10);
  csp.prefill_ms = constant(8);   // ratio 0.8 ≤ 0.9 exactly: holds
  csp.decode_ms = constant(8.5);  // 0.85: holds
  EXPECT_EQ(get(evaluate_hypotheses(in), "H1").verdict, Verdict::kHolds);
  EXPECT_DOUBLE_EQ(get(evaluate_hypotheses(in), "H1").parts[0].numbers["ratio_of_medians"].get<double>(), 0.8);

  csp.decode_ms = constant(9.5);  // 0.95 > 0.9 with a point interval: the decode part fails, so H1 fails
  auto h1 = get(evaluate_hypotheses(in), "H1");
  EXPECT_EQ(h1.parts[1].verdict, Verdict::kFails);
  EXPECT_EQ(h1.verdict, Verdict::kFails);

  // Half the timings 8, half 10: a resample of 20 has more 8s (median 8, ratio 0.8) or more 10s
  // (ratio 1.0) each with probability ≈ 0.41, so the 2.5th and 97.5th percentiles are 0.8 and
  // 1.0: the interval straddles 0.9.
  csp.decode_ms.clear();
  for (int i = 0; i < 10; ++i) csp.decode_ms.insert(csp.decode_ms.end(), {8.0, 10.0});
  h1 = get(evaluate_hypotheses(in), "H1");
  EXPECT_EQ(h1.parts[1].verdict, Verdict::kInconclusive) << h1.parts[1].evidence;
  EXPECT_EQ(h1.verdict, Verdict::kInconclusive);

  csp.prefill_ms.clear();  // the profile had no 1x1024 case
  h1 = get(evaluate_hypotheses(in), "H1");
  EXPECT_EQ(h1.verdict, Verdict::kNotEvaluated);
  EXPECT_NE(h1.parts[0].evidence.find("no prefill 1x1024 timings of M_CSP"), std::string::npos) << h1.parts[0].evidence;
}

TEST(Hypotheses, H2FlopsAndNonInferiority) {
  HypothesisInputs in;
  auto& base = in.variants["M_base"];
  auto& sdm = in.variants["M_SDM"];
  base.flops = 100;
  sdm.flops = 70;  // 0.70 ≤ 0.75
  base.average_score = scores(80, 81, 82);
  // Differences 0.5, 1.0, 1.5: mean 1, sd 0.5 → [1 − 1.242, 1 + 1.242] = [−0.242, 2.242], above −1.
  sdm.average_score = scores(80.5, 82, 83.5);
  auto h2 = get(evaluate_hypotheses(in), "H2");
  EXPECT_EQ(h2.parts[0].verdict, Verdict::kHolds);
  EXPECT_EQ(h2.parts[1].verdict, Verdict::kHolds);
  EXPECT_EQ(h2.verdict, Verdict::kHolds);
  EXPECT_NEAR(h2.parts[1].numbers["lower"].get<double>(), 1 - 1.2420689, 1e-6);  // 7 digits printed above

  // Differences 0, 1, 2: mean 1, sd 1 → [−1.484, 3.484], straddling −1.
  sdm.average_score = scores(80, 82, 84);
  h2 = get(evaluate_hypotheses(in), "H2");
  EXPECT_EQ(h2.parts[1].verdict, Verdict::kInconclusive);
  EXPECT_EQ(h2.verdict, Verdict::kInconclusive);

  // Differences −3, −2.5, −2: mean −2.5, sd 0.5 → [−3.742, −1.258], wholly below −1.
  sdm.average_score = scores(77, 78.5, 80);
  h2 = get(evaluate_hypotheses(in), "H2");
  EXPECT_EQ(h2.parts[1].verdict, Verdict::kFails);
  EXPECT_EQ(h2.verdict, Verdict::kFails);

  // One seed: no interval, so the score part is not evaluated; FLOPs 0.8 > 0.75 still fails H2.
  sdm.average_score = {{1, 80}};
  sdm.flops = 80;
  h2 = get(evaluate_hypotheses(in), "H2");
  EXPECT_EQ(h2.parts[0].verdict, Verdict::kFails);
  EXPECT_EQ(h2.parts[1].verdict, Verdict::kNotEvaluated);
  EXPECT_NE(h2.parts[1].evidence.find("at least 2 seeds"), std::string::npos) << h2.parts[1].evidence;
  EXPECT_EQ(h2.verdict, Verdict::kFails);
  sdm.flops = 75;  // exactly 0.75 holds; the other part is missing
  EXPECT_EQ(get(evaluate_hypotheses(in), "H2").verdict, Verdict::kNotEvaluated);
}

TEST(Hypotheses, H3TrainableParametersAgainstFullFineTuningAndScoreAgainstLoraAll) {
  HypothesisInputs in;
  in.variants["M_base"].trainable = 1000;
  in.variants["M_SGH"].trainable = 600;
  in.variants["M_SGH"].average_score = scores(80.5, 82, 83.5);
  in.variants["LoRA-all"].average_score = scores(80, 81, 82);
  auto h3 = get(evaluate_hypotheses(in), "H3");
  EXPECT_EQ(h3.verdict, Verdict::kHolds) << h3.parts[0].evidence << " | " << h3.parts[1].evidence;
  in.variants["M_SGH"].trainable = 701;  // 0.701 > 0.70
  EXPECT_EQ(get(evaluate_hypotheses(in), "H3").verdict, Verdict::kFails);
  in.variants.erase("LoRA-all");
  in.variants["M_SGH"].trainable = 600;
  h3 = get(evaluate_hypotheses(in), "H3");
  EXPECT_EQ(h3.verdict, Verdict::kNotEvaluated);
  EXPECT_NE(h3.parts[1].evidence.find("LoRA-all is not among"), std::string::npos);
}

TEST(Hypotheses, H4DominanceAndTheChallenger) {
  HypothesisInputs in;
  in.bootstrap.resamples = 2000;
  auto& full = in.variants["M_full"];
  full = {"full", scores(80, 81, 82), 50, 10, 100, {}, constant(5)};
  // The challenger: same latency (ratio exactly 1, so "uncertain"), same memory, more trainable
  // parameters (worse) and 10 ± 1 points lower: it does not dominate.
  in.variants["M_challenge"] = {"chal", scores(70, 72, 71), 50, 20, 100, {}, constant(5)};
  // M_base: twice the decode time (worse).
  in.variants["M_base"] = {"base", scores(81, 82, 83), 100, 1000, 200, {}, constant(10)};
  auto h4 = get(evaluate_hypotheses(in), "H4");
  EXPECT_EQ(h4.parts[0].verdict, Verdict::kHolds) << h4.parts[0].evidence;
  // Differences 10, 9, 11: mean 10, sd 1 → [7.52, 12.48] above 0.
  EXPECT_EQ(h4.parts[1].verdict, Verdict::kHolds) << h4.parts[1].evidence;
  EXPECT_LT(h4.parts[1].numbers["p_two_sided"].get<double>(), 0.05);
  EXPECT_EQ(h4.parts[2].verdict, Verdict::kHolds) << h4.parts[2].evidence;  // ratio 1 ≤ 1
  EXPECT_EQ(h4.verdict, Verdict::kHolds);

  // A variant on M_full's own deployed model (same latency and memory), fewer trainable
  // parameters and a score that is not distinguishable: it may dominate.
  in.variants["M_SDM+SGH"] = {"full", scores(80.5, 80.5, 82.5), 50, 5, 100, {}, constant(5)};
  h4 = get(evaluate_hypotheses(in), "H4");
  EXPECT_EQ(h4.parts[0].verdict, Verdict::kInconclusive) << h4.parts[0].evidence;
  EXPECT_EQ(h4.parts[0].numbers["M_SDM+SGH"]["sides"]["decode_latency"], "same");
  EXPECT_EQ(h4.verdict, Verdict::kInconclusive);

  // Faster, smaller, as many trainable parameters, 1 point better on every seed: dominates.
  in.variants["M_SDM+SGH"] = {"sdm", scores(81, 82, 83), 40, 10, 90, {}, constant(4)};
  h4 = get(evaluate_hypotheses(in), "H4");
  EXPECT_EQ(h4.parts[0].verdict, Verdict::kFails) << h4.parts[0].evidence;
  EXPECT_EQ(h4.parts[0].numbers["M_SDM+SGH"]["status"], "dominates");
  EXPECT_EQ(h4.verdict, Verdict::kFails);

  // Memory not measured (a CPU profile): the dominance part cannot be evaluated.
  in.variants.erase("M_SDM+SGH");
  full.peak_memory_bytes = NAN;
  h4 = get(evaluate_hypotheses(in), "H4");
  EXPECT_EQ(h4.parts[0].verdict, Verdict::kNotEvaluated);
  EXPECT_NE(h4.parts[0].evidence.find("peak inference memory of M_full"), std::string::npos) << h4.parts[0].evidence;
  EXPECT_EQ(h4.verdict, Verdict::kNotEvaluated);

  // The challenger scoring higher: the interval of M_full − M_challenge lies below 0 — fails.
  in.variants["M_challenge"].average_score = scores(90, 91, 92);
  EXPECT_EQ(get(evaluate_hypotheses(in), "H4").parts[1].verdict, Verdict::kFails);
  EXPECT_EQ(get(evaluate_hypotheses(in), "H4").verdict, Verdict::kFails);
}

TEST(Hypotheses, JsonCarriesVerdictsAndEvidence) {
  HypothesisInputs in;
  in.variants["M_base"].flops = 100;
  in.variants["M_SDM"].flops = 60;
  const nlohmann::json j = hypotheses_json(evaluate_hypotheses(in));
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[1]["id"], "H2");
  EXPECT_EQ(j[1]["parts"][0]["verdict"], "holds");
  EXPECT_DOUBLE_EQ(j[1]["parts"][0]["numbers"]["ratio"].get<double>(), 0.6);
  EXPECT_EQ(j[1]["verdict"], "not evaluated");
}

}  // namespace
}  // namespace mcd::pipeline
