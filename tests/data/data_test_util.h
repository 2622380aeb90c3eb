// Helpers shared by the data tests (corpus, token cache, batches, unigram): writing files,
// a tiny byte-level tokenizer written as tokenizer.json (so cache tests need no assets), the
// GPT-2 tokenizer with a skip when its assets are absent, and ../shared paths with a skip.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/byte_level.h"
#include "test_support.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::data::test {

inline void write_file(const std::string& path, const std::string& content) {
  mcd::fs::make_dirs(mcd::fs::parent_path(path));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of the mcd::Error `f` throws, or "(no error)".
using ::mcd::test::error_of;

// A byte-level BPE whose ids 0..255 are the bytes themselves and 256 is <|endoftext|>; with
// `with_merge`, also "t"+"h" -> 257 (a different fingerprint, and "th" becomes one token).
inline BpeTokenizer byte_tokenizer(const std::string& dir, bool with_merge = false) {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_encode(std::string(1, char(b)))] = b;
  vocab["<|endoftext|>"] = 256;
  json merges = json::array();
  if (with_merge) {
    vocab["th"] = 257;
    merges.push_back("t h");
  }
  const json doc = {
      {"version", "1.0"},
      {"added_tokens", json::array({json{{"id", 256},
                                         {"content", "<|endoftext|>"},
                                         {"special", true},
                                         {"lstrip", false},
                                         {"rstrip", false},
                                         {"single_word", false},
                                         {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merges}}}};
  const std::string path = dir + (with_merge ? "/tok_merge.json" : "/tok_bytes.json");
  write_file(path, doc.dump());
  return BpeTokenizer::from_hf_tokenizer_json(path);
}

// GPT-2 from the default place, loaded once; null (with the reason in `why`) when absent.
inline const BpeTokenizer* gpt2_or_null(std::string& why) {
  static std::string error;
  static const std::unique_ptr<BpeTokenizer> tok = []() -> std::unique_ptr<BpeTokenizer> {
    try {
      return std::make_unique<BpeTokenizer>(BpeTokenizer::load_default());
    } catch (const mcd::Error& e) {
      error = e.what();
      return nullptr;
    }
  }();
  why = error;
  return tok.get();
}

inline std::string enwiki_dir() { return mcd::test::shared_dir() + "/data/enwiki2015/AA"; }
inline std::string wikitext2_valid() {
  return mcd::test::shared_dir() + "/data/wikitext2/wiki.valid.tokens";
}

// Lines containing "<doc " (what `grep -c '<doc '` prints).
inline int64_t grep_count_doc(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) n += line.find("<doc ") != std::string::npos;
  return n;
}

}  // namespace mcd::data::test

// Declares `const BpeTokenizer& var` = GPT-2, or skips the test when the assets are missing.
#define MCD_GPT2_OR_SKIP(var)                                                              \
  std::string var##_why;                                                                   \
  const ::mcd::data::BpeTokenizer* var##_ptr = ::mcd::data::test::gpt2_or_null(var##_why); \
  if (!var##_ptr)                                                                          \
    GTEST_SKIP() << "GPT-2 assets not found (" << var##_why                                \
                 << "); run scripts/fetch_assets.sh --gpt2-only";                          \
  const ::mcd::data::BpeTokenizer& var = *var##_ptr

#define MCD_SHARED_OR_SKIP(path)                                                                 \
  do {                                                                                           \
    if (!::mcd::fs::exists(path))                                                                \
      GTEST_SKIP() << (path) << " not found (../shared is absent in this clone; MCD_SHARED_DIR=" \
                   << ::mcd::test::shared_dir() << ")";                                          \
  } while (0)
