// Parity of BpeTokenizer with js-tiktoken's gpt2 encoding, run live through
// js_tiktoken_encode.js: on the committed hard cases, on random text mixing every Unicode class,
// and on ../shared corpora. Skips with a message when node, js-tiktoken or the data are absent.
#include "util/fs.h"
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/unicode_tables.h"
#include "tokenizer_test_util.h"
#include "util/utf8.h"

namespace mcd::data {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// Compares id lists and, on a mismatch, shows where in the text it happens.
void expect_same_ids(const Ids& ours, const Ids& theirs, const BpeTokenizer& tok,
                     const std::string& what) {
  if (ours == theirs) return;
  size_t i = 0;
  while (i < ours.size() && i < theirs.size() && ours[i] == theirs[i]) ++i;
  const size_t from = i >= 8 ? i - 8 : 0;
  auto window = [&](const Ids& ids) {
    std::string s;
    for (size_t k = from; k < std::min(ids.size(), i + 8); ++k) s += std::to_string(ids[k]) + " ";
    return s;
  };
  ADD_FAILURE() << what << ": ids differ at index " << i << " (ours " << ours.size()
                << " ids, js-tiktoken " << theirs.size() << ")\n  ours:  " << window(ours)
                << "\n  js:    " << window(theirs) << "\n  text near there: "
                << json(tok.decode(Ids(theirs.begin() + long(from),
                                       theirs.begin() + long(std::min(theirs.size(), i + 8)))))
                       .dump(-1, ' ', false, json::error_handler_t::replace);
}

void check_file(const std::string& path) {
  const auto& tok = test::gpt2();
  const std::string text = test::read_file(path);
  if (!is_valid_utf8(text.data(), text.size())) {
    GTEST_SKIP() << path << " is not valid UTF-8; node would replace bytes, so no comparison";
  }
  const Ids theirs = test::js_tiktoken_file_ids(path);
  ASSERT_FALSE(theirs.empty()) << path;
  expect_same_ids(tok.encode(text), theirs, tok, path);
}

TEST(TokenizerParity, HardCasesLive) {
  MCD_REQUIRE_GPT2();
  MCD_REQUIRE_JS_TIKTOKEN();
  int status = 0;
  const std::string out = test::run_command("node '" + test::js_script() + "' '" +
                                                test::assets_root() + "' --cases '" +
                                                test::hard_cases_path() + "'",
                                            status);
  ASSERT_EQ(status, 0);
  const json live = json::parse(out);
  const json doc = json::parse(test::read_file(test::hard_cases_path()));
  ASSERT_EQ(live.size(), doc["cases"].size());
  const auto& tok = test::gpt2();
  for (size_t i = 0; i < live.size(); ++i) {
    const auto& c = doc["cases"][i];
    const std::string text = c["text"].get<std::string>();
    const Ids ours = c["allow_special"].get<bool>() ? tok.encode_allow_special(text)
                                                    : tok.encode(text);
    EXPECT_EQ(live[i].get<Ids>(), c["ids"].get<Ids>()) << "committed ids are stale: " << c["name"];
    expect_same_ids(ours, live[i].get<Ids>(), tok, c["name"].get<std::string>());
  }
}

// Text built from runs of characters of every class the pre-tokenizer distinguishes, plus the
// near-misses (U+0085, U+180E, U+200B, U+001C..U+001F are not JS \s; U+FEFF is).
std::string random_mixed_text(uint32_t seed, size_t target_bytes) {
  std::mt19937 rng(seed);
  const std::vector<std::string> fragments = {
      " ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "'s", "'t", "'re", "'ve", "'m", "'ll",
      "'d", "'S", "'LL", "'", "<|endoftext|>", ".", ",", "!!", "?", "-", "(", ")", "\"", "$"};
  const std::vector<uint32_t> spaces = {0x0B, 0x0C, 0xA0, 0x1680, 0x2000, 0x2005, 0x200A, 0x2028,
                                        0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF, 0x85, 0x180E,
                                        0x200B, 0x1C, 0x1F};
  const std::vector<std::pair<uint32_t, uint32_t>> blocks = {
      {'a', 'z'},        {'A', 'Z'},         {'0', '9'},         {0x370, 0x3FF},
      {0x400, 0x4FF},    {0x600, 0x6FF},     {0x900, 0x97F},     {0x4E00, 0x9FFF},
      {0xAC00, 0xD7A3},  {0x300, 0x36F},     {0x1F300, 0x1FAFF}, {0x2160, 0x2188},
      {0xFF10, 0xFF5A},  {0xE0000, 0xE007F}, {0x20000, 0x2A6DF}, {0x1D400, 0x1D7FF}};
  std::string text;
  while (text.size() < target_bytes) {
    switch (rng() % 5) {
      case 0:
        text += fragments[rng() % fragments.size()];
        break;
      case 1:
        append_utf8(text, spaces[rng() % spaces.size()]);
        break;
      case 2: {  // any scalar value, assigned or not
        uint32_t cp = 1 + rng() % 0x10FFFF;
        if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;
        append_utf8(text, cp);
        break;
      }
      default: {  // a run from one block
        const auto [lo, hi] = blocks[rng() % blocks.size()];
        for (size_t n = 1 + rng() % 8; n > 0; --n) append_utf8(text, lo + rng() % (hi - lo + 1));
      }
    }
  }
  return text;
}

TEST(TokenizerParity, RandomMixedUnicodeText) {
  MCD_REQUIRE_GPT2();
  MCD_REQUIRE_JS_TIKTOKEN();
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::string text = random_mixed_text(seed, 100000);
    const std::string path = test::temp_path("random.txt");
    test::write_file(path, text);
    const auto& tok = test::gpt2();
    expect_same_ids(tok.encode(text), test::js_tiktoken_file_ids(path), tok,
                    "random text, seed " + std::to_string(seed));
  }
}

std::string shared_file(const std::string& rel) {
  return std::string(MCD_SHARED_DIR) + "/data/" + rel;
}

#define MCD_REQUIRE_SHARED(path)                                                          \
  do {                                                                                    \
    if (!::mcd::fs::exists(path))                                                   \
      GTEST_SKIP() << path << " absent (MCD_SHARED_DIR=" << MCD_SHARED_DIR << ")";        \
  } while (0)

TEST(TokenizerParity, WikitextValid) {
  MCD_REQUIRE_GPT2();
  MCD_REQUIRE_JS_TIKTOKEN();
  const std::string path = shared_file("wikitext2/wiki.valid.tokens");
  MCD_REQUIRE_SHARED(path);
  check_file(path);
}

TEST(TokenizerParity, Enwiki2015Files) {
  MCD_REQUIRE_GPT2();
  MCD_REQUIRE_JS_TIKTOKEN();
  for (const char* name : {"wiki_00", "wiki_03", "wiki_07"}) {
    const std::string path = shared_file(std::string("enwiki2015/AA/") + name);
    MCD_REQUIRE_SHARED(path);
    check_file(path);
  }
}

}  // namespace
}  // namespace mcd::data
