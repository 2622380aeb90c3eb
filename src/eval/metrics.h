// GLUE's classification and regression metrics and the task score built from them (METHOD.md
// §5). Torch-free, plain C++17: the fine-tuning loop hands over predicted and true labels (or
// scores); pipeline/ averages the task scores over seeds with eval/statistics.h. Definitions and
// edge cases follow scikit-learn and scipy (docs/eval.md). Mismatched sizes, empty inputs and
// non-finite scores throw mcd::Error naming the function and the sizes.
#pragma once

#include <string>
#include <vector>

namespace mcd::eval {

// ---- Metrics, as fractions (accuracy in [0, 1], correlations in [-1, 1]) ----

double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels);

// F1 of the positive class (label 1) of a binary task: 2·TP / (2·TP + FP + FN). Every label
// and prediction must be 0 or 1. With no positive prediction and no positive label the ratio is
// 0/0; it is defined as 0 (scikit-learn's zero_division default).
double f1_positive(const std::vector<int>& predictions, const std::vector<int>& labels);

// Matthews correlation for any number of classes (scikit-learn's multiclass form; the usual
// (TP·TN - FP·FN)/√(...) for two). 0 when a denominator factor is 0 — all labels, or all
// predictions, one class — as scikit-learn.
double matthews_correlation(const std::vector<int>& predictions, const std::vector<int>& labels);

// Pearson correlation. 0 when either input is constant (the correlation is 0/0 there; a
// collapsed regressor carries no information, the same convention as Matthews above).
double pearson(const std::vector<double>& x, const std::vector<double>& y);
// Spearman correlation: Pearson of the average ranks (ties share the mean of their ranks, as
// scipy.stats.spearmanr). 0 when either input is constant.
double spearman(const std::vector<double>& x, const std::vector<double>& y);
// 1-based ranks; tied values get the mean of the ranks they span.
std::vector<double> average_ranks(const std::vector<double>& values);

// ---- GLUE task scores (points: 100 × the fractions above, as GLUE reports them) ----

struct MetricValue {
  std::string name;  // "accuracy", "f1", "matthews_correlation", "pearson", "spearman",
                     // "accuracy_matched", "accuracy_mismatched"
  double value = 0;  // points
};

struct TaskScore {
  std::string task;                  // canonical name: "cola", "sst2", ...
  std::vector<MetricValue> metrics;  // in the order of TaskMetric::metric_names()
  double score = 0;                  // the task score: mean of `metrics` (METHOD §5)
};

// Scores one GLUE task. Metrics and task score (METHOD §5; GLUE's own convention):
//   cola                     Matthews correlation
//   sst2, qnli, rte, wnli    accuracy
//   mrpc, qqp                F1 (positive class 1) and accuracy; score = their mean
//   stsb                     Pearson and Spearman; score = their mean
//   mnli                     accuracy on dev_matched and on dev_mismatched; score = their mean,
//                            so MNLI counts once in the average, as on the GLUE leaderboard
class TaskMetric {
 public:
  // task: one of the nine names above, spelled as the GLUE data readers spell them (lower case,
  // no hyphen). Throws listing the names for any other.
  explicit TaskMetric(const std::string& task);

  const std::string& task() const { return task_; }
  bool is_regression() const { return task_ == "stsb"; }
  std::vector<std::string> metric_names() const;

  // Classification tasks except mnli: predicted and true class ids of one evaluation set.
  TaskScore score_classification(const std::vector<int>& predictions,
                                 const std::vector<int>& labels) const;
  // stsb: predicted and true similarity scores.
  TaskScore score_regression(const std::vector<double>& predictions,
                             const std::vector<double>& labels) const;
  // mnli: its two evaluation sets.
  TaskScore score_mnli(const std::vector<int>& matched_predictions,
                       const std::vector<int>& matched_labels,
                       const std::vector<int>& mismatched_predictions,
                       const std::vector<int>& mismatched_labels) const;

  static const std::vector<std::string>& glue_tasks();  // the nine, in GLUE's order

 private:
  std::string task_;
};

// The mean of the task scores of one run, over the tasks that were run (METHOD §5). It is the
// GLUE score only when the tasks are all nine GLUE tasks. A task given twice is an error.
struct TaskAverage {
  double score = 0;                // points
  std::vector<std::string> tasks;  // as given
  bool is_glue_score = false;      // all nine GLUE tasks present
};
TaskAverage average_task_score(const std::vector<TaskScore>& scores);

}  // namespace mcd::eval
