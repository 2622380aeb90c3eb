// The GLUE readers (glue.h): each task's original TSV layout, the folder resolution, the label
// summary and the majority-class baseline. The layouts were checked on the real files in
// ../shared/data/glue (CoLA, SST-2, MRPC, RTE, STS-B) and on the GLUE release's descriptions for
// the others; docs/glue.md lists them.
#include "data/glue/glue.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "data/glue/table_text.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::data::glue {
namespace {

using detail::join_names;

enum class LabelRule {
  kClassIndex,  // the field is the class id as a decimal ("0", "1")
  kClassName,   // the field is the class's name ("entailment")
  kScore0To5,   // STS-B: a real in [0, 5]
};

// Where a task's texts and label are. Tasks with a header name their columns; CoLA has none
// and fixed positions.
struct Layout {
  TaskInfo info;
  LabelRule rule = LabelRule::kClassIndex;
  bool header = true;
  std::string text_a, text_b, label;  // header names (text_b empty for a single-text task)
  int columns = 0;                    // headerless only: the column count and positions
  int text_a_index = -1, label_index = -1;
};

// A task whose files start with a header: its columns are found by these names.
Layout with_header(TaskInfo info, LabelRule rule, std::string text_a, std::string text_b,
                   std::string label) {
  Layout layout;
  layout.info = std::move(info);
  layout.rule = rule;
  layout.text_a = std::move(text_a);
  layout.text_b = std::move(text_b);
  layout.label = std::move(label);
  return layout;
}

std::vector<Layout> make_layouts() {
  const std::vector<std::string> train_dev = {"train", "dev"};
  const std::vector<std::string> nli3 = {"entailment", "neutral", "contradiction"};
  const std::vector<std::string> nli2 = {"entailment", "not_entailment"};
  std::vector<Layout> all;
  // CoLA: source, label, original annotation (often empty), sentence; no header.
  Layout cola;
  cola.info = {"cola", "CoLA", false, false, {"unacceptable", "acceptable"}, train_dev};
  cola.header = false;
  cola.columns = 4;
  cola.label_index = 1;
  cola.text_a_index = 3;
  all.push_back(cola);
  all.push_back(with_header({"sst2", "SST-2", false, false, {"negative", "positive"}, train_dev},
                            LabelRule::kClassIndex, "sentence", "", "label"));
  all.push_back(
      with_header({"mrpc", "MRPC", true, false, {"not_equivalent", "equivalent"}, train_dev},
                  LabelRule::kClassIndex, "#1 String", "#2 String", "Quality"));
  all.push_back(with_header({"stsb", "STS-B", true, true, {}, train_dev}, LabelRule::kScore0To5,
                            "sentence1", "sentence2", "score"));
  all.push_back(with_header({"qqp", "QQP", true, false, {"not_duplicate", "duplicate"}, train_dev},
                            LabelRule::kClassIndex, "question1", "question2", "is_duplicate"));
  // MNLI: train has label1 + gold_label, the dev files label1..label5 + gold_label; the gold
  // label (the last column) is the one to learn and score.
  all.push_back(
      with_header({"mnli", "MNLI", true, false, nli3, {"train", "dev_matched", "dev_mismatched"}},
                  LabelRule::kClassName, "sentence1", "sentence2", "gold_label"));
  all.push_back(with_header({"qnli", "QNLI", true, false, nli2, train_dev}, LabelRule::kClassName,
                            "question", "sentence", "label"));
  all.push_back(with_header({"rte", "RTE", true, false, nli2, train_dev}, LabelRule::kClassName,
                            "sentence1", "sentence2", "label"));
  all.push_back(
      with_header({"wnli", "WNLI", true, false, {"not_entailment", "entailment"}, train_dev},
                  LabelRule::kClassIndex, "sentence1", "sentence2", "label"));
  return all;
}

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> all = make_layouts();
  return all;
}

const Layout& layout_of(const std::string& task) {
  for (const auto& layout : layouts())
    if (layout.info.name == task) return layout;
  MCD_CHECK(task != "custom",
            "task 'custom' is a user's own data: read it with read_custom, not the GLUE readers");
  fail(cat("unknown GLUE task '", task, "' (expected one of: ", join_names(task_names()),
           ", or custom)"));
}

// "line N: <what>" prefixed with the file, the house form of a row error.
[[noreturn]] void row_error(const std::string& source, int64_t line, const std::string& what) {
  fail(cat(source, ":", line, ": ", what));
}

// The index of header column `name`; an error naming the file when it is absent or repeated.
int column_of(const std::vector<std::string_view>& header, const std::string& name,
              const std::string& source, const std::string& task) {
  int found = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] != name) continue;
    MCD_CHECK(found < 0, source, ":1: header names column '", name, "' twice");
    found = int(i);
  }
  MCD_CHECK(found >= 0, source, ":1: header lacks column '", name, "' of the GLUE ", task,
            " layout (found: ", join_names(header), ")");
  return found;
}

double parse_label(const Layout& layout, std::string_view field, const std::string& source,
                   int64_t line) {
  const auto& names = layout.info.label_names;
  switch (layout.rule) {
    case LabelRule::kClassIndex: {
      const auto id = detail::parse_integer(field);
      if (!id || *id < 0 || *id >= int64_t(names.size()))
        row_error(source, line,
                  cat("label '", field, "' is not a class id of ", layout.info.name,
                      " (expected 0..", names.size() - 1, ")"));
      return double(*id);
    }
    case LabelRule::kClassName: {
      const auto it = std::find(names.begin(), names.end(), field);
      if (it == names.end())
        row_error(source, line,
                  cat("unknown label '", field, "' (expected one of: ", join_names(names), ")"));
      return double(it - names.begin());
    }
    case LabelRule::kScore0To5: {
      const auto score = detail::parse_real(field);
      if (!score || *score < 0 || *score > 5)
        row_error(source, line, cat("score '", field, "' is not a number in [0, 5]"));
      return *score;
    }
  }
  return 0;
}

std::string checked_text(std::string_view field, const std::string& column,
                         const std::string& source, int64_t line) {
  if (detail::is_blank(field)) row_error(source, line, cat("empty text in column ", column));
  return std::string(field);
}

}  // namespace

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& layout : layouts()) out.push_back(layout.info.name);
    return out;
  }();
  return names;
}

const TaskInfo& task_info(const std::string& task) { return layout_of(task).info; }

std::string split_file_name(const std::string& task, const std::string& split) {
  const TaskInfo& info = task_info(task);
  const auto& splits = info.splits;
  if (std::find(splits.begin(), splits.end(), split) != splits.end()) return split + ".tsv";
  MCD_CHECK(!(task == "mnli" && split == "dev"),
            "MNLI has two dev splits: dev_matched and dev_mismatched (name one)");
  MCD_CHECK(split != "test", "GLUE's test labels are not public: ", task, " has the splits ",
            join_names(splits));
  fail(cat("task ", task, " has no split '", split, "' (expected one of: ", join_names(splits),
           ")"));
}

std::string resolve_task_dir(const std::string& dir, const std::string& task,
                             const std::string& split) {
  const TaskInfo& info = task_info(task);
  const std::string file = split_file_name(task, split);
  const std::string task_folder = fs::join(dir, info.folder);
  if (fs::is_directory(task_folder)) return task_folder;
  if (fs::is_regular_file(fs::join(dir, "train.tsv")) || fs::is_regular_file(fs::join(dir, file)))
    return dir;
  fail(cat("no GLUE ", task, " data under '", dir, "': neither the task folder '", task_folder,
           "' (dir as the GLUE root) nor '", fs::join(dir, file),
           "' (dir as the task's own folder) exists"));
}

Dataset read_glue(const std::string& task, const std::string& split, const std::string& dir) {
  const std::string folder = resolve_task_dir(dir, task, split);
  return read_glue_file(task, split, fs::join(folder, split_file_name(task, split)));
}

Dataset read_glue_file(const std::string& task, const std::string& split, const std::string& path) {
  split_file_name(task, split);  // an unknown task or split fails before the file is looked for
  const std::string content =
      detail::read_whole_file(path, cat("GLUE ", task, " ", split, " file"));
  return parse_glue(task, split, content, path);
}

Dataset parse_glue(const std::string& task, const std::string& split, std::string_view content,
                   const std::string& source) {
  const Layout& layout = layout_of(task);
  split_file_name(task, split);
  Dataset data;
  data.task = task;
  data.split = split;
  data.path = source;
  data.regression = layout.info.regression;
  data.label_names = layout.info.label_names;
  data.num_labels = data.regression ? 1 : int(data.label_names.size());

  const std::vector<detail::Line> lines = detail::split_lines(content);
  size_t columns = size_t(layout.columns);
  int a = layout.text_a_index, b = -1, label = layout.label_index;
  size_t first_row = 0;
  if (layout.header) {
    MCD_CHECK(!lines.empty(), source, ": empty file (the GLUE ", task,
              " layout starts with a header line)");
    const auto header = detail::split_tabs(lines[0].text);
    columns = header.size();
    a = column_of(header, layout.text_a, source, task);
    if (!layout.text_b.empty()) b = column_of(header, layout.text_b, source, task);
    label = column_of(header, layout.label, source, task);
    first_row = 1;
  }
  const std::string a_name = layout.header ? layout.text_a : "4 (sentence)";
  data.examples.reserve(lines.size() - first_row);
  for (size_t i = first_row; i < lines.size(); ++i) {
    const detail::Line& line = lines[i];
    const auto fields = detail::split_tabs(line.text);
    if (fields.size() != columns)
      row_error(source, line.number,
                line.text.empty()
                    ? cat("empty line (expected ", columns, " tab-separated columns)")
                    : cat("expected ", columns, " tab-separated columns, found ", fields.size()));
    Example example;
    example.line = line.number;
    example.text_a = checked_text(fields[a], a_name, source, line.number);
    if (b >= 0) example.text_b = checked_text(fields[b], layout.text_b, source, line.number);
    example.label = parse_label(layout, fields[label], source, line.number);
    data.examples.push_back(std::move(example));
  }
  MCD_CHECK(!data.examples.empty(), source, ": no examples (GLUE ", task, " ", split, ")");
  return data;
}

nlohmann::json label_summary(const Dataset& dataset) {
  nlohmann::json out = {
      {"task", dataset.task}, {"split", dataset.split}, {"examples", dataset.examples.size()}};
  if (dataset.regression) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
    for (const auto& e : dataset.examples) {
      lo = std::min(lo, e.label);
      hi = std::max(hi, e.label);
      sum += e.label;
    }
    const bool any = !dataset.examples.empty();
    out["min"] = any ? nlohmann::json(lo) : nlohmann::json(nullptr);
    out["mean"] =
        any ? nlohmann::json(sum / double(dataset.examples.size())) : nlohmann::json(nullptr);
    out["max"] = any ? nlohmann::json(hi) : nlohmann::json(nullptr);
    return out;
  }
  std::vector<int64_t> counts(dataset.label_names.size(), 0);
  for (const auto& e : dataset.examples) {
    const auto id = size_t(e.label);
    MCD_CHECK(e.label >= 0 && id < counts.size(), dataset.path, ":", e.line, ": label id ", e.label,
              " outside the dataset's ", counts.size(), " labels");
    ++counts[id];
  }
  nlohmann::json labels = nlohmann::json::object();
  for (size_t id = 0; id < counts.size(); ++id) labels[dataset.label_names[id]] = counts[id];
  out["labels"] = labels;
  return out;
}

int majority_label(const Dataset& dataset) {
  MCD_CHECK(!dataset.regression, "majority class of ", dataset.task, " ", dataset.split,
            ": a regression task has no classes");
  MCD_CHECK(!dataset.examples.empty(), "majority class of ", dataset.task, " ", dataset.split,
            ": no examples");
  std::vector<int64_t> counts(size_t(std::max(dataset.num_labels, 1)), 0);
  for (const auto& e : dataset.examples) {
    MCD_CHECK(e.label >= 0 && e.label < double(counts.size()), dataset.path, ":", e.line,
              ": label id ", e.label, " outside the dataset's ", counts.size(), " labels");
    ++counts[size_t(e.label)];
  }
  // max_element returns the first maximum, so a tie goes to the smallest id.
  return int(std::max_element(counts.begin(), counts.end()) - counts.begin());
}

double majority_fraction(const Dataset& dataset) {
  const int majority = majority_label(dataset);
  const auto hits = std::count_if(dataset.examples.begin(), dataset.examples.end(),
                                  [&](const Example& e) { return int(e.label) == majority; });
  return double(hits) / double(dataset.examples.size());
}

}  // namespace mcd::data::glue
