// The multiple-choice JSON lines reader (data/choice_data.h): fields, ids, blank lines, BOM and
// CRLF, and every refusal naming the file and line.
#include <gtest/gtest.h>

#include <map>

#include "data/choice_data.h"
#include "data_test_util.h"

namespace mcd::data {
namespace {

TEST(ChoiceData, ReadsExamplesWithTheirIdsAndLines) {
  ::mcd::test::TempDir tmp;
  const std::string path = tmp.file("mc.jsonl");
  test::write_file(path, "\xEF\xBB\xBF{\"context\": \"The sky is\", \"choices\": [\" blue\", \" green\"], \"label\": 0}\r\n"
                         "\n"
                         "{\"id\": \"q7\", \"context\": \"\", \"choices\": [\"a\", \"b\", \"c\"], \"label\": 2}\n"
                         "{\"id\": 12, \"context\": \"x\", \"choices\": [\"y\", \"z\"], \"label\": 1}");
  const auto e = read_choice_jsonl(path);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].context, "The sky is");
  EXPECT_EQ(e[0].choices, (std::vector<std::string>{" blue", " green"}));
  EXPECT_EQ(e[0].id, "1");  // the line when no id is given
  EXPECT_EQ(e[1].id, "q7");
  EXPECT_EQ(e[1].line, 3);
  EXPECT_EQ(e[1].label, 2);
  EXPECT_EQ(e[2].id, "12");
}

TEST(ChoiceData, RefusalsNameTheFileAndLine) {
  ::mcd::test::TempDir tmp;
  const std::string path = tmp.file("bad.jsonl");
  const std::string good = "{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"label\": 0}\n";
  const auto refused = [&](const std::string& second_line, const std::string& message) {
    test::write_file(path, good + second_line + "\n");
    ::mcd::test::expect_error([&] { read_choice_jsonl(path); }, path + ":2: " + message);
  };
  refused("{\"context\": \"c\", \"choices\": [\"a\"], \"label\": 0}", "needs at least 2 choices, got 1");
  refused("{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"label\": 2}", "label 2 is not one of the 2 choices");
  refused("{\"context\": \"c\", \"choices\": [\"a\", \"\"], \"label\": 0}", "choice 1 is empty");
  refused("{\"context\": \"c\", \"choices\": [\"a\", 3], \"label\": 0}", "\"choices\" must be an array of strings, it holds 3");
  refused("{\"choices\": [\"a\", \"b\"], \"label\": 0}", "\"context\" must be a string");
  refused("{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"label\": \"0\"}", "\"label\" must be an integer");
  refused("{\"context\": \"c\", \"choices\": [\"a\", \"b\"], \"label\": 0, \"gold\": 1}", "unknown key \"gold\"");
  refused("[1, 2]", "a line must be a JSON object, got array");
  refused("{\"context\": ", "not JSON");
  test::write_file(path, "\n \n");
  ::mcd::test::expect_error([&] { read_choice_jsonl(path); }, path + ": no example");
  ::mcd::test::expect_error([&] { read_choice_jsonl(tmp.file("missing.jsonl")); }, "missing.jsonl: cannot open");
}

}  // namespace
}  // namespace mcd::data

namespace mcd::data {
namespace {

// Every GLUE classification task's answer word for each label, by the label's meaning (not its id):
// whatever order glue.cpp gives the labels, choices[id] must be the word for label_names[id]. Two
// examples per label, pair tasks with a second text; STS-B and custom data are refused.
TEST(ChoiceData, EveryGlueLabelGetsTheAnswerWordOfItsMeaning) {
  const std::map<std::string, std::map<std::string, std::string>> words = {
      {"cola", {{"unacceptable", " no"}, {"acceptable", " yes"}}},
      {"sst2", {{"negative", " negative"}, {"positive", " positive"}}},
      {"mrpc", {{"not_equivalent", " no"}, {"equivalent", " yes"}}},
      {"qqp", {{"not_duplicate", " no"}, {"duplicate", " yes"}}},
      {"mnli", {{"entailment", " True"}, {"neutral", " Neither"}, {"contradiction", " False"}}},
      {"qnli", {{"entailment", " yes"}, {"not_entailment", " no"}}},
      {"rte", {{"entailment", " True"}, {"not_entailment", " False"}}},
      {"wnli", {{"entailment", " True"}, {"not_entailment", " False"}}}};
  for (const auto& [task, by_name] : words) {
    const glue::TaskInfo& info = glue::task_info(task);
    glue::Dataset d;
    d.task = task;
    d.path = task + ".tsv";
    d.label_names = info.label_names;
    d.num_labels = int(info.label_names.size());
    for (size_t id = 0; id < info.label_names.size(); ++id)
      for (int copy = 0; copy < 2; ++copy) {
        glue::Example e;
        e.text_a = "first " + std::to_string(id);
        if (info.pair) e.text_b = "second";
        e.label = double(id);
        e.line = int64_t(d.examples.size()) + 2;
        d.examples.push_back(e);
      }
    const auto c = glue_as_choices(d);
    ASSERT_EQ(c.size(), d.examples.size()) << task;
    for (const auto& e : c) {
      ASSERT_EQ(e.choices.size(), info.label_names.size()) << task;
      EXPECT_EQ(e.choices[size_t(e.label)], by_name.at(info.label_names[size_t(e.label)])) << task;
      EXPECT_NE(e.context.find(info.pair ? "second" : "first"), std::string::npos) << task;
      EXPECT_EQ(e.context.substr(e.context.size() - 7), "Answer:") << task;
    }
  }
  glue::Dataset stsb;
  stsb.task = "stsb";
  stsb.path = "stsb.tsv";
  stsb.regression = true;
  ::mcd::test::expect_error([&] { glue_as_choices(stsb); }, "stsb.tsv: stsb is a regression task");
  glue::Dataset custom;
  custom.task = "custom";
  custom.path = "mine.jsonl";
  custom.label_names = {"a", "b"};
  ::mcd::test::expect_error([&] { glue_as_choices(custom); }, "task 'custom' has no zero-shot prompt");
}

// GLUE splits as zero-shot prompts, on the real files: every example kept with its label, the
// answer words in label-id order (RTE's ids are entailment, not_entailment; WNLI's the reverse), the
// prompt around the sentences, and the file written reads back equal. STS-B has no answer words.
TEST(ChoiceData, GlueSplitsBecomePromptsWithTheirLabels) {
  const std::string glue_dir = ::mcd::test::shared_dir() + "/data/glue";
  MCD_SHARED_OR_SKIP(glue_dir + "/SST-2/dev.tsv");
  const glue::Dataset sst2 = glue::read_glue("sst2", "dev", glue_dir);
  const auto c = glue_as_choices(sst2);
  ASSERT_EQ(c.size(), 872u);
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_EQ(c[i].label, int64_t(sst2.examples[i].label));
    ASSERT_EQ(c[i].context, sst2.examples[i].text_a + "\nQuestion: Is this sentence positive or negative?\nAnswer:");
  }
  EXPECT_EQ(c[0].choices, (std::vector<std::string>{" negative", " positive"}));
  EXPECT_EQ(c[0].id, "2");  // the first example is on line 2, after the header
  const glue::Dataset rte = glue::read_glue("rte", "dev", glue_dir);
  const auto r = glue_as_choices(rte);
  EXPECT_EQ(r[0].choices, (std::vector<std::string>{" True", " False"}));
  EXPECT_EQ(r[0].context, rte.examples[0].text_a + "\nQuestion: " + *rte.examples[0].text_b + " True or False?\nAnswer:");
  glue::Dataset wnli = rte;
  wnli.task = "wnli";
  wnli.label_names = {"not_entailment", "entailment"};
  EXPECT_EQ(glue_as_choices(wnli)[0].choices, (std::vector<std::string>{" False", " True"}));
  ::mcd::test::TempDir tmp;
  write_choice_jsonl(tmp.file("sst2.jsonl"), c);
  const auto back = read_choice_jsonl(tmp.file("sst2.jsonl"));
  ASSERT_EQ(back.size(), c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_EQ(back[i].context, c[i].context);
    ASSERT_EQ(back[i].choices, c[i].choices);
    ASSERT_EQ(back[i].label, c[i].label);
    ASSERT_EQ(back[i].id, c[i].id);
  }
  ::mcd::test::expect_error([&] { glue_as_choices(glue::read_glue("stsb", "dev", glue_dir)); },
                            "stsb is a regression task");
}

}  // namespace
}  // namespace mcd::data
