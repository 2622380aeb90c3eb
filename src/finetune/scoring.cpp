// Evaluation scores (see scoring.h).
#include "finetune/scoring.h"

#include "util/error.h"

namespace mcd::finetune {

eval::TaskScore score_predictions(const std::string& task, bool regression, int num_labels,
                                  const std::vector<SplitPredictions>& splits) {
  MCD_CHECK(!splits.empty(), "scoring needs at least one evaluation split");
  if (task != "custom") {
    const eval::TaskMetric metric(task);
    if (task == "mnli") {
      MCD_CHECK(splits.size() == 2, "mnli is scored on dev_matched and dev_mismatched");
      return metric.score_mnli(splits[0].predicted, splits[0].labels, splits[1].predicted, splits[1].labels);
    }
    if (metric.is_regression()) return metric.score_regression(splits[0].predicted_scores, splits[0].label_scores);
    return metric.score_classification(splits[0].predicted, splits[0].labels);
  }
  eval::TaskScore s;
  s.task = "custom";
  const auto& p = splits[0];
  if (regression) {
    s.metrics = {{"pearson", 100 * eval::pearson(p.predicted_scores, p.label_scores)},
                 {"spearman", 100 * eval::spearman(p.predicted_scores, p.label_scores)}};
    s.score = (s.metrics[0].value + s.metrics[1].value) / 2;
    return s;
  }
  s.metrics = {{"accuracy", 100 * eval::accuracy(p.predicted, p.labels)}};
  if (num_labels == 2) s.metrics.push_back({"f1", 100 * eval::f1_positive(p.predicted, p.labels)});
  s.metrics.push_back({"matthews_correlation", 100 * eval::matthews_correlation(p.predicted, p.labels)});
  s.score = s.metrics[0].value;
  return s;
}

}  // namespace mcd::finetune
