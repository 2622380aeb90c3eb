// Readers for the GLUE benchmark's train/dev files and for a user's own classification or
// regression data (`--task custom`). Torch-free; the fine-tuning objective tokenizes what these
// return. Layouts and error rules: docs/glue.md, section "Readers".
//
// Every reader is strict: a row with the wrong number of columns, an empty text, or a label that
// does not parse or is not one of the task's labels is an mcd::Error naming the file, the 1-based
// line and what was wrong. Nothing is skipped. A leading UTF-8 byte-order mark and CRLF line
// endings are accepted in every file; a final line without a newline is read like any other.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcd::data::glue {

struct Example {
  std::string text_a;
  std::optional<std::string> text_b;  // the second sentence of a pair task
  double label = 0;                   // a class id (0..num_labels-1) or, for regression, a score
  int64_t line = 0;                   // 1-based line of the row in its file
};

struct Dataset {
  std::string task;  // "sst2", ..., "wnli", or "custom"
  std::string
      split;         // "train", "dev", "dev_matched", "dev_mismatched" (custom: as the caller says)
  std::string path;  // the file read
  std::vector<Example> examples;
  bool regression = false;
  int num_labels = 0;                    // classes; 1 for regression (one output)
  std::vector<std::string> label_names;  // label_names[id]; empty for regression
};

// ---- GLUE ----

// What the readers know of one GLUE task.
struct TaskInfo {
  std::string name;                      // "sst2"
  std::string folder;                    // "SST-2"
  bool pair = false;                     // two texts per example
  bool regression = false;               // STS-B
  std::vector<std::string> label_names;  // by id
  std::vector<std::string>
      splits;  // "train", "dev" (MNLI: "train", "dev_matched", "dev_mismatched")
};

// cola sst2 mrpc stsb qqp mnli qnli rte wnli, in that order.
const std::vector<std::string>& task_names();
// Throws mcd::Error listing the task names for an unknown one (and pointing "custom" to
// read_custom).
const TaskInfo& task_info(const std::string& task);
// "<split>.tsv"; throws mcd::Error listing the task's splits for one it lacks (MNLI's "dev" too).
std::string split_file_name(const std::string& task, const std::string& split);

// The folder holding the task's files: `<dir>/<Folder>` when that is a directory (dir is the GLUE
// root), else `dir` itself when it holds train.tsv or the split's file (dir is the task's folder).
// Otherwise throws mcd::Error naming both paths tried.
std::string resolve_task_dir(const std::string& dir, const std::string& task,
                             const std::string& split);

// Reads `split` of `task` from `dir` (the GLUE root or the task's folder). A missing split file
// is an error naming its path.
Dataset read_glue(const std::string& task, const std::string& split, const std::string& dir);
// Reads one file in the task's original layout (`path` names it in errors and in Dataset::path).
Dataset read_glue_file(const std::string& task, const std::string& split, const std::string& path);
// The same on a file's contents already in memory; `source` stands in for the path.
Dataset parse_glue(const std::string& task, const std::string& split, std::string_view content,
                   const std::string& source);

// ---- A user's own data (task "custom") ----

struct CustomOptions {
  // Labels are real-valued scores (the caller declares it; never guessed from the values).
  bool regression = false;
  // The train split read earlier, when reading dev: dev's labels then take train's ids, so a
  // string label train lacks, or an integer >= train's num_labels, is an error. Null for train.
  const Dataset* labels_from = nullptr;
};

// Reads a custom train or dev file, TSV or JSON lines by its extension (.tsv / .jsonl):
//   TSV    a header naming the columns `text`, `label` and optionally `text_b` (other columns
//          are allowed and ignored); tab-separated, no quoting.
//   JSONL  one object a line: {"text": ..., "text_b": ... (optional), "label": ...}; other keys
//          are ignored. Either every line has text_b or none has.
// Labels (classification): all integers >= 0 (num_labels = max + 1, names "0".."N-1") or all
// strings (ids in sorted byte order, names kept in label_names); a mix, or a non-integer number,
// is an error. Regression: every label a real number; num_labels = 1.
Dataset read_custom(const std::string& path, const std::string& split,
                    const CustomOptions& options = {});
// The same on contents already in memory; `jsonl` picks the format, `source` names it in errors.
Dataset parse_custom(std::string_view content, bool jsonl, const std::string& split,
                     const std::string& source, const CustomOptions& options = {});

// ---- Summaries ----

// {"task", "split", "examples", "labels": {name: count, every label listed}} for classification;
// {"task", "split", "examples", "min", "mean", "max"} (of the scores) for regression.
nlohmann::json label_summary(const Dataset& dataset);

// The most frequent class id (ties: the smallest id) and the fraction of examples that have it —
// the accuracy of always predicting it. Throw mcd::Error for regression or an empty dataset.
int majority_label(const Dataset& dataset);
double majority_fraction(const Dataset& dataset);

}  // namespace mcd::data::glue
