// Scores of one evaluation: GLUE tasks through eval::TaskMetric (METHOD.md §5); a custom task by
// accuracy (with F1 of class 1 and Matthews correlation beside it for two classes), or for
// regression by the mean of Pearson and Spearman.
#pragma once

#include <string>
#include <vector>

#include "eval/metrics.h"

namespace mcd::finetune {

struct SplitPredictions {
  std::string split;
  std::vector<int> predicted, labels;               // classification
  std::vector<double> predicted_scores, label_scores;  // regression
};

eval::TaskScore score_predictions(const std::string& task, bool regression, int num_labels,
                                  const std::vector<SplitPredictions>& splits);

}  // namespace mcd::finetune
