// `data download` (src/data/download) against a local HTTP server (http_test_server.h) on
// 127.0.0.1 and a free port, serving archives the tests build: fresh download and unpacking into
// the readers' layouts, checksums pinned / recorded / verified, resumed and restarted partial
// downloads, retries, skips on a second run, the MRPC split, and strict manifest errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "archives.h"
#include "data/corpus.h"
#include "data/download/archive.h"
#include "data/download/download.h"
#include "data/download/manifest.h"
#include "data/glue/glue.h"
#include "data/tokenizer/sha256.h"
#include "http_test_server.h"
#include "test_support.h"

namespace mcd::data::download {
namespace {

using nlohmann::json;
using test::expect_error;
using test::HttpTestServer;
using test::slurp;

// Deterministic bytes that do not compress (so a drop after N bytes is N bytes of the file).
std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng() & 0xFF);
  return s;
}

const std::string kColaTrain =
    "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n"
    "gj04\t0\t*\tOne more pseudo generalization and I'm giving up.\n"
    "gj04\t1\t\tThe more we study verbs, the crazier they get.\n";
const std::string kColaDev = "gj04\t1\t\tDay by day the facts are getting murkier.\n";
const std::string kWikiTrain = " = Alpha = \n\n Alpha is a letter . \n\n = Beta = \n\n Beta follows it . \n";

// The zip cases need the unzip program (scripts/install_deps.sh installs it; tar is always there).
#define SKIP_WITHOUT_UNZIP()                                                                    \
  do {                                                                                          \
    if (find_program("unzip").empty()) GTEST_SKIP() << "unzip is not installed (apt-get install unzip)"; \
  } while (0)

class Download : public ::testing::Test {
 protected:
  HttpTestServer server;
  test::TempDir tmp;
  std::string dest = tmp.file("dest");
  std::vector<std::string> log;

  Options options(std::vector<std::string> only = {}) {
    Options o;
    o.dest = dest;
    o.only = std::move(only);
    o.retries = 0;
    o.retry_delay_s = 0;
    o.connect_timeout_s = 10;
    o.stall_timeout_s = 20;
    o.log = [this](const std::string& line) { log.push_back(line); };
    return o;
  }

  Manifest manifest(const std::string& entries, const std::string& derived = "") {
    std::string text = "manifest_version: 1\nentries:\n" + entries;
    if (!derived.empty()) text += "derived:\n" + derived;
    return parse_manifest(text, tmp.file("manifest.yaml"));
  }

  std::string plain_entry(const std::string& name, const std::string& path, const std::string& to,
                          const std::string& sha = "") {
    return "  - name: " + name + "\n    url: " + server.url(path) + "\n" +
           (sha.empty() ? "" : "    sha256: " + sha + "\n") + "    archive: none\n    extract_to: " + to + "\n";
  }

  static const EntryResult& result(const Summary& s, const std::string& name) {
    for (const auto& e : s.entries)
      if (e.name == name) return e;
    throw std::runtime_error("no result for " + name);
  }
};

TEST_F(Download, FreshDownloadUnpacksIntoTheReadersLayout) {
  SKIP_WITHOUT_UNZIP();
  const std::string zip = test::make_zip({{"CoLA/train.tsv", kColaTrain}, {"CoLA/dev.tsv", kColaDev}});
  const std::string tgz = test::make_tar_gz({{"wikitext-103-raw/wiki.train.raw", kWikiTrain},
                                             {"wikitext-103-raw/wiki.valid.raw", kWikiTrain}});
  server.put("/glue/CoLA.zip", zip);
  server.put("/wikitext-103-raw-v1.tar.gz", tgz);
  server.put("/notes.txt", "plain file\n");
  const Manifest m = manifest(
      "  - name: glue-cola\n    group: glue\n    url: " + server.url("/glue/CoLA.zip") + "\n    sha256: " +
      sha256_hex(zip) +
      "\n    archive: zip\n    extract_to: glue/CoLA\n    strip_components: 1\n"
      "    expect: [glue/CoLA/train.tsv, glue/CoLA/dev.tsv]\n"
      "  - name: wikitext-103-raw\n    url: " +
      server.url("/wikitext-103-raw-v1.tar.gz") +
      "\n    archive: tar.gz\n    extract_to: .\n    expect: [wikitext-103-raw/wiki.train.raw]\n" +
      plain_entry("notes", "/notes.txt", "misc/notes.txt"));
  const Summary s = download(m, options());
  ASSERT_EQ(s.failed, 0) << s.to_json().dump(2);
  EXPECT_EQ(result(s, "glue-cola").status, "downloaded");
  EXPECT_EQ(result(s, "glue-cola").sha256_source, "manifest");
  EXPECT_EQ(result(s, "wikitext-103-raw").sha256_source, "new");
  EXPECT_EQ(result(s, "wikitext-103-raw").sha256, sha256_hex(tgz));
  EXPECT_EQ(s.received, int64_t(zip.size() + tgz.size() + 11));

  // The readers take the result as it is.
  const glue::Dataset cola = glue::read_glue("cola", "train", dest + "/glue");
  EXPECT_EQ(cola.examples.size(), 3u);
  EXPECT_EQ(glue::read_glue("cola", "dev", dest + "/glue").examples.size(), 1u);
  CorpusSpec spec;
  spec.format = "wikitext";
  spec.paths = {dest + "/wikitext-103-raw/wiki.train.raw"};
  EXPECT_EQ(for_each_document(spec, [](std::string_view) {}), 2);
  EXPECT_EQ(slurp(dest + "/misc/notes.txt"), "plain file\n");

  // Kept downloads, the record, and no leftovers.
  EXPECT_EQ(slurp(dest + "/.downloads/glue-cola.zip"), zip);
  EXPECT_EQ(slurp(dest + "/.downloads/wikitext-103-raw.tar.gz"), tgz);
  const json record = json::parse(slurp(record_path(dest)));
  EXPECT_EQ(record["entries"]["wikitext-103-raw"]["sha256"], sha256_hex(tgz));
  EXPECT_EQ(record["entries"]["glue-cola"]["extracted"], true);
  for (const auto& name : fs::list_dir(dest)) EXPECT_EQ(name.find(".extract-"), std::string::npos) << name;
  for (const auto& name : fs::list_dir(dest + "/.downloads")) EXPECT_EQ(name.find(".part"), std::string::npos) << name;
  const json j = s.to_json();
  EXPECT_EQ(j["entries"].size(), 3u);
  EXPECT_EQ(j["failed"], 0);
}

TEST_F(Download, PinnedChecksumMismatchFailsAndKeepsNothing) {
  server.put("/a.txt", "the served bytes\n");
  const std::string wrong = sha256_hex("other bytes\n");
  const Manifest m = manifest(plain_entry("a", "/a.txt", "a.txt", wrong));
  const Summary s = download(m, options());
  ASSERT_EQ(s.failed, 1);
  const std::string& err = result(s, "a").error;
  EXPECT_NE(err.find("entry 'a'"), std::string::npos) << err;
  EXPECT_NE(err.find("expected " + wrong), std::string::npos) << err;
  EXPECT_NE(err.find("got " + sha256_hex("the served bytes\n")), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dest + "/a.txt"));
  EXPECT_FALSE(fs::exists(dest + "/a.txt.part"));
  expect_error([&] { throw_if_failed(s); }, "sha256 mismatch");
}

TEST_F(Download, MissingChecksumIsRecordedThenVerified) {
  server.put("/a.txt", "version one\n");
  const Manifest m = manifest(plain_entry("a", "/a.txt", "data/a.txt"));
  const Summary first = download(m, options());
  ASSERT_EQ(first.failed, 0) << first.to_json().dump();
  EXPECT_EQ(result(first, "a").sha256_source, "new");
  const std::string recorded = json::parse(slurp(record_path(dest)))["entries"]["a"]["sha256"];
  EXPECT_EQ(recorded, sha256_hex("version one\n"));

  // Present and matching the record: skipped without a request, even though the server changed.
  server.put("/a.txt", "version two\n");
  const size_t before = server.request_count();
  const Summary second = download(m, options());
  EXPECT_EQ(result(second, "a").status, "skipped");
  EXPECT_EQ(server.request_count(), before);

  // Downloaded again (the file was removed): the new bytes must match the recorded sha256.
  fs::remove_file(dest + "/data/a.txt");
  const Summary third = download(m, options());
  ASSERT_EQ(third.failed, 1);
  const std::string& err = result(third, "a").error;
  EXPECT_NE(err.find("entry 'a'"), std::string::npos) << err;
  EXPECT_NE(err.find("expected " + recorded), std::string::npos) << err;
  EXPECT_NE(err.find("recorded in"), std::string::npos) << err;
  EXPECT_NE(err.find("got " + sha256_hex("version two\n")), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dest + "/data/a.txt"));
  EXPECT_FALSE(fs::exists(dest + "/data/a.txt.part"));

  // The original bytes again: verified against the record.
  server.put("/a.txt", "version one\n");
  const Summary fourth = download(m, options());
  ASSERT_EQ(fourth.failed, 0) << fourth.to_json().dump();
  EXPECT_EQ(result(fourth, "a").status, "downloaded");
  EXPECT_EQ(result(fourth, "a").sha256_source, "record");
}

TEST_F(Download, InterruptedDownloadIsResumedWithARangeRequest) {
  const std::string body = random_bytes(200000, 1);
  server.put("/big.bin", body);
  server.drop_after("/big.bin", 70000);
  const Manifest m = manifest(plain_entry("big", "/big.bin", "big.bin"));
  const Summary first = download(m, options());
  ASSERT_EQ(first.failed, 1);
  EXPECT_NE(result(first, "big").error.find("resumes"), std::string::npos) << result(first, "big").error;
  EXPECT_EQ(fs::file_size(dest + "/big.bin.part"), 70000);
  EXPECT_FALSE(fs::exists(dest + "/big.bin"));

  const Summary second = download(m, options());
  ASSERT_EQ(second.failed, 0) << second.to_json().dump();
  const EntryResult& r = result(second, "big");
  EXPECT_EQ(r.status, "downloaded");
  EXPECT_EQ(r.resumed_from, 70000);
  EXPECT_FALSE(r.restarted);
  EXPECT_EQ(r.received, int64_t(body.size()) - 70000);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].range, "");
  EXPECT_EQ(reqs[1].range, "bytes=70000-");
  EXPECT_FALSE(reqs[1].if_range.empty());  // the ETag of the first response
  EXPECT_EQ(slurp(dest + "/big.bin"), body);
  EXPECT_FALSE(fs::exists(dest + "/big.bin.part"));
  EXPECT_FALSE(fs::exists(dest + "/big.bin.part.state"));
}

TEST_F(Download, RetriesWithinOneRunResume) {
  const std::string body = random_bytes(150000, 2);
  server.put("/big.bin", body);
  server.drop_after("/big.bin", 40000, 2);  // two drops, then the rest
  Options o = options();
  o.retries = 2;
  const Summary s = download(manifest(plain_entry("big", "/big.bin", "big.bin")), o);
  ASSERT_EQ(s.failed, 0) << s.to_json().dump();
  EXPECT_EQ(slurp(dest + "/big.bin"), body);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].range, "bytes=40000-");
  EXPECT_EQ(reqs[2].range, "bytes=80000-");
  EXPECT_EQ(log.size(), 3u);  // two retries and the resume
  EXPECT_EQ(s.entries[0].received, int64_t(body.size()));  // 40000 + 40000 + the rest
  EXPECT_EQ(s.entries[0].resumed_from, 80000);
}

TEST_F(Download, ServerWithoutRangesDiscardsThePartialAndRestarts) {
  const std::string body = random_bytes(120000, 3);
  server.put("/big.bin", body, /*ranges=*/false);
  server.drop_after("/big.bin", 50000);
  const Manifest m = manifest(plain_entry("big", "/big.bin", "big.bin"));
  ASSERT_EQ(download(m, options()).failed, 1);
  EXPECT_EQ(fs::file_size(dest + "/big.bin.part"), 50000);
  const Summary second = download(m, options());
  ASSERT_EQ(second.failed, 0) << second.to_json().dump();
  const EntryResult& r = result(second, "big");
  EXPECT_TRUE(r.restarted);
  EXPECT_EQ(r.resumed_from, 0);
  EXPECT_EQ(r.received, int64_t(body.size()));
  EXPECT_EQ(server.requests().back().range, "bytes=50000-");  // asked, and answered with the whole file
  EXPECT_EQ(slurp(dest + "/big.bin"), body);
}

TEST_F(Download, ChangedContentIsNotSplicedOntoAPartial) {
  const std::string v1 = random_bytes(100000, 4), v2 = random_bytes(100000, 5);
  server.put("/big.bin", v1);
  server.drop_after("/big.bin", 30000);
  const Manifest m = manifest(plain_entry("big", "/big.bin", "big.bin"));
  ASSERT_EQ(download(m, options()).failed, 1);
  server.put("/big.bin", v2);  // same size, new ETag: If-Range fails and the server sends all of v2
  const Summary second = download(m, options());
  ASSERT_EQ(second.failed, 0) << second.to_json().dump();
  EXPECT_TRUE(result(second, "big").restarted);
  EXPECT_EQ(slurp(dest + "/big.bin"), v2);
}

TEST_F(Download, HttpErrorsRetryOnlyWhenAnotherAttemptMayHelp) {
  server.put("/flaky.txt", "eventually\n");
  server.fail_with("/flaky.txt", 503, 1);
  Options o = options();
  o.retries = 2;
  const Manifest m = manifest(plain_entry("flaky", "/flaky.txt", "flaky.txt") +
                              plain_entry("gone", "/gone.txt", "gone.txt"));
  const Summary s = download(m, o);
  EXPECT_EQ(result(s, "flaky").status, "downloaded");
  EXPECT_EQ(slurp(dest + "/flaky.txt"), "eventually\n");
  EXPECT_EQ(result(s, "gone").status, "failed");
  EXPECT_NE(result(s, "gone").error.find("HTTP 404"), std::string::npos) << result(s, "gone").error;
  EXPECT_EQ(s.failed, 1);
  int gone_requests = 0;
  for (const auto& r : server.requests()) gone_requests += r.path == "/gone.txt";
  EXPECT_EQ(gone_requests, 1);  // a 404 is not retried
}

TEST_F(Download, SecondRunSkipsVerifiedEntriesAndReunpacksMissingFiles) {
  SKIP_WITHOUT_UNZIP();
  const std::string zip = test::make_zip({{"RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n"},
                                          {"RTE/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tc\td\tnot_entailment\n"}});
  server.put("/RTE.zip", zip);
  server.put("/x.txt", "x\n");
  const std::string entries = "  - name: glue-rte\n    url: " + server.url("/RTE.zip") +
                              "\n    archive: zip\n    extract_to: glue\n    expect: [glue/RTE/train.tsv]\n" +
                              plain_entry("x", "/x.txt", "x.txt");
  const Manifest m = manifest(entries);
  ASSERT_EQ(download(m, options()).failed, 0);
  const size_t requests = server.request_count();
  EXPECT_EQ(requests, 2u);

  const Summary again = download(m, options());
  EXPECT_EQ(result(again, "glue-rte").status, "skipped");
  EXPECT_EQ(result(again, "glue-rte").sha256_source, "record");
  EXPECT_EQ(result(again, "x").status, "skipped");
  EXPECT_EQ(server.request_count(), requests);

  // An unpacked file deleted: unpacked again from the kept, verified archive; no request.
  fs::remove_tree(dest + "/glue/RTE");
  const Summary third = download(m, options());
  EXPECT_EQ(result(third, "glue-rte").status, "extracted");
  EXPECT_EQ(server.request_count(), requests);
  EXPECT_EQ(glue::read_glue("rte", "dev", dest + "/glue").examples.size(), 1u);

  // A corrupted kept archive: downloaded again.
  test::write_bytes_to(dest + "/.downloads/glue-rte.zip", "garbage");
  const Summary fourth = download(m, options());
  EXPECT_EQ(result(fourth, "glue-rte").status, "downloaded");
  EXPECT_EQ(server.request_count(), requests + 1);

  // --only: just the named entry.
  fs::remove_file(dest + "/x.txt");
  const Summary only = download(m, options({"x"}));
  ASSERT_EQ(only.entries.size(), 1u);
  EXPECT_EQ(only.entries[0].status, "downloaded");
}

TEST_F(Download, ExpectedFilesMissingAfterUnpackingAreAnError) {
  SKIP_WITHOUT_UNZIP();
  server.put("/t.zip", test::make_zip({{"Top/train.tsv", "x"}}));
  const Manifest m = manifest("  - name: t\n    url: " + server.url("/t.zip") +
                              "\n    archive: zip\n    extract_to: glue\n    expect: [glue/T/train.tsv]\n");
  const Summary s = download(m, options());
  ASSERT_EQ(s.failed, 1);
  const std::string& err = result(s, "t").error;
  EXPECT_NE(err.find("glue/T/train.tsv"), std::string::npos) << err;
  EXPECT_NE(err.find("Top"), std::string::npos) << err;  // what the folder holds
  // strip_components over a level that is not a single folder
  server.put("/two.zip", test::make_zip({{"A/x", "1"}, {"B/y", "2"}}));
  const Summary s2 = download(manifest("  - name: two\n    url: " + server.url("/two.zip") +
                                       "\n    archive: zip\n    extract_to: out\n    strip_components: 1\n"),
                              options());
  ASSERT_EQ(s2.failed, 1);
  EXPECT_NE(result(s2, "two").error.find("A, B"), std::string::npos) << result(s2, "two").error;
}

TEST_F(Download, MissingUnpackerIsAClearError) {
  server.put("/t.zip", test::make_zip({{"T/train.tsv", "x"}}));
  const Manifest m = manifest("  - name: t\n    url: " + server.url("/t.zip") + "\n    archive: zip\n    extract_to: glue\n");
  const std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", tmp.path.c_str(), 1);  // a folder without unzip
  const Summary s = download(m, options());
  ::setenv("PATH", saved.c_str(), 1);
  ASSERT_EQ(s.failed, 1);
  EXPECT_NE(result(s, "t").error.find("needs the 'unzip' program"), std::string::npos) << result(s, "t").error;
  // The verified download is kept: with unzip back, the next run only unpacks it.
  if (find_program("unzip").empty()) return;
  const size_t requests = server.request_count();
  const Summary again = download(m, options());
  EXPECT_EQ(result(again, "t").status, "extracted");
  EXPECT_EQ(server.request_count(), requests);
}

TEST_F(Download, MrpcSplitBuildsTrainAndDevInGlueLayout) {
  const std::string source =
      "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
      "1\t702876\t702977\tAmrozi accused his brother.\tReferring to him, Amrozi accused his brother.\r\n"
      "0\t2108705\t2108831\tYucaipa owned Dominick's.\tYucaipa bought Dominick's in 1995.\r\n"
      "1\t1330381\t1330521\tThey had published an advertisement.\tOn June 10, they published an ad.\r\n"
      "0\t3344667\t3344648\tAround 0335 GMT, Tab shares were up.\tTab shares jumped 20 cents.\r\n";
  server.put("/msr_paraphrase_train.txt", source);
  server.put("/mrpc_dev_ids.tsv", "1330381\t1330521\n3344667\t3344648\n9\t9\n");
  const Manifest m = manifest(plain_entry("mrpc-source", "/msr_paraphrase_train.txt", "glue/MRPC/msr_paraphrase_train.txt") +
                                  plain_entry("mrpc-dev-ids", "/mrpc_dev_ids.tsv", "glue/MRPC/dev_ids.tsv"),
                              "  - name: glue-mrpc\n    group: glue\n    step: mrpc_split\n    source: mrpc-source\n"
                              "    dev_ids: mrpc-dev-ids\n    out: glue/MRPC\n");
  const Summary s = download(m, options({"glue"}));
  ASSERT_EQ(s.failed, 0) << s.to_json().dump(2);
  ASSERT_EQ(s.entries.size(), 3u);  // the group pulls in the step's inputs
  EXPECT_EQ(result(s, "glue-mrpc").status, "built");
  const glue::Dataset train = glue::read_glue("mrpc", "train", dest + "/glue");
  const glue::Dataset dev = glue::read_glue("mrpc", "dev", dest + "/glue");
  ASSERT_EQ(train.examples.size(), 2u);
  ASSERT_EQ(dev.examples.size(), 2u);
  EXPECT_EQ(dev.examples[0].text_a, "They had published an advertisement.");
  const json record = json::parse(slurp(record_path(dest)));
  EXPECT_EQ(record["derived"]["glue-mrpc"]["counts"]["dev_ids_not_found"], 1);
  EXPECT_EQ(result(download(m, options()), "glue-mrpc").status, "skipped");
}

TEST_F(Download, ProgressReportsEndWithTheWholeFile) {
  const std::string body = random_bytes(300000, 6);
  server.put("/p.bin", body);
  Options o = options();
  std::vector<Progress> reports;
  o.progress = [&](const Progress& p) { reports.push_back(p); };
  ASSERT_EQ(download(manifest(plain_entry("p", "/p.bin", "p.bin")), o).failed, 0);
  ASSERT_FALSE(reports.empty());
  EXPECT_TRUE(reports.back().finished);
  EXPECT_EQ(reports.back().entry, "p");
  EXPECT_EQ(reports.back().done, int64_t(body.size()));
  EXPECT_EQ(reports.back().total, int64_t(body.size()));
}

TEST(DownloadManifest, MalformedManifestsNameTheFileAndKey) {
  const std::string head = "manifest_version: 1\nentries:\n";
  const std::string ok_entry = "  - name: a\n    url: https://example.org/a.zip\n    archive: zip\n    extract_to: a\n";
  auto parse = [](const std::string& text) { return parse_manifest(text, "m.yaml"); };
  EXPECT_NO_THROW(parse(head + ok_entry));
  expect_error([&] { parse(head + "  - name: a\n    archive: zip\n    extract_to: a\n"); },
               "m.yaml: entries[0] (a): missing key 'url'");
  expect_error([&] { parse(head + ok_entry + "    checksum: abc\n"); }, "unknown key 'checksum' (line 7)");
  expect_error([&] { parse(head + "  - name: a\n    url: https://x/a\n    archive: rar\n    extract_to: a\n"); },
               "entries[0] (a): key 'archive': 'rar' is not one of none, zip, tar.gz (line 5)");
  expect_error([&] { parse(head + ok_entry + "    sha256: 1234\n"); }, "key 'sha256'");
  expect_error([&] { parse(head + "  - name: a\n    url: ftp://x/a\n    archive: zip\n    extract_to: a\n"); },
               "key 'url'");
  expect_error([&] { parse(head + "  - name: a\n    url: https://x/a\n    archive: zip\n    extract_to: ../a\n"); },
               "key 'extract_to': '../a' must not contain '..'");
  expect_error([&] { parse(head + "  - name: a\n    url: https://x/a\n    archive: none\n    extract_to: .\n"); },
               "key 'extract_to'");
  expect_error([&] { parse(head + ok_entry + "    strip_components: -1\n"); }, "key 'strip_components'");
  expect_error([&] { parse(head + ok_entry + "    expect: /etc/passwd\n"); }, "key 'expect'");
  expect_error([&] { parse(head + ok_entry + ok_entry); }, "name 'a' is used twice");
  expect_error([&] { parse(head + "  - name: 'a b'\n    url: https://x/a\n    archive: zip\n    extract_to: a\n"); },
               "key 'name'");
  expect_error([&] { parse("entries:\n" + ok_entry); }, "m.yaml: key 'manifest_version' must be 1");
  expect_error([&] { parse(head); }, "key 'entries' must be a non-empty list");
  expect_error([&] { parse(head + ok_entry + "  - [unclosed\n"); }, "m.yaml: invalid YAML at line");
  expect_error([&] { parse(head + ok_entry + "derived:\n  - name: d\n    step: mrpc_split\n    source: nope\n"
                                             "    dev_ids: a\n    out: o\n"); },
               "derived (d): key 'source': no entry is named 'nope'");
  expect_error([&] { parse(head + ok_entry + "derived:\n  - name: d\n    step: magic\n    source: a\n    dev_ids: a\n    out: o\n"); },
               "key 'step'");
  expect_error([] { load_manifest("/nonexistent/m.yaml"); }, "/nonexistent/m.yaml: cannot open");
  const Manifest m = parse(head + ok_entry);
  expect_error([&] { select(m, {"b"}); }, "--only: no entry or group is named 'b' (there are: a)");
}

// The shipped manifest reads, and gives every GLUE task's train and dev files and WikiText-103.
TEST(DownloadManifest, ShippedManifestCoversWikiText103AndEveryGlueTask) {
  const Manifest m = load_manifest(test::source_dir() + "/configs/data_manifest.yaml");
  std::set<std::string> provided;
  for (const auto& e : m.entries) {
    for (const auto& p : e.expect) provided.insert(p);
    EXPECT_EQ(e.url.rfind("https://", 0), 0u) << e.name;
  }
  for (const auto& d : m.derived) {
    provided.insert(d.out + "/train.tsv");
    provided.insert(d.out + "/dev.tsv");
  }
  for (const auto& task : glue::task_names()) {
    const glue::TaskInfo& info = glue::task_info(task);
    for (const auto& split : info.splits)
      EXPECT_TRUE(provided.count("glue/" + info.folder + "/" + glue::split_file_name(task, split)))
          << task << " " << split;
  }
  for (const char* f : {"wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"})
    EXPECT_TRUE(provided.count(std::string("wikitext-103-raw/") + f)) << f;
  EXPECT_EQ(select(m, {"glue"}).entries.size() + 1, m.entries.size());  // all but WikiText
}

}  // namespace
}  // namespace mcd::data::download
