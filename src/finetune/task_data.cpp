// Task loading and tokenization for fine-tuning (see task_data.h).
#include "finetune/task_data.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "util/error.h"

namespace mcd::finetune {

TaskData load_task(const TaskSource& s) {
  TaskData d;
  d.task = s.task;
  if (s.task == "custom") {
    MCD_CHECK(!s.train_file.empty() && !s.dev_file.empty(), "--task custom needs --train FILE and --dev FILE");
    data::glue::CustomOptions o;
    o.regression = s.regression;
    d.train = data::glue::read_custom(s.train_file, "train", o);
    o.labels_from = &d.train;
    d.evals.push_back(data::glue::read_custom(s.dev_file, "dev", o));
  } else {
    const auto& info = data::glue::task_info(s.task);
    MCD_CHECK(!s.data_dir.empty(), "task ", s.task, " needs --data-dir (the GLUE root or the task's folder)");
    d.train = data::glue::read_glue(s.task, "train", s.data_dir);
    for (const auto& split : info.splits)
      if (split != "train") d.evals.push_back(data::glue::read_glue(s.task, split, s.data_dir));
  }
  MCD_CHECK(!d.train.examples.empty(), d.train.path, ": no training examples");
  for (const auto& e : d.evals) MCD_CHECK(!e.examples.empty(), e.path, ": no evaluation examples");
  d.regression = d.train.regression;
  d.num_labels = d.train.num_labels;
  d.label_names = d.train.label_names;
  return d;
}

void subsample(data::glue::Dataset& dataset, int64_t max_examples, uint64_t seed) {
  const int64_t n = int64_t(dataset.examples.size());
  if (max_examples <= 0 || n <= max_examples) return;
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % uint64_t(i + 1)]);
  order.resize(max_examples);
  std::sort(order.begin(), order.end());
  std::vector<data::glue::Example> kept;
  kept.reserve(max_examples);
  for (int64_t i : order) kept.push_back(std::move(dataset.examples[i]));
  dataset.examples = std::move(kept);
}

std::vector<int32_t> join_pair(std::vector<int32_t> a, const std::vector<int32_t>* b_in, const EncodeOptions& o,
                               bool* truncated) {
  std::vector<int32_t> b = b_in ? *b_in : std::vector<int32_t>();
  const int64_t specials = b_in ? 2 : 1;
  MCD_CHECK(o.max_length > specials + (b_in ? 1 : 0), "max_length ", o.max_length, " leaves no room for text");
  bool cut = false;
  while (int64_t(a.size() + b.size()) + specials > o.max_length) {
    // Longest first; a keeps at least one token, and so does b of a pair.
    if (b_in && b.size() > a.size()) b.pop_back();
    else a.pop_back();
    cut = true;
  }
  if (truncated) *truncated = cut;
  std::vector<int32_t> ids = std::move(a);
  if (b_in) {
    ids.push_back(o.separator_id);
    ids.insert(ids.end(), b.begin(), b.end());
  }
  ids.push_back(o.end_id);
  return ids;
}

EncodedSplit encode(const data::glue::Dataset& dataset, const data::BpeTokenizer& tok, const EncodeOptions& o) {
  EncodedSplit s;
  s.name = dataset.split;
  s.ids.reserve(dataset.examples.size());
  for (const auto& e : dataset.examples) {
    std::vector<int32_t> a = tok.encode(e.text_a);
    std::vector<int32_t> b;
    if (e.text_b) b = tok.encode(*e.text_b);
    bool cut = false;
    s.ids.push_back(join_pair(std::move(a), e.text_b ? &b : nullptr, o, &cut));
    s.truncated += cut ? 1 : 0;
    s.labels.push_back(e.label);
  }
  return s;
}

int64_t EncodedSplit::max_token_id() const {
  int64_t m = -1;
  for (const auto& v : ids)
    for (int32_t t : v) m = std::max<int64_t>(m, t);
  return m;
}

}  // namespace mcd::finetune
