// H1–H4's verdicts (see hypotheses.h).
#include "pipeline/hypotheses.h"

#include <cmath>
#include <cstdio>

#include "util/error.h"

namespace mcd::pipeline {
namespace {

std::string num(double v, const char* format = "%.3g") {
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}
std::string points(double v) { return num(v, "%+.2f"); }

const VariantMeasurements* find(const HypothesisInputs& in, const std::string& name) {
  const auto it = in.variants.find(name);
  return it == in.variants.end() ? nullptr : &it->second;
}

HypothesisPart not_evaluated(std::string claim, std::string why) {
  HypothesisPart p;
  p.claim = std::move(claim);
  p.verdict = Verdict::kNotEvaluated;
  p.evidence = why;
  return p;
}

// Both variants present, or the part saying which is absent.
bool present(const HypothesisInputs& in, const std::vector<std::string>& names, const std::string& claim,
             HypothesisPart& out) {
  for (const auto& n : names)
    if (!find(in, n)) {
      out = not_evaluated(claim, n + " is not among the experiment's variants");
      return false;
    }
  return true;
}

// Ratio of medians variant/reference with its bootstrap interval, claimed ≤ threshold.
HypothesisPart latency_part(const HypothesisInputs& in, const std::string& v, const std::string& r,
                            std::vector<double> VariantMeasurements::*samples, const std::string& what,
                            double threshold) {
  const std::string claim = what + " latency " + v + " / " + r + " ≤ " + num(threshold, "%g") + " (ratio of medians)";
  HypothesisPart p;
  if (!present(in, {v, r}, claim, p)) return p;
  for (const auto& n : {v, r})
    if ((find(in, n)->*samples).size() < 2)
      return not_evaluated(claim, "the profile has no " + what + " timings of " + n + "'s model");
  const auto& a = find(in, v)->*samples;
  const auto& b = find(in, r)->*samples;
  const eval::BootstrapInterval ci = eval::bootstrap_median_ratio(a, b, in.bootstrap);
  p.claim = claim;
  p.verdict = verdict_at_most(ci.lower, ci.upper, threshold);
  p.evidence = "ratio " + num(ci.estimate) + ", 95 % bootstrap [" + num(ci.lower) + ", " + num(ci.upper) +
               "] (medians " + num(eval::median(a)) + " / " + num(eval::median(b)) + " ms per timed iteration — a decode iteration is the profile's whole token run, not one token — " +
               std::to_string(a.size()) + " / " + std::to_string(b.size()) + " timings)";
  p.numbers = {{"ratio_of_medians", ci.estimate}, {"lower", ci.lower},           {"upper", ci.upper},
               {"level", ci.level},               {"resamples", ci.resamples},   {"seed", ci.seed},
               {"median_variant_ms", eval::median(a)}, {"median_reference_ms", eval::median(b)},
               {"threshold", threshold}};
  return p;
}

// Average scores paired by seed: the t-interval of (v − r), claimed > threshold points.
HypothesisPart score_part(const HypothesisInputs& in, const std::string& v, const std::string& r,
                          const std::string& claim, double threshold) {
  HypothesisPart p;
  if (!present(in, {v, r}, claim, p)) return p;
  const PairedScores s = pair_by_seed(find(in, v)->average_score, find(in, r)->average_score);
  if (s.seeds.size() < 2)
    return not_evaluated(claim, "a paired t-interval needs at least 2 seeds with every task for both " + v + " and " +
                                    r + "; there are " + std::to_string(s.seeds.size()));
  const eval::PairedTTest t = eval::paired_t_test(s.variant, s.reference, in.level);
  p.claim = claim;
  p.verdict = verdict_above(t.difference.lower, t.difference.upper, threshold);
  p.evidence = "mean difference " + points(t.mean_difference) + " points, " + num(100 * in.level, "%g") +
               " % t-interval [" + points(t.difference.lower) + ", " + points(t.difference.upper) + "] (n = " +
               std::to_string(t.n) + " seeds), paired t = " + num(t.t) + ", two-sided p = " + num(t.p_two_sided);
  p.numbers = {{"seeds", s.seeds},
               {"variant", s.variant},
               {"reference", s.reference},
               {"mean_difference", t.mean_difference},
               {"sd_difference", t.sd_difference},
               {"lower", t.difference.lower},
               {"upper", t.difference.upper},
               {"level", in.level},
               {"t", std::isfinite(t.t) ? nlohmann::json(t.t) : nlohmann::json(t.t > 0 ? "inf" : "-inf")},
               {"df", t.df},
               {"p_two_sided", t.p_two_sided},
               {"p_greater", t.p_greater},
               {"threshold", threshold}};
  return p;
}

// value(v) ≤ factor · value(r), compared directly.
HypothesisPart deterministic_part(const std::string& claim, const std::string& what, double a, double b,
                                  double factor) {
  if (!std::isfinite(a) || !std::isfinite(b) || a < 0 || b <= 0) return not_evaluated(claim, what + " is missing");
  HypothesisPart p;
  p.claim = claim;
  const double ratio = a / b;
  p.verdict = ratio <= factor ? Verdict::kHolds : Verdict::kFails;
  p.evidence = num(a, "%.6g") + " / " + num(b, "%.6g") + " = " + num(ratio, "%.4f") + (ratio <= factor ? " ≤ " : " > ") +
               num(factor, "%g");
  p.numbers = {{"variant", a}, {"reference", b}, {"ratio", ratio}, {"threshold", factor}};
  return p;
}

// One dimension of H4's comparison of another variant against M_full.
enum class Side { kBetter, kSame, kWorse, kUncertain };
const char* side_name(Side s) {
  switch (s) {
    case Side::kBetter: return "better";
    case Side::kSame: return "same";
    case Side::kWorse: return "worse";
    case Side::kUncertain: return "uncertain";
  }
  return "?";
}
Side direct(double other, double full, bool lower_is_better) {
  if (other == full) return Side::kSame;
  return (other < full) == lower_is_better ? Side::kBetter : Side::kWorse;
}

// H4 (a): no other variant dominates M_full on (decode latency, peak memory, trainable
// parameters, average score). Per dimension, "better" and "worse" need the interval wholly on one
// side (latency ratio vs 1, score difference vs 0); a deployed model equal to M_full's is "same"
// in latency and memory. A variant dominates when every dimension is better or same and one is
// better; it does not when one is worse; otherwise it may.
HypothesisPart dominance_part(const HypothesisInputs& in) {
  const std::string claim =
      "no other variant is at least as good as M_full on all of decode latency, peak inference memory, trainable "
      "parameters and average score, and better on one";
  HypothesisPart p;
  if (!present(in, {"M_full"}, claim, p)) return p;
  const VariantMeasurements& full = *find(in, "M_full");
  if (in.variants.size() < 2) return not_evaluated(claim, "M_full is the only variant in the experiment");
  auto missing = [](const std::string& n, const VariantMeasurements& m) -> std::string {
    if (m.decode_ms.size() < 2) return "the profile has no batch-1 decode timings of " + n + "'s model";
    if (!std::isfinite(m.peak_memory_bytes)) return "peak inference memory of " + n + "'s model was not measured";
    if (m.trainable < 0) return "trainable parameters of " + n + " are missing";
    return "";
  };
  p.claim = claim;
  std::vector<std::string> dominates, may;
  nlohmann::json per = nlohmann::json::object();
  for (const auto& [name, m] : in.variants) {
    if (name == "M_full") continue;
    for (const auto& [n, x] : {std::make_pair(std::string("M_full"), &full), std::make_pair(name, &m)})
      if (const std::string why = missing(n, *x); !why.empty()) return not_evaluated(claim, why);
    const PairedScores s = pair_by_seed(m.average_score, full.average_score);
    if (s.seeds.size() < 2)
      return not_evaluated(claim, "comparing scores needs at least 2 seeds with every task for both " + name +
                                      " and M_full; there are " + std::to_string(s.seeds.size()));
    const bool same_model = m.model == full.model;
    nlohmann::json d = nlohmann::json::object();
    Side latency = Side::kSame, memory = Side::kSame;
    if (!same_model) {
      const eval::BootstrapInterval ci = eval::bootstrap_median_ratio(m.decode_ms, full.decode_ms, in.bootstrap);
      latency = ci.upper < 1 ? Side::kBetter : ci.lower > 1 ? Side::kWorse : Side::kUncertain;
      d["decode_latency_ratio"] = {{"ratio_of_medians", ci.estimate}, {"lower", ci.lower}, {"upper", ci.upper}};
      memory = direct(m.peak_memory_bytes, full.peak_memory_bytes, true);
      d["peak_memory_bytes"] = {m.peak_memory_bytes, full.peak_memory_bytes};
    }
    const Side params = direct(double(m.trainable), double(full.trainable), true);
    d["trainable"] = {m.trainable, full.trainable};
    const eval::PairedTTest t = eval::paired_t_test(s.variant, s.reference, in.level);
    const Side score = t.difference.lower > 0   ? Side::kBetter
                       : t.difference.upper < 0 ? Side::kWorse
                                                : Side::kUncertain;
    d["score_difference"] = {{"mean", t.mean_difference}, {"lower", t.difference.lower}, {"upper", t.difference.upper},
                             {"seeds", s.seeds}};
    const std::vector<Side> sides = {latency, memory, params, score};
    bool worse = false, uncertain = false, better = false;
    for (const Side x : sides) {
      worse |= x == Side::kWorse;
      uncertain |= x == Side::kUncertain;
      better |= x == Side::kBetter;
    }
    const std::string status = worse ? "does not dominate" : (!uncertain && better) ? "dominates" : "may dominate";
    d["sides"] = {{"decode_latency", side_name(latency)}, {"peak_memory", side_name(memory)},
                  {"trainable", side_name(params)},       {"average_score", side_name(score)}};
    d["status"] = status;
    if (same_model) d["same_deployed_model"] = true;
    if (status == "dominates") dominates.push_back(name);
    if (status == "may dominate") may.push_back(name);
    per[name] = d;
  }
  p.numbers = per;
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (!dominates.empty()) {
    p.verdict = Verdict::kFails;
    p.evidence = "dominated by " + list(dominates);
  } else if (!may.empty()) {
    p.verdict = Verdict::kInconclusive;
    p.evidence = "intervals straddle for " + list(may);
  } else {
    p.verdict = Verdict::kHolds;
    p.evidence = "every other variant is worse than M_full on at least one of the four";
  }
  for (const auto& [name, d] : per.items())
    p.evidence += "; " + name + ": latency " + d["sides"]["decode_latency"].get<std::string>() + ", memory " +
                  d["sides"]["peak_memory"].get<std::string>() + ", trainable " +
                  d["sides"]["trainable"].get<std::string>() + ", score " +
                  d["sides"]["average_score"].get<std::string>();
  return p;
}

HypothesisResult finish(std::string id, std::string statement, std::vector<HypothesisPart> parts) {
  HypothesisResult h;
  h.id = std::move(id);
  h.statement = std::move(statement);
  h.parts = std::move(parts);
  std::vector<Verdict> v;
  for (const auto& p : h.parts) v.push_back(p.verdict);
  h.verdict = combine(v);
  return h;
}

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kHolds: return "holds";
    case Verdict::kFails: return "fails";
    case Verdict::kInconclusive: return "inconclusive";
    case Verdict::kNotEvaluated: return "not evaluated";
  }
  return "?";
}

Verdict verdict_at_most(double lower, double upper, double threshold) {
  MCD_CHECK(lower <= upper, "verdict_at_most: lower ", lower, " > upper ", upper);
  if (upper <= threshold) return Verdict::kHolds;
  if (lower > threshold) return Verdict::kFails;
  return Verdict::kInconclusive;
}

Verdict verdict_above(double lower, double upper, double threshold) {
  MCD_CHECK(lower <= upper, "verdict_above: lower ", lower, " > upper ", upper);
  if (lower > threshold) return Verdict::kHolds;
  if (upper <= threshold) return Verdict::kFails;
  return Verdict::kInconclusive;
}

Verdict combine(const std::vector<Verdict>& parts) {
  if (parts.empty()) return Verdict::kNotEvaluated;
  bool not_evaluated = false, all_hold = true;
  for (const Verdict v : parts) {
    if (v == Verdict::kFails) return Verdict::kFails;
    not_evaluated |= v == Verdict::kNotEvaluated;
    all_hold &= v == Verdict::kHolds;
  }
  return not_evaluated ? Verdict::kNotEvaluated : all_hold ? Verdict::kHolds : Verdict::kInconclusive;
}

PairedScores pair_by_seed(const std::map<int64_t, double>& variant, const std::map<int64_t, double>& reference) {
  PairedScores s;
  for (const auto& [seed, v] : variant)
    if (const auto it = reference.find(seed); it != reference.end()) {
      s.seeds.push_back(seed);
      s.variant.push_back(v);
      s.reference.push_back(it->second);
    }
  return s;
}

std::vector<HypothesisResult> evaluate_hypotheses(const HypothesisInputs& in) {
  std::vector<HypothesisResult> out;
  out.push_back(finish("H1", "latency(M_CSP) ≤ 0.9·latency(M_base) (prefill B=1, L=1024 and batch-1 decode)",
                       {latency_part(in, "M_CSP", "M_base", &VariantMeasurements::prefill_ms, "prefill 1x1024", 0.9),
                        latency_part(in, "M_CSP", "M_base", &VariantMeasurements::decode_ms, "batch-1 decode", 0.9)}));

  std::vector<HypothesisPart> h2;
  {
    const std::string claim = "FLOPs(M_SDM) ≤ 0.75·FLOPs(M_base) (deployed classifier)";
    HypothesisPart p;
    h2.push_back(present(in, {"M_SDM", "M_base"}, claim, p)
                     ? deterministic_part(claim, "the FLOPs of a deployed model", find(in, "M_SDM")->flops,
                                          find(in, "M_base")->flops, 0.75)
                     : p);
  }
  h2.push_back(score_part(in, "M_SDM", "M_base",
                          "average score of M_SDM non-inferior to M_base's (difference's lower bound > −1 point)", -1));
  out.push_back(finish("H2", "FLOPs(M_SDM) ≤ 0.75·FLOPs(M_base) and its average task score is non-inferior to M_base's",
                       std::move(h2)));

  std::vector<HypothesisPart> h3;
  {
    const std::string claim = "trainable parameters of M_SGH ≤ 0.70·those of full fine-tuning (M_base)";
    HypothesisPart p;
    h3.push_back(present(in, {"M_SGH", "M_base"}, claim, p)
                     ? deterministic_part(claim, "a trainable-parameter count", double(find(in, "M_SGH")->trainable),
                                          double(find(in, "M_base")->trainable), 0.70)
                     : p);
  }
  h3.push_back(score_part(in, "M_SGH", "LoRA-all",
                          "average score of M_SGH non-inferior to LoRA-all's (difference's lower bound > −1 point)", -1));
  out.push_back(finish("H3",
                       "trainable parameters of M_SGH ≤ 0.70·(full fine-tuning) and its score is non-inferior to "
                       "LoRA-everywhere's",
                       std::move(h3)));

  out.push_back(finish(
      "H4",
      "no other variant is at least as good as M_full on all of (decode latency, peak inference memory, trainable "
      "parameters, average score) and better on one; and M_full's score is higher than M_challenge's (paired t-test, "
      "p < 0.05) at no greater latency",
      {dominance_part(in),
       score_part(in, "M_full", "M_challenge",
                  "average score of M_full higher than M_challenge's (difference's 95 % interval above 0, i.e. two-sided "
                  "p < 0.05)",
                  0),
       latency_part(in, "M_full", "M_challenge", &VariantMeasurements::decode_ms, "batch-1 decode", 1.0)}));
  return out;
}

nlohmann::json hypotheses_json(const std::vector<HypothesisResult>& results) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : results) {
    nlohmann::json parts = nlohmann::json::array();
    for (const auto& p : h.parts)
      parts.push_back(
          {{"claim", p.claim}, {"verdict", verdict_name(p.verdict)}, {"evidence", p.evidence}, {"numbers", p.numbers}});
    out.push_back({{"id", h.id}, {"statement", h.statement}, {"verdict", verdict_name(h.verdict)}, {"parts", parts}});
  }
  return out;
}

}  // namespace mcd::pipeline
