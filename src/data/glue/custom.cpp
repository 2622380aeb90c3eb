// A user's own classification / regression data (glue.h, read_custom): TSV with a header or JSON
// lines. Rows are read first with their labels as written, then the labels are resolved for the
// whole file at once, because whether they are class ids or names is a property of the file
// (and, for dev, of the train split read before it).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "data/glue/glue.h"
#include "data/glue/table_text.h"
#include "util/error.h"

namespace mcd::data::glue {
namespace {

using detail::join_names;
using nlohmann::json;

// Far above any real classifier head; stops a stray "123456789" from allocating a giant one.
constexpr int64_t kMaxClasses = int64_t(1) << 20;

// A label as written, before the file decides what its labels are.
struct RawLabel {
  enum Kind { kInteger, kReal, kName } kind = kName;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // as written (for names and messages)
};

struct RawRow {
  std::string text_a;
  std::optional<std::string> text_b;
  RawLabel label;
  int64_t line = 0;
};

[[noreturn]] void row_error(const std::string& source, int64_t line, const std::string& what) {
  fail(cat(source, ":", line, ": ", what));
}

// A real-valued label: 2.0 names class 2 as well as 2 does; a fraction can only be a score.
void set_number(double real, RawLabel& label) {
  const bool whole = std::isfinite(real) && std::floor(real) == real && std::fabs(real) < 1e15;
  label.kind = whole ? RawLabel::kInteger : RawLabel::kReal;
  label.integer = whole ? int64_t(real) : 0;
  label.real = real;
}

// A label given as text (a TSV field or a JSON string) is an integer, a real or a name by its look.
RawLabel label_from_text(std::string_view text, const std::string& source, int64_t line) {
  if (detail::is_blank(text)) row_error(source, line, "empty label");
  RawLabel label;
  label.text = std::string(text);
  if (const auto integer = detail::parse_integer(text)) {
    label.kind = RawLabel::kInteger;
    label.integer = *integer;
    label.real = double(*integer);
  } else if (const auto real = detail::parse_real(text)) {
    set_number(*real, label);
  }
  return label;
}

RawLabel label_from_json(const json& value, const std::string& source, int64_t line) {
  if (value.is_string()) return label_from_text(value.get<std::string>(), source, line);
  RawLabel label;
  if (value.is_number_integer()) {
    label.kind = RawLabel::kInteger;
    label.integer = value.get<int64_t>();
    label.real = double(label.integer);
  } else if (value.is_number_float()) {
    set_number(value.get<double>(), label);
  } else {
    row_error(source, line, cat("\"label\" must be a number or a string, not ", value.dump()));
  }
  label.text = value.dump();
  return label;
}

std::string checked_text(std::string_view text, const std::string& column,
                         const std::string& source, int64_t line) {
  if (detail::is_blank(text)) row_error(source, line, cat("empty text in ", column));
  return std::string(text);
}

std::vector<RawRow> read_tsv_rows(std::string_view content, const std::string& source) {
  const auto lines = detail::split_lines(content);
  MCD_CHECK(!lines.empty(), source,
            ": empty file (a custom TSV starts with a header naming text, label and optionally "
            "text_b)");
  const auto header = detail::split_tabs(lines[0].text);
  auto column = [&](const std::string& name, bool required) {
    int found = -1;
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] != name) continue;
      MCD_CHECK(found < 0, source, ":1: header names column '", name, "' twice");
      found = int(i);
    }
    MCD_CHECK(found >= 0 || !required, source, ":1: header lacks column '", name,
              "' (a custom TSV's header names text, label and optionally text_b; found: ",
              join_names(header), ")");
    return found;
  };
  const int text_a = column("text", true), text_b = column("text_b", false);
  const int label = column("label", true);
  std::vector<RawRow> rows;
  rows.reserve(lines.size() - 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto& line = lines[i];
    const auto fields = detail::split_tabs(line.text);
    if (fields.size() != header.size())
      row_error(
          source, line.number,
          line.text.empty()
              ? cat("empty line (expected ", header.size(), " tab-separated columns)")
              : cat("expected ", header.size(), " tab-separated columns, found ", fields.size()));
    RawRow row;
    row.line = line.number;
    row.text_a = checked_text(fields[text_a], "column text", source, line.number);
    if (text_b >= 0)
      row.text_b = checked_text(fields[text_b], "column text_b", source, line.number);
    row.label = label_from_text(fields[label], source, line.number);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<RawRow> read_jsonl_rows(std::string_view content, const std::string& source) {
  std::vector<RawRow> rows;
  for (const auto& line : detail::split_lines(content)) {
    if (detail::is_blank(line.text))
      row_error(source, line.number, "empty line (expected a JSON object)");
    json object;
    try {
      object = json::parse(line.text);
    } catch (const json::exception& e) {
      row_error(source, line.number, cat("not valid JSON: ", e.what()));
    }
    if (!object.is_object())
      row_error(source, line.number, "expected a JSON object {\"text\": ..., \"label\": ...}");
    RawRow row;
    row.line = line.number;
    const auto text = object.find("text");
    if (text == object.end() || !text->is_string())
      row_error(source, line.number, "\"text\" is missing or not a string");
    row.text_a = checked_text(text->get<std::string>(), "\"text\"", source, line.number);
    const auto text_b = object.find("text_b");
    if (text_b != object.end() && !text_b->is_null()) {
      if (!text_b->is_string()) row_error(source, line.number, "\"text_b\" is not a string");
      row.text_b = checked_text(text_b->get<std::string>(), "\"text_b\"", source, line.number);
    }
    const auto label = object.find("label");
    if (label == object.end() || label->is_null())
      row_error(source, line.number, "\"label\" is missing");
    row.label = label_from_json(*label, source, line.number);
    // A model is trained on single texts or on pairs, never on a mix.
    if (!rows.empty() && row.text_b.has_value() != rows.front().text_b.has_value()) {
      row_error(source, line.number,
                cat(row.text_b ? "has" : "has no", " \"text_b\" but line ", rows.front().line,
                    row.text_b ? " has none" : " has one",
                    " (either every line has text_b or none has)"));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// A dataset whose names are "0".."N-1" has integer class ids (a file of names never has them:
// a label that looks like an integer is one).
bool has_integer_names(const Dataset& data) {
  for (size_t i = 0; i < data.label_names.size(); ++i)
    if (data.label_names[i] != std::to_string(i)) return false;
  return true;
}

void resolve_regression(const std::vector<RawRow>& rows, const std::string& source, Dataset& data) {
  for (const auto& row : rows)
    if (row.label.kind == RawLabel::kName)
      row_error(
          source, row.line,
          cat("label '", row.label.text, "' is not a number (the data is declared regression)"));
  data.num_labels = 1;
}

void resolve_from_train(const std::vector<RawRow>& rows, const Dataset& train,
                        const std::string& source, Dataset& data) {
  MCD_CHECK(!train.regression, source, ": the train split (", train.path,
            ") is regression data but this one is read as classification");
  data.label_names = train.label_names;
  data.num_labels = train.num_labels;
  const bool integer_ids = has_integer_names(train);
  for (const auto& row : rows) {
    const RawLabel& label = row.label;
    const bool known = integer_ids ? label.kind == RawLabel::kInteger && label.integer >= 0 &&
                                         label.integer < train.num_labels
                                   : std::find(train.label_names.begin(), train.label_names.end(),
                                               label.text) != train.label_names.end();
    if (!known)
      row_error(
          source, row.line,
          cat("label '", label.text, "' is not one of the train split's labels (",
              integer_ids ? cat("0..", train.num_labels - 1) : join_names(train.label_names), ")"));
  }
}

void resolve_own(const std::vector<RawRow>& rows, const std::string& source, Dataset& data) {
  const RawRow* first_integer = nullptr;
  const RawRow* first_name = nullptr;
  int64_t max_id = -1;
  for (const auto& row : rows) {
    const RawLabel& label = row.label;
    if (label.kind == RawLabel::kReal)
      row_error(source, row.line,
                cat("label '", label.text,
                    "' is not an integer class id (declare regression for real-valued labels)"));
    if (label.kind == RawLabel::kInteger) {
      if (label.integer < 0)
        row_error(source, row.line, cat("negative class id '", label.text, "'"));
      if (label.integer >= kMaxClasses)
        row_error(source, row.line,
                  cat("class id '", label.text, "' is too large (at most ", kMaxClasses - 1, ")"));
      max_id = std::max(max_id, label.integer);
      if (!first_integer) first_integer = &row;
    } else if (!first_name) {
      first_name = &row;
    }
  }
  if (first_integer && first_name) {
    const RawRow* later = first_integer->line > first_name->line ? first_integer : first_name;
    const RawRow* earlier = later == first_integer ? first_name : first_integer;
    row_error(source, later->line,
              cat("label '", later->label.text, "' mixes ",
                  later == first_integer ? "integer class ids with names"
                                         : "names with integer class ids",
                  " (line ", earlier->line, " has '", earlier->label.text,
                  "'); use one kind of label in a file"));
  }
  if (first_integer) {
    data.num_labels = int(max_id + 1);
    for (int64_t id = 0; id <= max_id; ++id) data.label_names.push_back(std::to_string(id));
  } else {
    for (const auto& row : rows) data.label_names.push_back(row.label.text);
    std::sort(data.label_names.begin(), data.label_names.end());
    data.label_names.erase(std::unique(data.label_names.begin(), data.label_names.end()),
                           data.label_names.end());
    data.num_labels = int(data.label_names.size());
  }
}

}  // namespace

Dataset parse_custom(std::string_view content, bool jsonl, const std::string& split,
                     const std::string& source, const CustomOptions& options) {
  Dataset data;
  data.task = "custom";
  data.split = split;
  data.path = source;
  data.regression = options.regression;
  const std::vector<RawRow> rows =
      jsonl ? read_jsonl_rows(content, source) : read_tsv_rows(content, source);
  MCD_CHECK(!rows.empty(), source, ": no examples (custom ", split, ")");
  if (options.regression) {
    MCD_CHECK(!options.labels_from || options.labels_from->regression, source,
              ": declared regression, but the train split (", options.labels_from->path,
              ") is classification data");
    resolve_regression(rows, source, data);
  } else if (options.labels_from) {
    resolve_from_train(rows, *options.labels_from, source, data);
  } else {
    resolve_own(rows, source, data);
  }
  const bool integer_ids = has_integer_names(data);
  std::map<std::string, int> id_of_name;
  for (size_t id = 0; id < data.label_names.size() && !integer_ids; ++id)
    id_of_name[data.label_names[id]] = int(id);
  data.examples.reserve(rows.size());
  for (const auto& row : rows) {
    const double label = data.regression ? row.label.real
                         : integer_ids   ? double(row.label.integer)
                                         : double(id_of_name.at(row.label.text));
    data.examples.push_back({row.text_a, row.text_b, label, row.line});
  }
  return data;
}

Dataset read_custom(const std::string& path, const std::string& split,
                    const CustomOptions& options) {
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() &&
           std::equal(suffix.rbegin(), suffix.rend(), path.rbegin(), [](char s, char p) {
             return s == std::tolower(static_cast<unsigned char>(p));
           });
  };
  const bool jsonl = ends_with(".jsonl");
  MCD_CHECK(jsonl || ends_with(".tsv"), "custom data file '", path,
            "': unknown extension (expected .tsv or .jsonl, which set the format)");
  const std::string content = detail::read_whole_file(path, "custom " + split + " file");
  return parse_custom(content, jsonl, split, path, options);
}

}  // namespace mcd::data::glue
