// Tests for the GLUE and custom readers (data/glue/glue.h): the real train/dev files in
// ../shared/data/glue (row counts, first and last rows; skipped when absent), small files in the
// exact original layouts of the tasks not at hand (QQP, MNLI, QNLI, WNLI), folder resolution,
// CRLF and BOM, row errors that name the line, and a user's own TSV / JSON-lines data.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/glue/glue.h"
#include "data_test_util.h"

namespace mcd::data::glue {
namespace {

using mcd::data::test::write_file;
using mcd::test::error_of;
using mcd::test::TempDir;

// `text` contains `part` (printed in full when it does not).
#define EXPECT_HAS(text, part)                               \
  do {                                                       \
    const std::string text_ = (text);                        \
    EXPECT_NE(text_.find(part), std::string::npos) << text_; \
  } while (0)

std::string glue_dir() { return mcd::test::shared_dir() + "/data/glue"; }

#define MCD_GLUE_TASK_OR_SKIP(folder)                                            \
  do {                                                                           \
    const std::string where = glue_dir() + "/" folder;                           \
    if (!::mcd::fs::is_directory(where))                                         \
      GTEST_SKIP() << where << " not found (../shared is absent in this clone; " \
                   << "MCD_SHARED_DIR=" << ::mcd::test::shared_dir() << ")";     \
  } while (0)

// ---- The real files ----

TEST(GlueReal, Sst2) {
  MCD_GLUE_TASK_OR_SKIP("SST-2");
  const Dataset train = read_glue("sst2", "train", glue_dir());
  ASSERT_EQ(train.examples.size(), 67349u);
  EXPECT_EQ(train.path, glue_dir() + "/SST-2/train.tsv");
  EXPECT_FALSE(train.regression);
  EXPECT_EQ(train.num_labels, 2);
  EXPECT_EQ(train.label_names, (std::vector<std::string>{"negative", "positive"}));
  // Texts are kept byte for byte, SST-2's trailing space included.
  EXPECT_EQ(train.examples.front().text_a, "hide new secretions from the parental units ");
  EXPECT_FALSE(train.examples.front().text_b.has_value());
  EXPECT_EQ(train.examples.front().label, 0);
  EXPECT_EQ(train.examples.front().line, 2);
  EXPECT_EQ(train.examples.back().text_a,
            "this new jangle of noise , mayhem and stupidity must be a serious contender for the "
            "title . ");
  EXPECT_EQ(train.examples.back().line, 67350);

  const Dataset dev = read_glue("sst2", "dev", glue_dir() + "/SST-2");  // the task's own folder
  ASSERT_EQ(dev.examples.size(), 872u);
  EXPECT_EQ(dev.examples.front().text_a, "it 's a charming and often affecting journey . ");
  EXPECT_EQ(dev.examples.front().label, 1);
  EXPECT_EQ(majority_label(dev), 1);
  EXPECT_DOUBLE_EQ(majority_fraction(dev), 444.0 / 872.0);
  const auto summary = label_summary(dev);
  EXPECT_EQ(summary["task"], "sst2");
  EXPECT_EQ(summary["split"], "dev");
  EXPECT_EQ(summary["examples"], 872);
  EXPECT_EQ(summary["labels"]["negative"], 428);
  EXPECT_EQ(summary["labels"]["positive"], 444);
}

TEST(GlueReal, Cola) {
  MCD_GLUE_TASK_OR_SKIP("CoLA");
  const Dataset train = read_glue("cola", "train", glue_dir());
  ASSERT_EQ(train.examples.size(), 8551u);
  EXPECT_EQ(train.examples.front().text_a,
            "Our friends won't buy this analysis, let alone the next one we propose.");
  EXPECT_EQ(train.examples.front().label, 1);
  EXPECT_EQ(train.examples.front().line, 1);  // no header
  EXPECT_EQ(train.examples.back().text_a, "What all did you get for Christmas?");
  EXPECT_EQ(label_summary(train)["labels"]["unacceptable"], 2528);
  EXPECT_EQ(label_summary(train)["labels"]["acceptable"], 6023);

  const Dataset dev = read_glue("cola", "dev", glue_dir());
  ASSERT_EQ(dev.examples.size(), 1043u);
  // dev.tsv ends without a newline: its last line is still a row.
  EXPECT_EQ(dev.examples.back().text_a, "John talked to Bill about himself.");
  EXPECT_EQ(dev.examples.back().line, 1043);
  EXPECT_DOUBLE_EQ(majority_fraction(dev), 721.0 / 1043.0);
}

TEST(GlueReal, Mrpc) {
  MCD_GLUE_TASK_OR_SKIP("MRPC");
  const Dataset train = read_glue("mrpc", "train", glue_dir());
  ASSERT_EQ(train.examples.size(), 3668u);  // after the BOM'd header
  EXPECT_EQ(train.examples.front().text_a,
            "Amrozi accused his brother, whom he called \"the witness\", of deliberately "
            "distorting his evidence.");
  ASSERT_TRUE(train.examples.front().text_b.has_value());
  EXPECT_EQ(train.examples.front().label, 1);

  const Dataset dev = read_glue("mrpc", "dev", glue_dir());
  ASSERT_EQ(dev.examples.size(), 408u);
  // An unbalanced quote stays in its field: tabs alone split the columns.
  EXPECT_EQ(*dev.examples.back().text_b,
            "In Soviet times the Beatles' music \"was considered propaganda of an alien "
            "ideology.");
  EXPECT_EQ(dev.examples.back().label, 1);
  EXPECT_EQ(label_summary(dev)["labels"]["not_equivalent"], 129);
}

TEST(GlueReal, Rte) {
  MCD_GLUE_TASK_OR_SKIP("RTE");
  const Dataset train = read_glue("rte", "train", glue_dir());
  ASSERT_EQ(train.examples.size(), 2490u);
  EXPECT_EQ(train.examples.front().text_a, "No Weapons of Mass Destruction Found in Iraq Yet.");
  EXPECT_EQ(*train.examples.front().text_b, "Weapons of Mass Destruction Found in Iraq.");
  EXPECT_EQ(train.examples.front().label, 1);  // not_entailment
  EXPECT_EQ(train.label_names, (std::vector<std::string>{"entailment", "not_entailment"}));

  const Dataset dev = read_glue("rte", "dev", glue_dir());
  ASSERT_EQ(dev.examples.size(), 277u);
  EXPECT_EQ(*dev.examples.back().text_b, "Greenpeace director said that peace is terrorism.");
  EXPECT_EQ(majority_label(dev), 0);
  EXPECT_DOUBLE_EQ(majority_fraction(dev), 146.0 / 277.0);
}

TEST(GlueReal, Stsb) {
  MCD_GLUE_TASK_OR_SKIP("STS-B");
  const Dataset train = read_glue("stsb", "train", glue_dir());
  ASSERT_EQ(train.examples.size(), 5749u);
  EXPECT_TRUE(train.regression);
  EXPECT_EQ(train.num_labels, 1);
  EXPECT_TRUE(train.label_names.empty());
  EXPECT_EQ(train.examples[0].text_a, "A plane is taking off.");
  EXPECT_EQ(*train.examples[0].text_b, "An air plane is taking off.");
  EXPECT_EQ(train.examples[0].label, 5.0);
  EXPECT_EQ(train.examples[1].label, 3.8);
  const auto summary = label_summary(train);
  EXPECT_EQ(summary["min"], 0.0);
  EXPECT_EQ(summary["max"], 5.0);
  EXPECT_NEAR(summary["mean"].get<double>(), 2.7009990253653395, 1e-9);
  EXPECT_FALSE(summary.contains("labels"));
  EXPECT_HAS(error_of([&] { majority_fraction(train); }), ("regression"));

  const Dataset dev = read_glue("stsb", "dev", glue_dir());
  ASSERT_EQ(dev.examples.size(), 1500u);
  EXPECT_EQ(dev.examples.front().text_a, "A man with a hard hat is dancing.");
  EXPECT_EQ(dev.examples.back().text_a,
            "New video shows US police officers beating mentally-ill man");
  EXPECT_EQ(dev.examples.back().label, 0.0);
}

// ---- Written files in the original layouts of the tasks not at hand ----

TEST(GlueWritten, Qqp) {
  TempDir tmp;
  write_file(tmp.file("QQP/train.tsv"),
             "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
             "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of "
             "prepration is enough?\t0\n"
             "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control "
             "your horniness?\t1\n");
  const Dataset data = read_glue("qqp", "train", tmp.path);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[0].text_a, "How is the life of a math student?");
  EXPECT_EQ(*data.examples[0].text_b, "Which level of prepration is enough?");
  EXPECT_EQ(data.examples[0].label, 0);
  EXPECT_EQ(data.examples[1].label, 1);
  EXPECT_EQ(data.label_names, (std::vector<std::string>{"not_duplicate", "duplicate"}));
}

const char* kMnliTrainHeader =
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n";
const char* kMnliDevHeader =
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\t"
    "label5\tgold_label\n";

// One MNLI row: 8 leading columns, the two sentences, then the annotators' labels and gold.
std::string mnli_row(int index, const std::string& s1, const std::string& s2,
                     const std::vector<std::string>& labels) {
  std::string row = std::to_string(index) +
                    "\t31193\t31193n\tgovernment\t( ( Conceptually cream ) "
                    "skimming )\t( ( Product and ) geography )\t(ROOT (S))\t(ROOT (S))\t" +
                    s1 + "\t" + s2;
  for (const auto& label : labels) row += "\t" + label;
  return row + "\n";
}

TEST(GlueWritten, MnliTrainAndBothDevSplits) {
  TempDir tmp;
  write_file(tmp.file("MNLI/train.tsv"),
             std::string(kMnliTrainHeader) +
                 mnli_row(0, "Conceptually cream skimming has two basic dimensions.",
                          "Product and geography are what make cream skimming work. ",
                          {"neutral", "neutral"}) +
                 mnli_row(1, "you know during the season", "You lose the things.",
                          {"entailment", "entailment"}));
  // Dev rows: five annotator labels, the gold one last (which may differ from label1).
  write_file(tmp.file("MNLI/dev_matched.tsv"),
             std::string(kMnliDevHeader) +
                 mnli_row(0, "The new rights are nice enough", "Everyone really likes them.",
                          {"neutral", "entailment", "neutral", "neutral", "neutral", "neutral"}) +
                 mnli_row(1, "This site includes a list.", "The Government does not have a site.",
                          {"contradiction", "contradiction", "contradiction", "contradiction",
                           "contradiction", "contradiction"}));
  write_file(tmp.file("MNLI/dev_mismatched.tsv"),
             std::string(kMnliDevHeader) +
                 mnli_row(0, "Your contribution helped.", "Your contribution was useless.",
                          {"entailment", "contradiction", "contradiction", "contradiction",
                           "contradiction", "contradiction"}));
  const Dataset train = read_glue("mnli", "train", tmp.path);
  ASSERT_EQ(train.examples.size(), 2u);
  EXPECT_EQ(train.examples[0].text_a, "Conceptually cream skimming has two basic dimensions.");
  EXPECT_EQ(*train.examples[0].text_b, "Product and geography are what make cream skimming work. ");
  EXPECT_EQ(train.examples[0].label, 1);  // neutral
  EXPECT_EQ(train.examples[1].label, 0);  // entailment
  EXPECT_EQ(train.label_names,
            (std::vector<std::string>{"entailment", "neutral", "contradiction"}));

  const Dataset matched = read_glue("mnli", "dev_matched", tmp.path);
  ASSERT_EQ(matched.examples.size(), 2u);
  EXPECT_EQ(matched.split, "dev_matched");
  EXPECT_EQ(matched.examples[0].label, 1);  // gold_label, not label1
  EXPECT_EQ(matched.examples[1].label, 2);
  const Dataset mismatched = read_glue("mnli", "dev_mismatched", tmp.file("MNLI"));
  ASSERT_EQ(mismatched.examples.size(), 1u);
  EXPECT_EQ(mismatched.examples[0].label, 2);  // gold contradiction, label1 entailment
  EXPECT_EQ(mismatched.path, tmp.file("MNLI/dev_mismatched.tsv"));

  const std::string dev = error_of([&] { read_glue("mnli", "dev", tmp.path); });
  EXPECT_HAS(dev, ("dev_matched"));
  EXPECT_HAS(dev, ("dev_mismatched"));
  EXPECT_HAS(error_of([&] { read_glue("sst2", "dev_matched", tmp.path); }), ("train, dev"));
  EXPECT_HAS(error_of([&] { read_glue("mnli", "test", tmp.path); }), ("not public"));
}

TEST(GlueWritten, MnliDevRowWithoutGoldLabelIsAnError) {
  TempDir tmp;
  // A row from the unfiltered MultiNLI release: no consensus ("-") — not a GLUE label.
  write_file(
      tmp.file("dev_matched.tsv"),
      std::string(kMnliDevHeader) +
          mnli_row(0, "a", "b",
                   {"neutral", "entailment", "neutral", "neutral", "contradiction", "neutral"}) +
          mnli_row(1, "c", "d",
                   {"neutral", "entailment", "contradiction", "neutral", "entailment", "-"}));
  const std::string error = error_of([&] { read_glue("mnli", "dev_matched", tmp.path); });
  EXPECT_HAS(error, (tmp.file("dev_matched.tsv") + ":3: unknown label '-'"));
  EXPECT_HAS(error, ("entailment, neutral, contradiction"));
}

TEST(GlueWritten, Qnli) {
  TempDir tmp;
  write_file(tmp.file("QNLI/dev.tsv"),
             "index\tquestion\tsentence\tlabel\n"
             "0\tWhat came into force after the new constitution was herald?\tAs of that day, the "
             "new constitution heralding the Second Republic came into force.\tentailment\n"
             "1\tWhat is the first major city in the stream of the Rhine?\tThe most important "
             "tributaries in this area are the Ill below of Strasbourg.\tnot_entailment\n");
  const Dataset data = read_glue("qnli", "dev", tmp.path);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[0].text_a, "What came into force after the new constitution was herald?");
  EXPECT_EQ(data.examples[0].label, 0);
  EXPECT_EQ(data.examples[1].label, 1);
}

TEST(GlueWritten, Wnli) {
  TempDir tmp;
  write_file(tmp.file("WNLI/train.tsv"),
             "index\tsentence1\tsentence2\tlabel\n"
             "0\tI stuck a pin through a carrot. When I pulled the pin out, it had a hole.\tThe "
             "carrot had a hole.\t1\n"
             "1\tJohn couldn't see the stage with Billy in front of him because he is so short."
             "\tJohn is so short.\t1\n"
             "2\tThe police arrested all of the gang members.\tThe police were trying to stop the "
             "drug trade in the neighborhood.\t0\n");
  const Dataset data = read_glue("wnli", "train", tmp.path);
  ASSERT_EQ(data.examples.size(), 3u);
  EXPECT_EQ(*data.examples[0].text_b, "The carrot had a hole.");
  EXPECT_EQ(data.examples[2].label, 0);
  EXPECT_EQ(data.label_names, (std::vector<std::string>{"not_entailment", "entailment"}));
  EXPECT_DOUBLE_EQ(majority_fraction(data), 2.0 / 3.0);
}

// ---- Folders, line endings, errors ----

TEST(GlueFiles, RootOrTaskFolder) {
  TempDir tmp;
  write_file(tmp.file("glue/RTE/train.tsv"),
             "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n");
  EXPECT_EQ(resolve_task_dir(tmp.file("glue"), "rte", "train"), tmp.file("glue/RTE"));
  EXPECT_EQ(resolve_task_dir(tmp.file("glue/RTE"), "rte", "dev"), tmp.file("glue/RTE"));
  EXPECT_EQ(read_glue("rte", "train", tmp.file("glue/RTE")).examples.size(), 1u);
  // The folder is found but this split's file is not there: the error names the file.
  EXPECT_HAS(error_of([&] { read_glue("rte", "dev", tmp.file("glue")); }),
             ("'" + tmp.file("glue/RTE/dev.tsv") + "' does not exist"));
  const std::string neither = error_of([&] { read_glue("cola", "train", tmp.file("glue")); });
  EXPECT_HAS(neither, (tmp.file("glue/CoLA")));
  EXPECT_HAS(neither, (tmp.file("glue/train.tsv")));
  EXPECT_HAS(error_of([&] { read_glue("rte", "train", tmp.file("nowhere")); }),
             (tmp.file("nowhere/RTE")));
  EXPECT_HAS(error_of([&] { read_glue("sts-b", "train", tmp.path); }),
             ("cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"));
  EXPECT_HAS(error_of([&] { read_glue("custom", "train", tmp.path); }), ("read_custom"));
}

TEST(GlueFiles, TaskTable) {
  EXPECT_EQ(task_names().size(), 9u);
  EXPECT_EQ(task_info("stsb").folder, "STS-B");
  EXPECT_TRUE(task_info("stsb").regression);
  EXPECT_FALSE(task_info("sst2").pair);
  EXPECT_TRUE(task_info("qnli").pair);
  EXPECT_EQ(split_file_name("mnli", "dev_mismatched"), "dev_mismatched.tsv");
}

TEST(GlueFiles, CrlfAndBom) {
  const std::string bom = "\xEF\xBB\xBF";
  const Dataset sst = parse_glue("sst2", "train",
                                 bom + "sentence\tlabel\r\ngood film \t1\r\nbad\t0\r\n", "mem.tsv");
  ASSERT_EQ(sst.examples.size(), 2u);
  EXPECT_EQ(sst.examples[0].text_a, "good film ");
  EXPECT_EQ(sst.examples[1].text_a, "bad");
  EXPECT_EQ(sst.examples[1].label, 0);
  // CoLA: no header, a BOM before the first row, CRLF, no final newline.
  const Dataset cola = parse_glue(
      "cola", "dev", bom + "gj04\t1\t\tThe sailors rode.\r\ngj04\t0\t*\tRode the.", "mem.tsv");
  ASSERT_EQ(cola.examples.size(), 2u);
  EXPECT_EQ(cola.examples[0].text_a, "The sailors rode.");
  EXPECT_EQ(cola.examples[1].text_a, "Rode the.");
  EXPECT_EQ(cola.examples[1].label, 0);
  EXPECT_EQ(cola.examples[1].line, 2);
  const Dataset stsb = parse_glue(
      "stsb", "dev",
      bom +
          "index\tgenre\tfilename\tyear\told_"
          "index\tsource1\tsource2\tsentence1\tsentence2\tscore\r\n"
          "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man.\tA person.\t4.750\r\n",
      "mem.tsv");
  EXPECT_EQ(stsb.examples[0].label, 4.75);
}

TEST(GlueErrors, MalformedRowsNameTheLine) {
  auto error = [](const std::string& task, const std::string& content) {
    return error_of([&] { parse_glue(task, "train", content, "/data/x.tsv"); });
  };
  const std::string sst = "sentence\tlabel\n";
  EXPECT_HAS(error("sst2", sst + "fine\t1\nno label here\n"),
             ("/data/x.tsv:3: expected 2 tab-separated columns, found 1"));
  EXPECT_HAS(error("sst2", sst + "fine\t1\na tab\ttoo many\t0\n"),
             ("/data/x.tsv:3: expected 2 tab-separated columns, found 3"));
  EXPECT_HAS(error("sst2", sst + "fine\t2\n"), ("/data/x.tsv:2: label '2' is not a class id"));
  EXPECT_HAS(error("sst2", sst + "fine\tpositive\n"), (":2: label 'positive'"));
  EXPECT_HAS(error("sst2", sst + " \t1\n"), ("/data/x.tsv:2: empty text in column sentence"));
  EXPECT_HAS(error("sst2", sst + "a\t1\n\nb\t0\n"), ("/data/x.tsv:3: empty line"));
  EXPECT_HAS(error("sst2", sst), ("/data/x.tsv: no examples"));
  EXPECT_HAS(error("sst2", ""), ("empty file"));
  EXPECT_HAS(error("sst2", "text\tlabel\nfine\t1\n"),
             ("/data/x.tsv:1: header lacks column 'sentence' of the GLUE sst2 layout "
              "(found: text, label)"));
  EXPECT_HAS(error("rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tcontradiction\n"),
             (":2: unknown label 'contradiction' (expected one of: entailment, "
              "not_entailment)"));
  EXPECT_HAS(error("rte", "index\tsentence1\tsentence2\tlabel\n0\ta\t\tentailment\n"),
             (":2: empty text in column sentence2"));
  const std::string stsb_header =
      "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
  EXPECT_HAS(error("stsb", stsb_header + "0\tg\tf\ty\to\ts\ts\ta\tb\tfive\n"),
             (":2: score 'five' is not a number in [0, 5]"));
  EXPECT_HAS(error("stsb", stsb_header + "0\tg\tf\ty\to\ts\ts\ta\tb\t5.5\n"), (":2: score '5.5'"));
  EXPECT_HAS(error("cola", "gj04\t1\t\tok.\ngj04\t1\tno sentence\n"),
             ("/data/x.tsv:2: expected 4 tab-separated columns, found 3"));
  EXPECT_HAS(error("cola", "gj04\t1\t\tok.\ngj04\t\t\tno label\n"), (":2: label ''"));
  EXPECT_HAS(error_of([] { read_glue_file("sst2", "train", "/no/such/glue/train.tsv"); }),
             ("'/no/such/glue/train.tsv' does not exist"));
}

// ---- A user's own data ----

TEST(CustomTsv, IntegerLabelsWithPairsAndExtraColumns) {
  TempDir tmp;
  write_file(
      tmp.file("train.tsv"),
      "id\ttext\ttext_b\tlabel\n7\tfirst\tsecond\t2\n8\tthird\tfourth\t0\n9\tfifth\tsixth\t2\n");
  const Dataset data = read_custom(tmp.file("train.tsv"), "train");
  EXPECT_EQ(data.task, "custom");
  EXPECT_EQ(data.split, "train");
  ASSERT_EQ(data.examples.size(), 3u);
  EXPECT_EQ(data.num_labels, 3);  // max + 1: class 1 simply has no examples here
  EXPECT_EQ(data.label_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(data.examples[0].text_a, "first");
  EXPECT_EQ(*data.examples[0].text_b, "second");
  EXPECT_EQ(data.examples[0].label, 2);
  EXPECT_EQ(data.examples[1].line, 3);
  const auto summary = label_summary(data);
  EXPECT_EQ(summary["labels"]["1"], 0);
  EXPECT_EQ(summary["labels"]["2"], 2);
  EXPECT_DOUBLE_EQ(majority_fraction(data), 2.0 / 3.0);
}

TEST(CustomTsv, StringLabelsSortedAndDevUsesTrainIds) {
  TempDir tmp;
  write_file(
      tmp.file("train.tsv"),
      "text\tlabel\r\ngreat\tpositive\r\nawful\tnegative\r\nmeh\tneutral\r\nfine\tpositive\r\n");
  write_file(tmp.file("dev.tsv"), "label\ttext\nneutral\tso so\n");
  const Dataset train = read_custom(tmp.file("train.tsv"), "train");
  EXPECT_EQ(train.label_names, (std::vector<std::string>{"negative", "neutral", "positive"}));
  EXPECT_EQ(train.examples[0].label, 2);
  EXPECT_EQ(train.examples[1].label, 0);
  EXPECT_FALSE(train.examples[0].text_b.has_value());
  // Dev holds only "neutral": on its own it would be class 0, with train's ids it is 1.
  const Dataset dev = read_custom(tmp.file("dev.tsv"), "dev", {false, &train});
  EXPECT_EQ(dev.num_labels, 3);
  EXPECT_EQ(dev.examples[0].label, 1);
  EXPECT_EQ(dev.examples[0].text_a, "so so");

  write_file(tmp.file("dev2.tsv"), "text\tlabel\nhmm\tmixed\n");
  EXPECT_HAS(error_of([&] {
               read_custom(tmp.file("dev2.tsv"), "dev", {false, &train});
             }),
             (tmp.file("dev2.tsv") + ":2: label 'mixed' is not one of the train split's "
                                     "labels (negative, neutral, positive)"));
}

TEST(CustomTsv, Regression) {
  const Dataset data = parse_custom("text\ttext_b\tlabel\na\tb\t0.25\nc\td\t3\ne\tf\t-1.5e0\n",
                                    false, "train", "mem.tsv", {true, nullptr});
  EXPECT_TRUE(data.regression);
  EXPECT_EQ(data.num_labels, 1);
  EXPECT_EQ(data.examples[0].label, 0.25);
  EXPECT_EQ(data.examples[2].label, -1.5);
  const auto summary = label_summary(data);
  EXPECT_EQ(summary["min"], -1.5);
  EXPECT_EQ(summary["max"], 3.0);
  EXPECT_DOUBLE_EQ(summary["mean"].get<double>(), (0.25 + 3 - 1.5) / 3);
  EXPECT_HAS(
      error_of([] {
        parse_custom("text\tlabel\na\t0.5\nb\thigh\n", false, "train", "mem.tsv", {true, nullptr});
      }),
      ("mem.tsv:3: label 'high' is not a number"));
}

TEST(CustomTsv, Errors) {
  auto error = [](const std::string& content) {
    return error_of([&] { parse_custom(content, false, "train", "u.tsv"); });
  };
  EXPECT_HAS(error("sentence\tlabel\na\t1\n"), ("u.tsv:1: header lacks column 'text'"));
  EXPECT_HAS(error("text\tscore\na\t1\n"), ("u.tsv:1: header lacks column 'label'"));
  EXPECT_HAS(error("text\tlabel\na\t1\nb\n"),
             ("u.tsv:3: expected 2 tab-separated columns, found 1"));
  EXPECT_HAS(error("text\tlabel\na\t1\nb\t0.5\n"),
             ("u.tsv:3: label '0.5' is not an integer class id (declare regression"));
  EXPECT_HAS(error("text\tlabel\na\t1\nb\tpos\n"),
             ("u.tsv:3: label 'pos' mixes names with integer class ids (line 2 has '1')"));
  EXPECT_HAS(error("text\tlabel\na\t-1\n"), ("u.tsv:2: negative class id '-1'"));
  EXPECT_HAS(error("text\tlabel\na\t\n"), ("u.tsv:2: empty label"));
  EXPECT_HAS(error("text\ttext_b\tlabel\na\t\t1\n"), ("u.tsv:2: empty text in column text_b"));
  EXPECT_HAS(error("text\tlabel\n"), ("u.tsv: no examples"));
  EXPECT_HAS(error("text\tlabel\na\t99999999\n"), ("too large"));
  EXPECT_HAS(error_of([] { read_custom("/no/such/train.tsv", "train"); }),
             ("'/no/such/train.tsv' does not exist"));
  EXPECT_HAS(error_of([] { read_custom("/no/such/train.csv", "train"); }),
             ("expected .tsv or .jsonl"));
}

TEST(CustomJsonl, StringLabelsPairsAndNumbers) {
  TempDir tmp;
  write_file(tmp.file("train.jsonl"),
             "{\"text\": \"A man sleeps.\", \"text_b\": \"Someone rests.\", \"label\": \"yes\", "
             "\"id\": 1}\n"
             "{\"text\": \"Tab\\there, \\\"quoted\\\"\", \"text_b\": \"x\", \"label\": \"no\"}\r\n"
             "{\"label\": \"yes\", \"text_b\": \"y\", \"text\": \"\\u00e9t\\u00e9\"}");
  const Dataset data = read_custom(tmp.file("train.jsonl"), "train");
  ASSERT_EQ(data.examples.size(), 3u);
  EXPECT_EQ(data.label_names, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(data.examples[0].label, 1);
  EXPECT_EQ(data.examples[1].text_a, "Tab\there, \"quoted\"");
  EXPECT_EQ(data.examples[1].label, 0);
  EXPECT_EQ(data.examples[2].text_a, "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(*data.examples[2].text_b, "y");
  EXPECT_EQ(data.examples[2].line, 3);

  // Integers as JSON numbers, as whole reals or as strings name the same classes.
  const Dataset ints = parse_custom(
      "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 0.0}\n{\"text\": \"c\", "
      "\"label\": \"3\"}\n",
      true, "train", "m.jsonl");
  EXPECT_EQ(ints.num_labels, 4);
  EXPECT_EQ(ints.examples[1].label, 0);
  EXPECT_EQ(ints.examples[2].label, 3);
  const Dataset dev =
      parse_custom("{\"text\": \"d\", \"label\": 2}\n", true, "dev", "d.jsonl", {false, &ints});
  EXPECT_EQ(dev.examples[0].label, 2);
  EXPECT_HAS(
      error_of([&] {
        parse_custom("{\"text\": \"d\", \"label\": 4}\n", true, "dev", "d.jsonl", {false, &ints});
      }),
      ("d.jsonl:1: label '4' is not one of the train split's labels (0..3)"));

  const Dataset scores =
      parse_custom("{\"text\": \"a\", \"label\": 0.5}\n{\"text\": \"b\", \"label\": 4}\n", true,
                   "train", "s.jsonl", {true, nullptr});
  EXPECT_EQ(scores.examples[0].label, 0.5);
  EXPECT_EQ(scores.examples[1].label, 4.0);
  EXPECT_EQ(label_summary(scores)["mean"], 2.25);
}

TEST(CustomJsonl, Errors) {
  auto error = [](const std::string& content) {
    return error_of([&] { parse_custom(content, true, "train", "u.jsonl"); });
  };
  const std::string ok = "{\"text\": \"a\", \"label\": 1}\n";
  EXPECT_HAS(error(ok + "{\"text\": \"b\", \"label\": 1\n"), ("u.jsonl:2: not valid JSON"));
  EXPECT_HAS(error(ok + "[1, 2]\n"), ("u.jsonl:2: expected a JSON object"));
  EXPECT_HAS(error(ok + "{\"label\": 1}\n"), ("u.jsonl:2: \"text\" is missing or not a string"));
  EXPECT_HAS(error(ok + "{\"text\": 5, \"label\": 1}\n"), ("u.jsonl:2: \"text\" is missing"));
  EXPECT_HAS(error(ok + "{\"text\": \"  \", \"label\": 1}\n"), ("u.jsonl:2: empty text"));
  EXPECT_HAS(error(ok + "{\"text\": \"b\"}\n"), ("u.jsonl:2: \"label\" is missing"));
  EXPECT_HAS(error(ok + "{\"text\": \"b\", \"label\": true}\n"),
             ("u.jsonl:2: \"label\" must be a number or a string"));
  EXPECT_HAS(error(ok + "{\"text\": \"b\", \"label\": 1.5}\n"),
             ("u.jsonl:2: label '1.5' is not an integer class id"));
  EXPECT_HAS(error(ok + "{\"text\": \"b\", \"text_b\": \"c\", \"label\": 1}\n"),
             ("u.jsonl:2: has \"text_b\" but line 1 has none"));
  EXPECT_HAS(error(ok + "\n" + ok), ("u.jsonl:2: empty line"));
  EXPECT_HAS(error(""), ("u.jsonl: no examples"));
}

}  // namespace
}  // namespace mcd::data::glue
