// `mamba-codesign data glue`: one JSON line per split — examples, label counts, majority fraction —
// from real GLUE files when ../shared/data is present, and from a custom TSV the test writes;
// a malformed row is reported with its file and line.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace mcd {
namespace {

using nlohmann::json;

TEST(DataGlueCli, SummarisesARealSplit) {
  const std::string glue = test::shared_dir() + "/data/glue";
  if (!fs::exists(glue + "/SST-2/dev.tsv")) GTEST_SKIP() << "no GLUE data at " << glue;
  const auto r = test::run_cli("data glue --task sst2 --dir " + glue + " --split dev");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.last_line());
  EXPECT_EQ(j["examples"], 872);  // SST-2 dev (../shared/data/README.md)
  int64_t total = 0;
  for (const auto& [name, count] : j["labels"].items()) total += count.get<int64_t>();
  EXPECT_EQ(total, 872);
  EXPECT_GT(j["majority_fraction"].get<double>(), 0.5);
  // STS-B is a regression task: scores, not label counts.
  const auto s = test::run_cli("data glue --task stsb --dir " + glue + "/STS-B --split dev");
  ASSERT_EQ(s.status, 0) << s.err;
  const json k = json::parse(s.last_line());
  EXPECT_EQ(k["examples"], 1500);
  EXPECT_LE(k["min"].get<double>(), k["mean"].get<double>());
  EXPECT_LE(k["mean"].get<double>(), k["max"].get<double>());
}

TEST(DataGlueCli, CustomFilesAndTheirErrors) {
  test::TempDir tmp;
  {
    std::ofstream f(tmp.file("train.tsv"));
    f << "text\tlabel\ngood film\tpos\nbad film\tneg\nfine film\tpos\n";
    std::ofstream g(tmp.file("broken.tsv"));
    g << "text\tlabel\ngood film\tpos\nno label here\n";
  }
  const auto r = test::run_cli("data glue --task custom --file " + tmp.file("train.tsv") + " --split train");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.last_line());
  EXPECT_EQ(j["examples"], 3);
  EXPECT_EQ(j["labels"]["pos"], 2);
  EXPECT_NEAR(j["majority_fraction"].get<double>(), 2.0 / 3.0, 1e-12);
  const auto bad = test::run_cli("data glue --task custom --file " + tmp.file("broken.tsv") + " --split train");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("broken.tsv"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("3"), std::string::npos) << bad.err;  // the line
  const auto nodir = test::run_cli("data glue --task rte --split dev");
  EXPECT_EQ(nodir.status, 1);
  EXPECT_NE(nodir.err.find("--dir"), std::string::npos) << nodir.err;
}

}  // namespace
}  // namespace mcd
