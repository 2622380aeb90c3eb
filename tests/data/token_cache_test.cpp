// Tests for TokenCache (data/token_cache.h): build then reuse, what triggers a rebuild (source
// files, tokenizer, split), what is an error (truncated/corrupt token files, a corrupt sidecar),
// thread-count independence and the split rule. Most use a byte tokenizer written here, so they
// run without assets; the GPT-2 and ../shared ones skip when those are absent.
#include "data/token_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/hash64.h"
#include "data/unigram.h"
#include "data_test_util.h"

namespace mcd::data {
namespace {

using mcd::test::TempDir;

constexpr uint16_t kByteEot = 256;

// `n` small documents with varied lengths and contents, as WikiExtractor files of 10 docs each.
std::vector<std::string> write_corpus(const std::string& dir, int n) {
  std::vector<std::string> bodies;
  std::string file;
  for (int i = 0; i < n; ++i) {
    std::string body = "Doc " + std::to_string(i) + "\n\n";
    for (int k = 0; k <= i % 7; ++k)
      body += "Sentence " + std::to_string(k * 31 + i) + " of the thing.\n";
    bodies.push_back(body);
    file += "<doc id=\"" + std::to_string(i) + "\" title=\"Doc " + std::to_string(i) + "\">\n" +
            body + "</doc>\n";
    if (i % 10 == 9 || i == n - 1) {
      char name[32];
      std::snprintf(name, sizeof name, "/wiki_%02d", i / 10);
      test::write_file(dir + name, file);
      file.clear();
    }
  }
  return bodies;
}

// Splits a byte-tokenizer token stream back into documents at <|endoftext|>.
std::vector<std::string> byte_docs(const TokenSpan& t) {
  std::vector<std::string> docs;
  std::string cur;
  for (const uint16_t id : t) {
    if (id == kByteEot) {
      docs.push_back(cur);
      cur.clear();
    } else {
      EXPECT_LT(id, 256);
      cur += char(id);
    }
  }
  EXPECT_TRUE(cur.empty()) << "the stream must end with <|endoftext|>";
  return docs;
}

std::vector<uint16_t> tokens_of(const TokenSpan& t) {
  return std::vector<uint16_t>(t.begin(), t.end());
}

struct Fixture {
  TempDir tmp;
  std::string corpus = tmp.file("corpus");
  std::vector<std::string> bodies;
  std::vector<std::string> log;
  TokenCacheOptions options;
  CorpusSpec spec{"auto", {corpus}};

  explicit Fixture(int docs = 40) {
    bodies = write_corpus(corpus, docs);
    options.cache_dir = tmp.file("cache");
    options.val_fraction = 0.25;
    options.threads = 2;
    options.log = [this](const std::string& line) { log.push_back(line); };
  }
  TokenCache open(const BpeTokenizer& tok) { return TokenCache::open_or_build(spec, tok, options); }
  std::string train_bin() const { return options.cache_dir + "/train.bin"; }
  std::string meta_json() const { return options.cache_dir + "/meta.json"; }
};

TEST(TokenCache, BuildsThenReopensWithoutRebuilding) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  const TokenCache built = f.open(tok);
  EXPECT_NE(built.rebuild_reason().find("no cache"), std::string::npos) << built.rebuild_reason();
  ASSERT_EQ(f.log.size(), 2u);
  EXPECT_NE(f.log[0].find("rebuilding: no cache"), std::string::npos) << f.log[0];
  EXPECT_NE(f.log[1].find("built "), std::string::npos) << f.log[1];

  // Every document is in exactly one split, in corpus order, following the split rule.
  std::vector<std::string> want_train, want_val;
  for (const auto& b : f.bodies)
    (is_validation_document(b, 0.25, 0) ? want_val : want_train).push_back(b);
  ASSERT_FALSE(want_val.empty());
  ASSERT_FALSE(want_train.empty());
  EXPECT_EQ(byte_docs(built.train()), want_train);
  EXPECT_EQ(byte_docs(built.val()), want_val);
  const auto& meta = built.meta();
  EXPECT_EQ(meta["format_version"], kTokenCacheFormatVersion);
  EXPECT_EQ(meta["train"]["documents"], want_train.size());
  EXPECT_EQ(meta["val"]["documents"], want_val.size());
  EXPECT_EQ(meta["train"]["tokens"], built.train().size);
  EXPECT_EQ(meta["inputs"]["files"].size(), 4u);
  EXPECT_EQ(meta["inputs"]["tokenizer"]["fingerprint"], hex64(tok.fingerprint()));

  f.log.clear();
  const TokenCache reused = f.open(tok);
  EXPECT_EQ(reused.rebuild_reason(), "");
  EXPECT_TRUE(f.log.empty());
  EXPECT_EQ(tokens_of(reused.train()), tokens_of(built.train()));
  EXPECT_EQ(tokens_of(reused.val()), tokens_of(built.val()));
  // No temporary files are left behind.
  for (const std::string& name : fs::list_dir(f.options.cache_dir))
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
  // Opening by directory alone (no corpus at hand) gives the same tokens.
  EXPECT_EQ(tokens_of(TokenCache::open(f.options.cache_dir).train()), tokens_of(built.train()));
}

TEST(TokenCache, ChangedSourceFilesRebuild) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  f.open(tok);
  // A different size.
  test::write_file(f.corpus + "/wiki_01", "<doc id=\"x\" title=\"X\">\nX\n</doc>\n");
  TokenCache c = f.open(tok);
  EXPECT_NE(c.rebuild_reason().find("wiki_01' changed size"), std::string::npos)
      << c.rebuild_reason();
  EXPECT_NE(f.log.back().find("built"), std::string::npos);
  EXPECT_NE(f.log[f.log.size() - 2].find("changed size"), std::string::npos)
      << f.log[f.log.size() - 2];
  // Same size, new contents and mtime.
  test::write_file(f.corpus + "/wiki_01", "<doc id=\"x\" title=\"Y\">\nY\n</doc>\n");
  const timespec later[2] = {{0, UTIME_OMIT}, {::time(nullptr) + 5, 0}};  // mtime 5 s ahead
  ASSERT_EQ(::utimensat(AT_FDCWD, (f.corpus + "/wiki_01").c_str(), later, 0), 0);
  c = f.open(tok);
  EXPECT_NE(c.rebuild_reason().find("wiki_01' was modified"), std::string::npos)
      << c.rebuild_reason();
  EXPECT_NE(byte_docs(c.train()).size() + byte_docs(c.val()).size(), 0u);
  // A new file, then a removed one.
  test::write_file(f.corpus + "/wiki_zz", "<doc id=\"z\" title=\"Z\">\nZ\n</doc>\n");
  c = f.open(tok);
  EXPECT_NE(c.rebuild_reason().find("wiki_zz' is new"), std::string::npos) << c.rebuild_reason();
  fs::remove_file(f.corpus + "/wiki_00");
  c = f.open(tok);
  EXPECT_NE(c.rebuild_reason().find("wiki_00' is no longer in the corpus"), std::string::npos)
      << c.rebuild_reason();
  EXPECT_EQ(f.open(tok).rebuild_reason(), "");
}

TEST(TokenCache, DifferentTokenizerSplitOrLimitRebuilds) {
  Fixture f;
  const BpeTokenizer bytes = test::byte_tokenizer(f.tmp.path);
  const BpeTokenizer merged = test::byte_tokenizer(f.tmp.path, /*with_merge=*/true);
  ASSERT_NE(bytes.fingerprint(), merged.fingerprint());
  const TokenCache a = f.open(bytes);
  const int64_t a_tokens = a.train().size + a.val().size;
  const TokenCache b = f.open(merged);
  EXPECT_NE(b.rebuild_reason().find("tokenizer changed"), std::string::npos) << b.rebuild_reason();
  EXPECT_LT(b.train().size + b.val().size, a_tokens);  // "th" is one token now
  f.options.val_fraction = 0.5;
  const TokenCache c = f.open(merged);
  EXPECT_NE(c.rebuild_reason().find("split parameters changed"), std::string::npos)
      << c.rebuild_reason();
  f.options.split_seed = 7;
  EXPECT_NE(f.open(merged).rebuild_reason().find("split parameters changed"), std::string::npos);
  f.options.max_documents = 5;
  const TokenCache d = f.open(merged);
  EXPECT_NE(d.rebuild_reason().find("max_documents changed"), std::string::npos)
      << d.rebuild_reason();
  EXPECT_EQ(int64_t(d.meta()["train"]["documents"]) + int64_t(d.meta()["val"]["documents"]), 5);
  f.options.threads = 1;  // not an input: the output does not depend on it
  EXPECT_EQ(f.open(merged).rebuild_reason(), "");
  f.spec.format = "wikiextractor";
  EXPECT_NE(f.open(merged).rebuild_reason().find("corpus format changed"), std::string::npos);
}

TEST(TokenCache, TruncatedTokenFileIsAnErrorNamingIt) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  const int64_t bytes = int64_t(fs::file_size(f.open(tok).dir() + "/train.bin"));
  fs::resize_file(f.train_bin(), bytes - 2);
  const std::string e = test::error_of([&] { f.open(tok); });
  EXPECT_NE(e.find("'" + f.train_bin() + "'"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  EXPECT_NE(test::error_of([&] { TokenCache::open(f.options.cache_dir); }).find("truncated"),
            std::string::npos);
  // When the caller allows it, the cache is rebuilt instead (and says why).
  f.options.rebuild_if_invalid = true;
  const TokenCache c = f.open(tok);
  EXPECT_NE(c.rebuild_reason().find("invalid"), std::string::npos) << c.rebuild_reason();
  EXPECT_EQ(int64_t(fs::file_size(f.train_bin())), bytes);
  // A missing token file likewise.
  f.options.rebuild_if_invalid = false;
  fs::remove_file(f.options.cache_dir + "/val.bin");
  const std::string missing = test::error_of([&] { f.open(tok); });
  EXPECT_NE(missing.find("val.bin' is missing"), std::string::npos) << missing;
}

TEST(TokenCache, CorruptTokenFileFailsItsChecksum) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  f.open(tok);
  std::string data = test::read_file(f.train_bin());
  data[data.size() / 2] ^= 0x01;  // same size, one bit flipped
  test::write_file(f.train_bin(), data);
  const std::string e = test::error_of([&] { f.open(tok); });
  EXPECT_NE(e.find("'" + f.train_bin() + "' fails its checksum"), std::string::npos) << e;
  f.options.verify_checksum = false;  // opt-out: opens (for huge caches on trusted disks)
  EXPECT_EQ(f.open(tok).rebuild_reason(), "");
}

TEST(TokenCache, CorruptSidecarIsAnErrorUnlessRebuildAllowed) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  const auto want = tokens_of(f.open(tok).train());
  test::write_file(f.meta_json(), "{\"format_version\": 1, \"inputs\": {");
  std::string e = test::error_of([&] { f.open(tok); });
  EXPECT_NE(e.find("'" + f.meta_json() + "' is not a valid JSON object"), std::string::npos) << e;
  test::write_file(f.meta_json(), "[1, 2]");
  e = test::error_of([&] { f.open(tok); });
  EXPECT_NE(e.find(f.meta_json()), std::string::npos) << e;
  f.options.rebuild_if_invalid = true;
  const TokenCache c = f.open(tok);
  EXPECT_NE(c.rebuild_reason().find("invalid"), std::string::npos) << c.rebuild_reason();
  EXPECT_EQ(tokens_of(c.train()), want);
}

TEST(TokenCache, SidecarWithMatchingInputsButBadEntriesIsAnError) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  f.open(tok);
  auto meta = nlohmann::json::parse(test::read_file(f.meta_json()));
  meta["train"].erase("checksum");
  test::write_file(f.meta_json(), meta.dump());
  const std::string e = test::error_of([&] { f.open(tok); });
  EXPECT_NE(e.find("'" + f.meta_json() + "' is malformed"), std::string::npos) << e;
}

TEST(TokenCache, OlderFormatVersionRebuilds) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  f.open(tok);
  auto meta = nlohmann::json::parse(test::read_file(f.meta_json()));
  meta["format_version"] = 0;
  test::write_file(f.meta_json(), meta.dump());
  EXPECT_NE(f.open(tok).rebuild_reason().find("format version 0 -> 1"), std::string::npos);
}

TEST(TokenCache, OutputIsIdenticalForAnyThreadCount) {
  Fixture f(97);
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path, /*with_merge=*/true);
  std::string train, val;
  for (int threads : {1, 2, 3, 8}) {
    f.options.threads = threads;
    f.options.cache_dir = f.tmp.file("cache_t" + std::to_string(threads));
    f.open(tok);
    const std::string t = test::read_file(f.options.cache_dir + "/train.bin");
    const std::string v = test::read_file(f.options.cache_dir + "/val.bin");
    if (threads == 1) {
      train = t;
      val = v;
      ASSERT_FALSE(train.empty());
      ASSERT_FALSE(val.empty());
    } else {
      EXPECT_EQ(t, train) << threads << " threads";
      EXPECT_EQ(v, val) << threads << " threads";
    }
  }
}

TEST(TokenCache, HashIsPinned) {
  // Sidecars store checksums and the split depends on hash_bytes: these values never change.
  std::string bytes;
  for (int i = 0; i < 100; ++i) bytes += char(i * 7);
  EXPECT_EQ(hex64(hash_bytes("", 0)), "0x48218226ff3cd4bf");
  EXPECT_EQ(hex64(hash_bytes("hello world", 11)), "0xa60848a3dfbd693c");
  EXPECT_EQ(hex64(hash_bytes(bytes.data(), 100)), "0x5c31c4773330cc6d");
  EXPECT_EQ(hex64(hash_bytes(bytes.data(), 100, 1)), "0x82a3880872dc7cd1");
  // Every byte position matters, including the tail after the 32-byte blocks.
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] ^= 0x40;
    EXPECT_NE(hash_bytes(flipped.data(), 100), hash_bytes(bytes.data(), 100)) << i;
  }
  EXPECT_EQ(parse_hex64("0x5c31c4773330cc6d", "x"), hash_bytes(bytes.data(), 100));
  EXPECT_NE(
      test::error_of([] { parse_hex64("5c31", "sidecar.checksum"); }).find("sidecar.checksum"),
      std::string::npos);
}

TEST(TokenCache, SplitIsDeterministicAndNearTheFraction) {
  int val = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string doc = "document number " + std::to_string(i);
    const bool v = is_validation_document(doc, 0.1, 3);
    EXPECT_EQ(v, is_validation_document(doc, 0.1, 3));
    EXPECT_FALSE(is_validation_document(doc, 0.0, 3));
    EXPECT_TRUE(is_validation_document(doc, 1.0, 3));
    if (v)
      EXPECT_TRUE(is_validation_document(doc, 0.2, 3)) << "a larger fraction keeps val docs in val";
    val += v;
  }
  EXPECT_NEAR(val / 20000.0, 0.1, 0.01);
  // Another seed picks other documents.
  int same = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string doc = "document number " + std::to_string(i);
    same += is_validation_document(doc, 0.5, 3) == is_validation_document(doc, 0.5, 4);
  }
  EXPECT_LT(same, 1200);
  EXPECT_GT(same, 800);
}

TEST(TokenCache, SplitExtremesAndArgumentChecks) {
  Fixture f;
  const BpeTokenizer tok = test::byte_tokenizer(f.tmp.path);
  f.options.val_fraction = 0;
  TokenCache c = f.open(tok);
  EXPECT_EQ(c.val().size, 0);
  EXPECT_EQ(byte_docs(c.train()), f.bodies);
  f.options.val_fraction = 1;
  c = f.open(tok);
  EXPECT_EQ(c.train().size, 0);
  EXPECT_EQ(byte_docs(c.val()), f.bodies);
  f.options.val_fraction = 1.5;
  EXPECT_NE(test::error_of([&] { f.open(tok); }).find("val_fraction"), std::string::npos);
  f.options.val_fraction = 0.1;
  test::write_file(f.tmp.file("blank/a.txt"), " \n\n");
  const std::string e = test::error_of([&] {
    TokenCache::open_or_build(CorpusSpec{"text", {f.tmp.file("blank")}}, tok, f.options);
  });
  EXPECT_NE(e.find("has no non-blank documents"), std::string::npos) << e;
  f.options.cache_dir = "";
  EXPECT_NE(test::error_of([&] { f.open(tok); }).find("cache_dir"), std::string::npos);
}

// ---- GPT-2 and ../shared ----

TEST(TokenCacheGpt2, WikiText2ValidSameForOneAndTwoThreads) {
  MCD_GPT2_OR_SKIP(gpt2);
  const std::string path = test::wikitext2_valid();
  MCD_SHARED_OR_SKIP(path);
  TempDir tmp;
  TokenCacheOptions options;
  options.val_fraction = 0.1;
  options.log = [](const std::string&) {};
  std::vector<std::vector<uint16_t>> outs;
  for (int threads : {1, 2}) {
    options.threads = threads;
    options.cache_dir = tmp.file("c" + std::to_string(threads));
    const TokenCache c = TokenCache::open_or_build(CorpusSpec{"auto", {path}}, gpt2, options);
    EXPECT_EQ(int64_t(c.meta()["train"]["documents"]) + int64_t(c.meta()["val"]["documents"]), 60);
    std::vector<uint16_t> all = tokens_of(c.train());
    const auto v = tokens_of(c.val());
    all.insert(all.end(), v.begin(), v.end());
    outs.push_back(all);
  }
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_GT(outs[0].size(), 200000u);
  EXPECT_EQ(outs[0].back(), gpt2.eot_id());
}

TEST(TokenCacheGpt2, EnwikiFilesTokenizeAndDecodeBack) {
  MCD_GPT2_OR_SKIP(gpt2);
  MCD_SHARED_OR_SKIP(test::enwiki_dir());
  TempDir tmp;
  TokenCacheOptions options;
  options.cache_dir = tmp.file("cache");
  options.val_fraction = 0.05;
  options.threads = 2;
  std::string line;
  options.log = [&](const std::string& l) { line += l + "\n"; };
  const CorpusSpec spec{"wikiextractor",
                        {test::enwiki_dir() + "/wiki_00", test::enwiki_dir() + "/wiki_01"}};
  const TokenCache c = TokenCache::open_or_build(spec, gpt2, options);
  std::cout << line;
  const int64_t docs =
      c.meta()["train"]["documents"].get<int64_t>() + c.meta()["val"]["documents"].get<int64_t>();
  EXPECT_EQ(docs, test::grep_count_doc(spec.paths[0]) + test::grep_count_doc(spec.paths[1]));
  // The train stream decodes to the first train document, then <|endoftext|>.
  std::vector<std::string> train_docs;
  for_each_document(spec, [&](std::string_view d) {
    if (!is_validation_document(d, 0.05, 0)) train_docs.emplace_back(d);
  });
  const TokenSpan t = c.train();
  const uint16_t* eot = std::find(t.begin(), t.end(), uint16_t(gpt2.eot_id()));
  ASSERT_NE(eot, t.end());
  const std::vector<int32_t> first(t.begin(), eot);
  EXPECT_EQ(gpt2.decode(first), train_docs.front());
  EXPECT_EQ(std::count(t.begin(), t.end(), uint16_t(gpt2.eot_id())), int64_t(train_docs.size()));
}

// Times a build of all of enwiki2015/AA (the number in docs/data.md). Run by hand:
//   build-data/tests/test_data --gtest_also_run_disabled_tests --gtest_filter='*FullEnwikiAA*'
TEST(TokenCacheGpt2, DISABLED_FullEnwikiAABuildTime) {
  MCD_GPT2_OR_SKIP(gpt2);
  MCD_SHARED_OR_SKIP(test::enwiki_dir());
  TempDir tmp;
  for (int threads : {1, 2}) {
    TokenCacheOptions options;
    options.cache_dir = tmp.file("cache" + std::to_string(threads));
    options.threads = threads;
    options.log = [](const std::string& l) { std::cout << l << "\n"; };
    const auto t0 = std::chrono::steady_clock::now();
    const TokenCache c =
        TokenCache::open_or_build(CorpusSpec{"auto", {test::enwiki_dir()}}, gpt2, options);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << threads << " threads: " << c.train().size + c.val().size << " tokens in " << s
              << " s\n";
    const auto t1 = std::chrono::steady_clock::now();
    const TokenCache again =
        TokenCache::open_or_build(CorpusSpec{"auto", {test::enwiki_dir()}}, gpt2, options);
    std::cout << "reopen with checksum: "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count()
              << " s\n";
    EXPECT_EQ(again.rebuild_reason(), "");
    if (threads == 2) {  // the unigram baseline, on the split's val and on WikiText-2 valid
      const UnigramModel uni = UnigramModel::fit(c.train(), int64_t(gpt2.vocab_size()));
      std::cout << "unigram cross-entropy on the val split: " << uni.cross_entropy(c.val())
                << " nats/token\n";
      if (fs::exists(test::wikitext2_valid())) {
        options.cache_dir = tmp.file("wt2");
        options.val_fraction = 1;
        const TokenCache wt2 =
            TokenCache::open_or_build(CorpusSpec{"auto", {test::wikitext2_valid()}}, gpt2, options);
        std::cout << "unigram cross-entropy on WikiText-2 valid: " << uni.cross_entropy(wt2.val())
                  << " nats/token over " << wt2.val().size << " tokens\n";
      }
    }
  }
}

}  // namespace
}  // namespace mcd::data
