// Multiple-choice JSON lines (see choice_data.h).
#include "data/choice_data.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"

namespace mcd::data {

std::vector<ChoiceExample> read_choice_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MCD_CHECK(in.good(), path, ": cannot open the multiple-choice file");
  std::vector<ChoiceExample> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto where = [&] { return cat(path, ":", number, ": "); };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(cat(where(), "not JSON (", e.what(), ")"));
    }
    MCD_CHECK(j.is_object(), where(), "a line must be a JSON object, got ", j.type_name());
    for (const auto& [key, value] : j.items())
      MCD_CHECK(key == "context" || key == "choices" || key == "label" || key == "id", where(), "unknown key \"", key,
                "\" (valid: context, choices, label, id)");
    ChoiceExample e;
    e.line = number;
    MCD_CHECK(j.contains("context") && j["context"].is_string(), where(), "\"context\" must be a string");
    e.context = j["context"].get<std::string>();
    MCD_CHECK(j.contains("choices") && j["choices"].is_array(), where(), "\"choices\" must be an array of strings");
    for (const auto& c : j["choices"]) {
      MCD_CHECK(c.is_string(), where(), "\"choices\" must be an array of strings, it holds ", c.dump());
      MCD_CHECK(!c.get<std::string>().empty(), where(), "choice ", e.choices.size(), " is empty");
      e.choices.push_back(c.get<std::string>());
    }
    MCD_CHECK(e.choices.size() >= 2, where(), "needs at least 2 choices, got ", e.choices.size());
    MCD_CHECK(j.contains("label") && j["label"].is_number_integer(), where(), "\"label\" must be an integer");
    e.label = j["label"].get<int64_t>();
    MCD_CHECK(e.label >= 0 && e.label < int64_t(e.choices.size()), where(), "label ", e.label, " is not one of the ",
              e.choices.size(), " choices (0-based)");
    if (j.contains("id")) {
      MCD_CHECK(j["id"].is_string() || j["id"].is_number_integer(), where(), "\"id\" must be a string or an integer");
      e.id = j["id"].is_string() ? j["id"].get<std::string>() : std::to_string(j["id"].get<int64_t>());
    } else {
      e.id = std::to_string(number);
    }
    out.push_back(std::move(e));
  }
  MCD_CHECK(!out.empty(), path, ": no example (every line is blank)");
  return out;
}

void write_choice_jsonl(const std::string& path, const std::vector<ChoiceExample>& examples) {
  std::string text;
  for (const auto& e : examples)
    text += nlohmann::json({{"id", e.id}, {"context", e.context}, {"choices", e.choices}, {"label", e.label}}).dump() + "\n";
  write_text_atomic(path, text);
}

std::vector<ChoiceExample> glue_as_choices(const glue::Dataset& d) {
  MCD_CHECK(!d.regression, d.path, ": ", d.task, " is a regression task: it has no answer words to choose from");
  const std::string& t = d.task;
  const auto pair = [&](const glue::Example& e) -> std::string {
    MCD_CHECK(e.text_b.has_value(), d.path, ":", e.line, ": ", t, " needs a second sentence");
    return *e.text_b;
  };
  std::vector<std::string> answers;  // by label name, in the dataset's label-id order
  for (const std::string& name : d.label_names) {
    if (t == "sst2") answers.push_back(" " + name);  // negative, positive
    else if (t == "cola") answers.push_back(name == "acceptable" ? " yes" : " no");
    else if (t == "mrpc") answers.push_back(name == "equivalent" ? " yes" : " no");
    else if (t == "qqp") answers.push_back(name == "duplicate" ? " yes" : " no");
    else if (t == "mnli") answers.push_back(name == "entailment" ? " True" : name == "neutral" ? " Neither" : " False");
    else if (t == "qnli") answers.push_back(name == "entailment" ? " yes" : " no");
    else if (t == "rte" || t == "wnli") answers.push_back(name == "entailment" ? " True" : " False");
    else fail(cat(d.path, ": task '", t, "' has no zero-shot prompt (GLUE classification tasks only)"));
  }
  std::vector<ChoiceExample> out;
  for (const glue::Example& e : d.examples) {
    ChoiceExample c;
    c.id = std::to_string(e.line);
    c.line = e.line;
    c.choices = answers;
    c.label = int64_t(e.label);
    if (t == "sst2") c.context = e.text_a + "\nQuestion: Is this sentence positive or negative?\nAnswer:";
    else if (t == "cola") c.context = e.text_a + "\nQuestion: Does this sentence make sense?\nAnswer:";
    else if (t == "mrpc")
      c.context = "Sentence 1: " + e.text_a + "\nSentence 2: " + pair(e) + "\nQuestion: Do both sentences mean the same thing?\nAnswer:";
    else if (t == "qqp")
      c.context = "Question 1: " + e.text_a + "\nQuestion 2: " + pair(e) + "\nQuestion: Do both questions ask the same thing?\nAnswer:";
    else if (t == "mnli") c.context = e.text_a + "\nQuestion: " + pair(e) + " True, False or Neither?\nAnswer:";
    else if (t == "qnli") c.context = e.text_a + "\n" + pair(e) + "\nQuestion: Does this response answer the question?\nAnswer:";
    else c.context = e.text_a + "\nQuestion: " + pair(e) + " True or False?\nAnswer:";  // rte, wnli
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace mcd::data
