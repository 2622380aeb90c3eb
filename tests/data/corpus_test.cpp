// Tests for the corpus readers (data/corpus.h): WikiText headings vs subheadings, WikiExtractor
// documents and their errors, plain-text directories in sorted order, auto-detection, and the
// real files in ../shared (skipped when absent).
#include "data/corpus.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "util/mapped_file.h"

namespace mcd::data {
namespace {

using mcd::test::TempDir;

std::vector<Document> split(const std::string& content, CorpusFormat format) {
  std::vector<Document> docs;
  split_documents(content, format, "mem.txt", [&](const Document& d) { docs.push_back(d); });
  return docs;
}

std::vector<std::string> all_docs(const CorpusSpec& spec) {
  std::vector<std::string> docs;
  for_each_document(spec, [&](std::string_view d) { docs.emplace_back(d); });
  return docs;
}

// ---- WikiText ----

TEST(CorpusWikiText, TitleHeadingsStartDocumentsSubheadingsDoNot) {
  const std::string head = " \n";
  const std::string a =
      " = Alpha = \n \n Alpha text . \n \n = = History = = \n \n More @-@ text . \n \n";
  const std::string b = " = Beta gamma = \n \n = = = Deep = = = \n Beta text . \n";
  const std::string content = head + a + b;  // the documents are views into it
  const auto docs = split(content, CorpusFormat::kWikiText);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, a);  // exact bytes, heading included, subheadings kept inside
  EXPECT_EQ(docs[0].title, "Alpha");
  EXPECT_EQ(docs[1].text, b);
  EXPECT_EQ(docs[1].title, "Beta gamma");
}

TEST(CorpusWikiText, RawFormatAndTextBeforeFirstHeading) {
  // wiki.train.raw has the same headings, with untokenized text.
  const std::string pre = "Preamble line.\n";
  const std::string a =
      " = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 (Japanese: 戦場のヴァルキュリア3).\n";
  const std::string b =
      " = Tower Building of the Little Rock Arsenal = \n\n The Tower Building, ...\n";
  const std::string content = pre + a + b;
  const auto docs = split(content, CorpusFormat::kWikiText);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].text, pre);
  EXPECT_EQ(docs[0].title, "");
  EXPECT_EQ(docs[1].text, a);
  EXPECT_EQ(docs[2].title, "Tower Building of the Little Rock Arsenal");
}

TEST(CorpusWikiText, LinesThatAreNotTitleHeadings) {
  for (const std::string line :
       {" = = Section = = ", "== A ==", "=A=", " = = ", " = ", "a = b = c", "= x"}) {
    const auto docs = split(" = Doc = \n" + line + "\n", CorpusFormat::kWikiText);
    EXPECT_EQ(docs.size(), 1u) << "'" << line << "' started a document";
  }
  EXPECT_EQ(split(" = Doc = \n = Next = \n", CorpusFormat::kWikiText).size(), 2u);
  EXPECT_EQ(split(" = Doc = \r\n = Next = \r\n", CorpusFormat::kWikiText).size(), 2u);  // CRLF
}

TEST(CorpusWikiText, BlankInputGivesNoDocuments) {
  EXPECT_TRUE(split("", CorpusFormat::kWikiText).empty());
  EXPECT_TRUE(split(" \n \n\n", CorpusFormat::kWikiText).empty());
}

// ---- WikiExtractor ----

TEST(CorpusWikiExtractor, DocumentsWithAttributesAndEmptyDocs) {
  const std::string body1 = "Anarchism\n\nAnarchism is a political philosophy.\nEtymology.\n";
  const std::string body2 = "Autism\n\nAutism is a disorder <b>with</b> tags & \"quotes\".\n";
  const std::string content =
      "<doc id=\"12\" url=\"http://en.wikipedia.org/wiki?curid=12\" title=\"Anarchism\">\n" +
      body1 +
      "</doc>\n\n"
      "<doc title=\"Empty\" id=\"13\">\n\n</doc>\n"
      "<doc id=\"25\" extra=\"x\" title=\"Autism\" url=\"u\">\n" +
      body2 + "</doc>\n";
  const auto docs = split(content, CorpusFormat::kWikiExtractor);
  ASSERT_EQ(docs.size(), 2u);  // the empty document is dropped
  EXPECT_EQ(docs[0].text, body1);
  EXPECT_EQ(docs[0].title, "Anarchism");
  EXPECT_EQ(docs[1].text, body2);
  EXPECT_EQ(docs[1].title, "Autism");
}

TEST(CorpusWikiExtractor, MalformedFilesNameFileAndLine) {
  const auto err = [](const std::string& content) {
    return test::error_of([&] { split(content, CorpusFormat::kWikiExtractor); });
  };
  std::string e = err("<doc id=\"1\">\ntext\n");
  EXPECT_NE(e.find("mem.txt"), std::string::npos) << e;
  EXPECT_NE(e.find("line 1 is never closed"), std::string::npos) << e;
  e = err("<doc id=\"1\">\ntext\n<doc id=\"2\">\nmore\n</doc>\n");
  EXPECT_NE(e.find("mem.txt:3"), std::string::npos) << e;
  EXPECT_NE(e.find("missing </doc>"), std::string::npos) << e;
  e = err("<doc id=\"1\">\ntext\n</doc>\nstray\n");
  EXPECT_NE(e.find("mem.txt:4: text outside"), std::string::npos) << e;
  e = err("<doc id=\"1\"\n</doc>\n");
  EXPECT_NE(e.find("unterminated"), std::string::npos) << e;
}

// ---- text, directories, auto ----

TEST(CorpusText, DirectoryIsItsFilesRecursivelyInSortedOrder) {
  TempDir dir;
  const std::string root = dir.file("corpus");
  test::write_file(root + "/b.txt", "bee");
  test::write_file(root + "/a.txt", "ay");
  test::write_file(root + "/10.txt", "ten");
  test::write_file(root + "/9.txt", "nine");
  test::write_file(root + "/sub/c.txt", "sea");
  test::write_file(root + "/sub/deeper/a.txt", "deep");
  test::write_file(root + "/empty.txt", "");
  test::write_file(root + "/blank.txt", " \n\t\n");
  test::write_file(root + "/.hidden", "no");
  test::write_file(root + "/.cache/train.bin", "no");
  const CorpusSpec spec{"text", {root}};
  std::vector<std::string> rel;
  for (const std::string& f : list_corpus_files(spec)) rel.push_back(f.substr(root.size() + 1));
  EXPECT_EQ(rel, (std::vector<std::string>{"10.txt", "9.txt", "a.txt", "b.txt", "blank.txt",
                                           "empty.txt", "sub/c.txt", "sub/deeper/a.txt"}));
  // Empty and blank files are no documents.
  EXPECT_EQ(all_docs(spec), (std::vector<std::string>{"ten", "nine", "ay", "bee", "sea", "deep"}));
  // Paths named directly keep the given order; a BOM is dropped.
  test::write_file(root + "/bom.txt", "\xEF\xBB\xBFwith bom");
  EXPECT_EQ(all_docs(CorpusSpec{"text", {root + "/b.txt", root + "/bom.txt", root + "/a.txt"}}),
            (std::vector<std::string>{"bee", "with bom", "ay"}));
  // Relative and absolute spellings list the same absolute files.
  EXPECT_EQ(list_corpus_files(CorpusSpec{"text", {root + "/sub/../a.txt"}}),
            std::vector<std::string>{root + "/a.txt"});
}

TEST(CorpusAuto, DetectsEachFilesFormatByContent) {
  EXPECT_EQ(detect_corpus_format(" \n = Title = \n text\n"), CorpusFormat::kWikiText);
  EXPECT_EQ(detect_corpus_format("\n<doc id=\"1\" title=\"T\">\nT\n</doc>\n"),
            CorpusFormat::kWikiExtractor);
  EXPECT_EQ(detect_corpus_format("\xEF\xBB\xBF<doc id=\"1\">\n</doc>\n"),
            CorpusFormat::kWikiExtractor);
  EXPECT_EQ(detect_corpus_format("Just text.\n = Title = \n"), CorpusFormat::kText);
  EXPECT_EQ(detect_corpus_format(" = = Section = = \n"), CorpusFormat::kText);
  EXPECT_EQ(detect_corpus_format(""), CorpusFormat::kText);

  TempDir dir;
  test::write_file(dir.file("c/1_wt.tokens"), " \n = A = \n a \n = B = \n b \n");
  test::write_file(
      dir.file("c/2_we"),
      "<doc id=\"1\" title=\"C\">\nC\n</doc>\n<doc id=\"2\" title=\"D\">\nD\n</doc>\n");
  test::write_file(dir.file("c/3_plain.txt"), " = = not a title = = \n = X = \n");
  EXPECT_EQ(all_docs(CorpusSpec{"auto", {dir.file("c")}}),
            (std::vector<std::string>{" = A = \n a \n", " = B = \n b \n", "C\n", "D\n",
                                      " = = not a title = = \n = X = \n"}));
  // An explicit format applies to every file.
  EXPECT_EQ(all_docs(CorpusSpec{"text", {dir.file("c/1_wt.tokens")}}).size(), 1u);
}

TEST(CorpusSpecErrors, NameWhatIsWrong) {
  TempDir dir;
  std::string e = test::error_of([&] {
    list_corpus_files(CorpusSpec{"auto", {dir.file("nope")}});
  });
  EXPECT_NE(e.find(dir.file("nope")), std::string::npos) << e;
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  e = test::error_of([&] { list_corpus_files(CorpusSpec{"auto", {}}); });
  EXPECT_NE(e.find("no paths"), std::string::npos) << e;
  e = test::error_of([&] { list_corpus_files(CorpusSpec{"markdown", {dir.path}}); });
  EXPECT_NE(e.find("unknown corpus format 'markdown'"), std::string::npos) << e;
  test::write_file(dir.file("d/.only_hidden"), "x");
  e = test::error_of([&] { list_corpus_files(CorpusSpec{"auto", {dir.file("d")}}); });
  EXPECT_NE(e.find("has no (non-hidden) files"), std::string::npos) << e;
}

// ---- ../shared ----

TEST(CorpusShared, EnwikiWiki00DocumentCountMatchesGrep) {
  const std::string path = test::enwiki_dir() + "/wiki_00";
  MCD_SHARED_OR_SKIP(path);
  std::vector<std::string> titles;
  int64_t n = 0;
  const MappedFile file = MappedFile::open(path);
  const std::string_view content(reinterpret_cast<const char*>(file.data()), file.size());
  EXPECT_EQ(detect_corpus_format(content), CorpusFormat::kWikiExtractor);
  split_documents(content, CorpusFormat::kWikiExtractor, path, [&](const Document& d) {
    ++n;
    titles.emplace_back(d.title);
    EXPECT_EQ(d.text.substr(0, d.title.size()), d.title) << "the first line is the title";
  });
  EXPECT_EQ(n, test::grep_count_doc(path));
  EXPECT_EQ(n, 38);
  EXPECT_EQ(titles.front(), "Anarchism");
}

TEST(CorpusShared, EnwikiAllOfAAParses) {
  MCD_SHARED_OR_SKIP(test::enwiki_dir());
  const CorpusSpec spec{"auto", {test::enwiki_dir()}};
  const auto files = list_corpus_files(spec);
  ASSERT_EQ(files.size(), 100u);
  char real[PATH_MAX];
  ASSERT_NE(::realpath(test::enwiki_dir().c_str(), real), nullptr);
  const std::string dir = real;
  // Listed paths are absolute and normalised but symbolic links are kept, so compare real paths.
  auto real_of = [](const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
  };
  EXPECT_EQ(real_of(files.front()), dir + "/wiki_00");
  EXPECT_EQ(real_of(files.back()), dir + "/wiki_99");
  int64_t grep_total = 0;
  for (const auto& f : files) grep_total += test::grep_count_doc(f);
  int64_t bytes = 0;
  const int64_t n =
      for_each_document(spec, [&](std::string_view d) { bytes += int64_t(d.size()); });
  EXPECT_EQ(n, grep_total);
  EXPECT_EQ(n, 6512);  // grep -c '<doc ' over AA/* (data/README.md rounds this to "6,511")
  EXPECT_GT(bytes, 100'000'000);
}

TEST(CorpusShared, WikiText2ValidHas60Articles) {
  const std::string path = test::wikitext2_valid();
  MCD_SHARED_OR_SKIP(path);
  std::vector<std::string> docs = all_docs(CorpusSpec{"auto", {path}});
  ASSERT_EQ(docs.size(), 60u);  // WikiText-2/103 validation has 60 articles
  EXPECT_EQ(docs[0].rfind(" = Homarus gammarus = \n", 0), 0u) << docs[0].substr(0, 60);
  size_t total = 0;
  for (const auto& d : docs) total += d.size();
  EXPECT_EQ(total + 2, test::read_file(path).size());  // only the leading " \n" is not in a doc
}

}  // namespace
}  // namespace mcd::data
