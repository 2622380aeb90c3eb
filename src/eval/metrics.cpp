// Implementation of eval/metrics.h: counts and correlations on plain vectors, and the GLUE task
// table that maps a task to its metrics and score.
#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <set>
#include <utility>

#include "util/error.h"

namespace mcd::eval {
namespace {

template <typename T>
void check_pairs(const std::vector<T>& predictions, const std::vector<T>& labels,
                 const char* function, const char* first = "predictions",
                 const char* second = "labels") {
  MCD_CHECK(predictions.size() == labels.size(), function, ": ", predictions.size(), " ", first,
            " but ", labels.size(), " ", second, "; they must pair one to one");
  MCD_CHECK(!predictions.empty(), function, ": no examples (empty ", first, " and ", second, ")");
}

void check_finite(const std::vector<double>& values, const char* function, const char* name) {
  for (size_t i = 0; i < values.size(); ++i) {
    MCD_CHECK(std::isfinite(values[i]), function, ": ", name, "[", i, "] is ", values[i],
              " (NaN and infinity are not allowed)");
  }
}

void check_binary(const std::vector<int>& values, const char* function, const char* name) {
  for (size_t i = 0; i < values.size(); ++i) {
    MCD_CHECK(values[i] == 0 || values[i] == 1, function, ": ", name, "[", i, "] is ", values[i],
              "; a binary metric needs labels 0 and 1 (1 is the positive class)");
  }
}

bool is_constant(const std::vector<double>& values) {
  return std::all_of(values.begin(), values.end(), [&](double v) { return v == values[0]; });
}

// Pearson on inputs already checked (same size, finite, n >= 1).
double pearson_unchecked(const std::vector<double>& x, const std::vector<double>& y) {
  if (is_constant(x) || is_constant(y)) return 0;  // 0/0: see the header
  const double n = static_cast<double>(x.size());
  const double mean_x = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double mean_y = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mean_x, dy = y[i] - mean_y;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  const double r = sxy / (std::sqrt(sxx) * std::sqrt(syy));
  return std::clamp(r, -1.0, 1.0);  // rounding can step just past ±1
}

double points(double fraction) { return 100 * fraction; }

const std::vector<std::string> kGlueTasks = {"cola", "sst2", "mrpc", "stsb", "qqp",
                                             "mnli", "qnli", "rte",  "wnli"};

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

TaskScore make_score(const std::string& task, std::vector<MetricValue> metrics) {
  TaskScore result;
  result.task = task;
  double sum = 0;
  for (const auto& metric : metrics) sum += metric.value;
  result.score = sum / static_cast<double>(metrics.size());
  result.metrics = std::move(metrics);
  return result;
}

}  // namespace

// ---- Metrics ----

double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels) {
  check_pairs(predictions, labels, "accuracy");
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) correct += predictions[i] == labels[i];
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

double f1_positive(const std::vector<int>& predictions, const std::vector<int>& labels) {
  check_pairs(predictions, labels, "f1_positive");
  check_binary(predictions, "f1_positive", "predictions");
  check_binary(labels, "f1_positive", "labels");
  int64_t true_positive = 0, false_positive = 0, false_negative = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    true_positive += predictions[i] == 1 && labels[i] == 1;
    false_positive += predictions[i] == 1 && labels[i] == 0;
    false_negative += predictions[i] == 0 && labels[i] == 1;
  }
  const int64_t denominator = 2 * true_positive + false_positive + false_negative;
  if (denominator == 0) return 0;  // no positive anywhere: defined as 0 (see the header)
  return static_cast<double>(2 * true_positive) / static_cast<double>(denominator);
}

double matthews_correlation(const std::vector<int>& predictions, const std::vector<int>& labels) {
  check_pairs(predictions, labels, "matthews_correlation");
  // scikit-learn's form from the confusion matrix C: with t_k = true count of class k,
  // p_k = predicted count, c = correct, s = samples:
  // (c·s - Σ t_k p_k) / √((s² - Σ p_k²)(s² - Σ t_k²)).
  std::map<int, int64_t> true_count, predicted_count;
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    ++true_count[labels[i]];
    ++predicted_count[predictions[i]];
    correct += predictions[i] == labels[i];
  }
  const auto samples = static_cast<int64_t>(labels.size());
  int64_t true_dot_predicted = 0, true_squares = 0, predicted_squares = 0;
  for (const auto& [label, count] : true_count) {
    true_squares += count * count;
    const auto found = predicted_count.find(label);
    if (found != predicted_count.end()) true_dot_predicted += count * found->second;
  }
  for (const auto& [label, count] : predicted_count) predicted_squares += count * count;
  const int64_t covariance = correct * samples - true_dot_predicted;
  const int64_t predicted_variance = samples * samples - predicted_squares;
  const int64_t true_variance = samples * samples - true_squares;
  if (predicted_variance == 0 || true_variance == 0) return 0;  // one class only: as scikit-learn
  const double r = static_cast<double>(covariance) /
                   (std::sqrt(static_cast<double>(predicted_variance)) *
                    std::sqrt(static_cast<double>(true_variance)));
  return std::clamp(r, -1.0, 1.0);
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  check_pairs(x, y, "pearson", "x values", "y values");
  check_finite(x, "pearson", "x");
  check_finite(y, "pearson", "y");
  return pearson_unchecked(x, y);
}

std::vector<double> average_ranks(const std::vector<double>& values) {
  check_finite(values, "average_ranks", "values");
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t i, size_t j) { return values[i] < values[j]; });
  std::vector<double> ranks(values.size());
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin + 1;
    while (end < order.size() && values[order[end]] == values[order[begin]]) ++end;
    // sorted positions begin..end-1 hold ranks begin+1..end; their mean is:
    const double rank = 0.5 * static_cast<double>(begin + 1 + end);
    for (size_t k = begin; k < end; ++k) ranks[order[k]] = rank;
    begin = end;
  }
  return ranks;
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  check_pairs(x, y, "spearman", "x values", "y values");
  check_finite(x, "spearman", "x");
  check_finite(y, "spearman", "y");
  return pearson_unchecked(average_ranks(x), average_ranks(y));
}

// ---- GLUE task scores ----

const std::vector<std::string>& TaskMetric::glue_tasks() { return kGlueTasks; }

TaskMetric::TaskMetric(const std::string& task) : task_(task) {
  MCD_CHECK(std::find(kGlueTasks.begin(), kGlueTasks.end(), task) != kGlueTasks.end(),
            "TaskMetric: unknown task '", task, "'; GLUE tasks are ", joined(kGlueTasks));
}

std::vector<std::string> TaskMetric::metric_names() const {
  if (task_ == "cola") return {"matthews_correlation"};
  if (task_ == "mrpc" || task_ == "qqp") return {"f1", "accuracy"};
  if (task_ == "stsb") return {"pearson", "spearman"};
  if (task_ == "mnli") return {"accuracy_matched", "accuracy_mismatched"};
  return {"accuracy"};  // sst2, qnli, rte, wnli
}

TaskScore TaskMetric::score_classification(const std::vector<int>& predictions,
                                           const std::vector<int>& labels) const {
  MCD_CHECK(!is_regression(), "TaskMetric(", task_,
            ")::score_classification: stsb is a regression task; use score_regression");
  MCD_CHECK(task_ != "mnli", "TaskMetric(mnli)::score_classification: MNLI is scored on "
            "dev_matched and dev_mismatched (METHOD.md §5); use score_mnli");
  if (task_ == "cola") {
    return make_score(task_, {{"matthews_correlation",
                               points(matthews_correlation(predictions, labels))}});
  }
  if (task_ == "mrpc" || task_ == "qqp") {
    return make_score(task_, {{"f1", points(f1_positive(predictions, labels))},
                              {"accuracy", points(accuracy(predictions, labels))}});
  }
  return make_score(task_, {{"accuracy", points(accuracy(predictions, labels))}});
}

TaskScore TaskMetric::score_regression(const std::vector<double>& predictions,
                                       const std::vector<double>& labels) const {
  MCD_CHECK(is_regression(), "TaskMetric(", task_, ")::score_regression: ", task_,
            " is a classification task; use score_classification",
            task_ == "mnli" ? " (mnli: score_mnli)" : "");
  return make_score(task_, {{"pearson", points(pearson(predictions, labels))},
                            {"spearman", points(spearman(predictions, labels))}});
}

TaskScore TaskMetric::score_mnli(const std::vector<int>& matched_predictions,
                                 const std::vector<int>& matched_labels,
                                 const std::vector<int>& mismatched_predictions,
                                 const std::vector<int>& mismatched_labels) const {
  MCD_CHECK(task_ == "mnli", "TaskMetric(", task_, ")::score_mnli: only for mnli");
  return make_score(
      task_, {{"accuracy_matched", points(accuracy(matched_predictions, matched_labels))},
              {"accuracy_mismatched",
               points(accuracy(mismatched_predictions, mismatched_labels))}});
}

TaskAverage average_task_score(const std::vector<TaskScore>& scores) {
  MCD_CHECK(!scores.empty(), "average_task_score: no task scores");
  TaskAverage average;
  std::set<std::string> seen;
  double sum = 0;
  for (const auto& s : scores) {
    MCD_CHECK(seen.insert(s.task).second, "average_task_score: task '", s.task,
              "' appears twice; average one score per task");
    MCD_CHECK(std::isfinite(s.score), "average_task_score: task '", s.task, "' has score ",
              s.score);
    sum += s.score;
    average.tasks.push_back(s.task);
  }
  average.score = sum / static_cast<double>(scores.size());
  average.is_glue_score =
      std::all_of(kGlueTasks.begin(), kGlueTasks.end(), [&](const std::string& t) {
        return seen.count(t) > 0;
      }) && seen.size() == kGlueTasks.size();
  return average;
}

}  // namespace mcd::eval
