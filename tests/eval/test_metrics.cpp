// Tests for eval/metrics: each metric on a case counted by hand (the arithmetic in comments) or
// taken from scikit-learn's / scipy's documentation examples, the edge cases the header
// defines (one class, no positives, ties, constant input), the GLUE task table and the average.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "eval/metrics.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd::eval {
namespace {

using test::expect_error;

// One binary evaluation set used throughout, counted by hand:
//   index       0  1  2  3  4
//   prediction  1  0  1  1  0
//   label       1  0  0  1  1
//   outcome     TP TN FP TP FN   → TP 2, TN 1, FP 1, FN 1
const std::vector<int> kPredictions = {1, 0, 1, 1, 0};
const std::vector<int> kLabels = {1, 0, 0, 1, 1};

// Regression pair: x = 1..5, y = {2, 4, 5, 4, 5}.
const std::vector<double> kX = {1, 2, 3, 4, 5};
const std::vector<double> kY = {2, 4, 5, 4, 5};

// Correlations are a sum, two square roots and a division away from their exact values: 4 ulps
// (EXPECT_DOUBLE_EQ) would be tight, so 1e-15 absolute on values of size ~1.
constexpr double kCorrelationTolerance = 1e-15;
// Task scores are 100 × a fraction that is itself a rounded quotient (2/3, 1/6): ~1e-14 from
// exact; 1e-12 on values up to 100.
constexpr double kPointsTolerance = 1e-12;

TEST(Metrics, AccuracyF1AndMatthewsByHand) {
  // EXPECT_DOUBLE_EQ (4 ulps): each value is one quotient of small integers (MCC's root is 6).
  EXPECT_DOUBLE_EQ(accuracy(kPredictions, kLabels), 0.6);  // 3 of 5 correct
  // F1 = 2TP / (2TP + FP + FN) = 4 / (4 + 1 + 1) = 2/3.
  EXPECT_DOUBLE_EQ(f1_positive(kPredictions, kLabels), 2.0 / 3.0);
  // MCC = (TP·TN - FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 - 1) / √(3·3·2·2) = 1/6.
  EXPECT_DOUBLE_EQ(matthews_correlation(kPredictions, kLabels), 1.0 / 6.0);
}

TEST(Metrics, MatthewsMatchesScikitLearnExamples) {
  // scikit-learn's matthews_corrcoef docstring: y_true [+1, +1, +1, -1], y_pred [+1, -1, +1, +1]
  // → -0.33...; by hand TP 2, FN 1, FP 1, TN 0: (0 - 1)/√(3·3·1·1) = -1/3.
  EXPECT_DOUBLE_EQ(matthews_correlation({1, -1, 1, 1}, {1, 1, 1, -1}), -1.0 / 3.0);
  // Three classes, the multiclass form: true [2,0,2,2,0,1], predicted [0,0,2,2,0,2].
  // correct c = 4, samples s = 6; true counts t = (2, 1, 3), predicted p = (3, 0, 3);
  // (c·s - Σ t·p) / √((s² - Σp²)(s² - Σt²)) = (24 - 15) / √((36 - 18)(36 - 14)) = 9/√396.
  EXPECT_NEAR(matthews_correlation({0, 0, 2, 2, 0, 2}, {2, 0, 2, 2, 0, 1}), 9 / std::sqrt(396.0),
              kCorrelationTolerance);
  // Perfect and perfectly inverted predictions.
  EXPECT_DOUBLE_EQ(matthews_correlation(kLabels, kLabels), 1.0);
  EXPECT_DOUBLE_EQ(matthews_correlation({0, 1, 1, 0, 0}, kLabels), -1.0);
}

TEST(Metrics, OneClassEdgeCases) {
  // Every prediction 1: the predicted-class variance is 0, so MCC is 0 (scikit-learn); accuracy
  // 2/4; F1 = 2·2 / (2·2 + 2 + 0) = 2/3 (TP 2, FP 2, FN 0).
  const std::vector<int> all_one = {1, 1, 1, 1};
  const std::vector<int> mixed = {1, 0, 1, 0};
  EXPECT_EQ(matthews_correlation(all_one, mixed), 0.0);
  EXPECT_EQ(accuracy(all_one, mixed), 0.5);
  EXPECT_DOUBLE_EQ(f1_positive(all_one, mixed), 2.0 / 3.0);
  // All labels and predictions 0: accuracy 1, MCC 0 (both variances 0), and F1 is 0/0 — no
  // positive prediction and no positive label — defined as 0.
  const std::vector<int> zeros = {0, 0, 0};
  EXPECT_EQ(accuracy(zeros, zeros), 1.0);
  EXPECT_EQ(matthews_correlation(zeros, zeros), 0.0);
  EXPECT_EQ(f1_positive(zeros, zeros), 0.0);
  // Every prediction wrong on the positives: TP 0, so F1 = 0 / (FP + FN) = 0.
  EXPECT_EQ(f1_positive({0, 1, 1, 0, 0}, kLabels), 0.0);
  EXPECT_EQ(f1_positive(kLabels, kLabels), 1.0);
}

TEST(Metrics, PearsonAndSpearmanByHand) {
  // Pearson: deviations dx = (-2,-1,0,1,2), dy = y - 4 = (-2,0,1,0,1); Σdx·dy = 4 + 2 = 6,
  // Σdx² = 10, Σdy² = 6 → r = 6/√60 = √0.6.
  EXPECT_NEAR(pearson(kX, kY), std::sqrt(0.6), kCorrelationTolerance);
  // Spearman with ties: y's ranks are 2→1, the two 4s share ranks 2,3 → 2.5, the two 5s share
  // 4,5 → 4.5: (1, 2.5, 4.5, 2.5, 4.5). dy = (-2, -0.5, 1.5, -0.5, 1.5); Σdx·dy = 4 + 0.5 + 0
  // - 0.5 + 3 = 7; Σdy² = 4 + 0.25 + 2.25 + 0.25 + 2.25 = 9 → ρ = 7/√90.
  EXPECT_EQ(average_ranks(kY), (std::vector<double>{1, 2.5, 4.5, 2.5, 4.5}));
  EXPECT_NEAR(spearman(kX, kY), 7 / std::sqrt(90.0), kCorrelationTolerance);
}

TEST(Metrics, CorrelationsMatchScipyExamples) {
  // scipy.stats.pearsonr docstring: x = 1..5, y = [10, 9, 2.5, 6, 4] → -0.7426106572325057.
  // By hand: mean y 6.3, dy = (3.7, 2.7, -3.8, -0.3, -2.3), Σdx·dy = -15, Σdy² = 40.8,
  // r = -15/√408.
  EXPECT_NEAR(pearson(kX, {10, 9, 2.5, 6, 4}), -15 / std::sqrt(408.0), kCorrelationTolerance);
  EXPECT_NEAR(pearson(kX, {10, 9, 2.5, 6, 4}), -0.7426106572325057, kCorrelationTolerance);
  // scipy.stats.spearmanr docstring: [1,2,3,4,5] vs [5,6,7,8,7] → 0.8207826816681233.
  // By hand: ranks of y (1, 2, 3.5, 5, 3.5), Σdx·dy = 8, Σdy² = 9.5, ρ = 8/√95.
  EXPECT_NEAR(spearman(kX, {5, 6, 7, 8, 7}), 0.8207826816681233, kCorrelationTolerance);
}

TEST(Metrics, CorrelationEdgeCases) {
  // Spearman sees only order: a monotone, non-linear y is a perfect 1 (Pearson is not).
  const std::vector<double> exponential = {std::exp(1.0), std::exp(2.0), std::exp(3.0),
                                           std::exp(4.0), std::exp(5.0)};
  EXPECT_DOUBLE_EQ(spearman(kX, exponential), 1.0);
  EXPECT_LT(pearson(kX, exponential), 0.95);
  EXPECT_DOUBLE_EQ(pearson(kX, {10, 8, 6, 4, 2}), -1.0);
  // Constant input: 0/0, defined as 0 — also when the mean of the copies is not exact.
  EXPECT_EQ(pearson(kX, {0.1, 0.1, 0.1, 0.1, 0.1}), 0.0);
  EXPECT_EQ(spearman({3, 3, 3}, {1, 2, 3}), 0.0);
  EXPECT_EQ(average_ranks({7, 7, 7}), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(average_ranks({10, 20, 20, 5}), (std::vector<double>{2, 3.5, 3.5, 1}));
}

TEST(Metrics, InputErrors) {
  expect_error([] { accuracy({1, 0, 1}, {1, 0}); }, "3 predictions but 2 labels");
  expect_error([] { accuracy({}, {}); }, "no examples");
  expect_error([] { f1_positive({1, 2}, {1, 0}); }, "predictions[1] is 2");
  expect_error([] { matthews_correlation({1}, {}); }, "1 predictions but 0 labels");
  expect_error([] { pearson({1, 2}, {1, std::nan("")}); }, "y[1] is nan");
  expect_error([] { spearman({1, 2, 3}, {1, 2}); }, "3 x values but 2 y values");
}

// ---- GLUE task scores ----

TEST(TaskScores, EachTaskOnTheHandCountedSet) {
  // Points = 100 × fraction. MRPC/QQP: (F1 + accuracy)/2 = (66.67 + 60)/2 = 63.33.
  for (const char* task : {"mrpc", "qqp"}) {
    const TaskScore s = TaskMetric(task).score_classification(kPredictions, kLabels);
    ASSERT_EQ(s.metrics.size(), 2u);
    EXPECT_EQ(s.metrics[0].name, "f1");
    EXPECT_NEAR(s.metrics[0].value, 200.0 / 3, kPointsTolerance);
    EXPECT_EQ(s.metrics[1].name, "accuracy");
    EXPECT_NEAR(s.metrics[1].value, 60.0, kPointsTolerance);
    EXPECT_NEAR(s.score, 190.0 / 3, kPointsTolerance);  // (200/3 + 60)/2
  }
  const TaskScore cola = TaskMetric("cola").score_classification(kPredictions, kLabels);
  EXPECT_EQ(cola.metrics[0].name, "matthews_correlation");
  EXPECT_NEAR(cola.score, 100.0 / 6, kPointsTolerance);  // MCC 1/6
  for (const char* task : {"sst2", "qnli", "rte", "wnli"}) {
    const TaskScore s = TaskMetric(task).score_classification(kPredictions, kLabels);
    EXPECT_EQ(s.metrics.size(), 1u);
    EXPECT_NEAR(s.score, 60.0, kPointsTolerance);  // accuracy only
  }
  // STS-B: (100·√0.6 + 100·7/√90)/2.
  const TaskScore stsb = TaskMetric("stsb").score_regression(kX, kY);
  EXPECT_EQ(stsb.metrics[0].name, "pearson");
  EXPECT_EQ(stsb.metrics[1].name, "spearman");
  EXPECT_NEAR(stsb.score, 50 * (std::sqrt(0.6) + 7 / std::sqrt(90.0)), kPointsTolerance);
  // MNLI: matched 3/4 = 75, mismatched 1/2 = 50, one task score of 62.5.
  const TaskScore mnli =
      TaskMetric("mnli").score_mnli({0, 1, 2, 2}, {0, 1, 2, 1}, {1, 1}, {1, 0});
  EXPECT_EQ(mnli.metrics[0].name, "accuracy_matched");
  EXPECT_EQ(mnli.metrics[0].value, 75.0);
  EXPECT_EQ(mnli.metrics[1].value, 50.0);
  EXPECT_EQ(mnli.score, 62.5);
}

TEST(TaskScores, MetricNamesAndMisuse) {
  EXPECT_EQ(TaskMetric("qqp").metric_names(), (std::vector<std::string>{"f1", "accuracy"}));
  EXPECT_TRUE(TaskMetric("stsb").is_regression());
  EXPECT_FALSE(TaskMetric("rte").is_regression());
  EXPECT_EQ(TaskMetric::glue_tasks().size(), 9u);
  expect_error([] { TaskMetric("sst-2"); }, "cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli");
  expect_error([] { TaskMetric("mnli").score_classification({0}, {0}); }, "use score_mnli");
  expect_error([] { TaskMetric("stsb").score_classification({0}, {0}); }, "score_regression");
  expect_error([] { TaskMetric("cola").score_regression({0.5}, {0.5}); }, "classification task");
  expect_error([] { TaskMetric("rte").score_mnli({0}, {0}, {0}, {0}); }, "only for mnli");
  expect_error([] { TaskMetric("mrpc").score_classification({2, 0}, {1, 0}); }, "labels 0 and 1");
}

TEST(TaskScores, AverageOverTasks) {
  // All nine GLUE tasks with scores 10, 20, ..., 90: mean 50, and it is the GLUE score.
  std::vector<TaskScore> nine;
  double value = 10;
  for (const auto& task : TaskMetric::glue_tasks()) {
    TaskScore s;
    s.task = task;
    s.score = value;
    value += 10;
    nine.push_back(s);
  }
  const TaskAverage all = average_task_score(nine);
  EXPECT_EQ(all.score, 50.0);
  EXPECT_TRUE(all.is_glue_score);
  EXPECT_EQ(all.tasks.size(), 9u);

  // Three tasks from the hand-counted set: (63.33 + 16.67 + 60)/3 = 140/3 — an average over
  // the tasks that were run, not a GLUE score.
  const std::vector<TaskScore> three = {
      TaskMetric("mrpc").score_classification(kPredictions, kLabels),
      TaskMetric("cola").score_classification(kPredictions, kLabels),
      TaskMetric("rte").score_classification(kPredictions, kLabels)};
  const TaskAverage some = average_task_score(three);
  EXPECT_NEAR(some.score, 140.0 / 3, kPointsTolerance);
  EXPECT_FALSE(some.is_glue_score);
  EXPECT_EQ(some.tasks, (std::vector<std::string>{"mrpc", "cola", "rte"}));

  // A tenth, non-GLUE task: still an average, no longer the GLUE score.
  TaskScore custom;
  custom.task = "custom";
  custom.score = 50;
  nine.push_back(custom);
  EXPECT_FALSE(average_task_score(nine).is_glue_score);

  expect_error([] { average_task_score({}); }, "no task scores");
  expect_error([&] { average_task_score({three[0], three[0]}); }, "'mrpc' appears twice");
}

// Values computed once by scikit-learn 1.9.1 and scipy 1.18.1 on seeded random predictions
// (scripts/gen_metric_reference.py; committed as tests/eval/data/metric_reference.json): 12
// classification cases (2, 3 and 5 classes, 5 to 250 examples) and 8 regression cases with ties.
// Both sides compute in float64 from the same integers or decimals; sums of at most 250 terms
// leave differences ~1e-15, so 1e-12 absolute is a safe bound that any formula error exceeds.
TEST(Metrics, AgreeWithScikitLearnAndScipyOnRandomCases) {
  std::ifstream in(test::source_dir() + "/tests/eval/data/metric_reference.json");
  ASSERT_TRUE(in.good()) << "tests/eval/data/metric_reference.json is part of the repository";
  const auto j = nlohmann::json::parse(in);
  int binary = 0;
  for (const auto& c : j.at("classification")) {
    const auto labels = c.at("labels").get<std::vector<int>>(), preds = c.at("predictions").get<std::vector<int>>();
    EXPECT_NEAR(accuracy(preds, labels), c.at("accuracy").get<double>(), 1e-12);
    EXPECT_NEAR(matthews_correlation(preds, labels), c.at("matthews_correlation").get<double>(), 1e-12);
    if (c.contains("f1")) {
      EXPECT_NEAR(f1_positive(preds, labels), c.at("f1").get<double>(), 1e-12);
      ++binary;
    }
  }
  EXPECT_GT(binary, 0);
  for (const auto& r : j.at("regression")) {
    const auto x = r.at("x").get<std::vector<double>>(), y = r.at("y").get<std::vector<double>>();
    EXPECT_NEAR(pearson(x, y), r.at("pearson").get<double>(), 1e-12);
    EXPECT_NEAR(spearman(x, y), r.at("spearman").get<double>(), 1e-12);
  }
  EXPECT_EQ(j.at("classification").size(), 12u);
  EXPECT_EQ(j.at("regression").size(), 8u);
}

}  // namespace
}  // namespace mcd::eval
