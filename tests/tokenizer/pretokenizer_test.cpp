// Tests for the pre-tokenizer (pretokenizer.h), the Unicode class tables and UTF-8 decoder
// (unicode_tables.h) and the byte-level alphabet (byte_level.h). Expected pieces were checked
// against node's /'s|'t|...|\s+/gu regex, which js-tiktoken uses.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/tokenizer/byte_level.h"
#include "data/tokenizer/pretokenizer.h"
#include "data/tokenizer/unicode_tables.h"
#include "tokenizer_test_util.h"

namespace mcd::data {
namespace {

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  PieceSplitter s(text);
  std::string_view p;
  while (s.next(p)) out.emplace_back(p);
  return out;
}

using V = std::vector<std::string>;

TEST(TokenizerPretokenize, RegexAlternatives) {
  EXPECT_EQ(pieces(""), V{});
  EXPECT_EQ(pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces("I'm fine"), (V{"I", "'m", " fine"}));
  EXPECT_EQ(pieces("it's 'S"), (V{"it", "'s", " '", "S"}));
  EXPECT_EQ(pieces("we'll they're you've he'd"),
            (V{"we", "'ll", " they", "'re", " you", "'ve", " he", "'d"}));
  EXPECT_EQ(pieces("  hello"), (V{" ", " hello"}));
  EXPECT_EQ(pieces("a\n\nb"), (V{"a", "\n", "\n", "b"}));
  EXPECT_EQ(pieces("x   "), (V{"x", "   "}));
  EXPECT_EQ(pieces("x !!"), (V{"x", " !!"}));
  EXPECT_EQ(pieces("123abc"), (V{"123", "abc"}));
  EXPECT_EQ(pieces("12 345"), (V{"12", " 345"}));
  EXPECT_EQ(pieces("\t\t x"), (V{"\t\t", " x"}));
  EXPECT_EQ(pieces("a  \n  b"), (V{"a", "  \n ", " b"}));
  EXPECT_EQ(pieces("'"), (V{"'"}));
  EXPECT_EQ(pieces("'l"), (V{"'", "l"}));
}

TEST(TokenizerPretokenize, UnicodeClasses) {
  EXPECT_EQ(pieces("h\xC3\xA9llo w\xC3\xB6rld"), (V{"h\xC3\xA9llo", " w\xC3\xB6rld"}));
  EXPECT_EQ(pieces("e\xCC\x81"), (V{"e", "\xCC\x81"}));              // combining acute: not L
  EXPECT_EQ(pieces("a\xC2\xA0" "b"), (V{"a", "\xC2\xA0", "b"}));      // NBSP is \s, no prefix
  EXPECT_EQ(pieces("a \xC2\xA0" "b"), (V{"a", " ", "\xC2\xA0", "b"}));
  EXPECT_EQ(pieces("\xD9\xA1\xD9\xA2x"), (V{"\xD9\xA1\xD9\xA2", "x"}));  // Arabic-Indic digits
  EXPECT_EQ(pieces("\xE4\xB8\xAD\xE6\x96\x87 ok"), (V{"\xE4\xB8\xAD\xE6\x96\x87", " ok"}));
}

TEST(TokenizerPretokenize, InvalidUtf8BytesAreOtherCharacters) {
  // Each invalid byte is one non-letter, non-number, non-space character: it joins a run of
  // punctuation and splits letters.
  EXPECT_EQ(pieces("Ab\xFF\xFE!c"), (V{"Ab", "\xFF\xFE!", "c"}));
  EXPECT_EQ(pieces("a \xC3"), (V{"a", " \xC3"}));                    // truncated sequence
  EXPECT_EQ(pieces("\xED\xA0\x80x"), (V{"\xED\xA0\x80", "x"}));      // encoded surrogate
  EXPECT_EQ(pieces("\xC0\xAF"), (V{"\xC0\xAF"}));                    // overlong '/'
}

TEST(TokenizerPretokenize, PiecesTileArbitraryBytes) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string text(size_t(rng() % 200), '\0');
    for (auto& c : text) c = char(rng() % 4 == 0 ? "a 'ls\n\t1"[rng() % 9] : rng());
    std::string joined;
    for (const auto& p : pieces(text)) {
      ASSERT_FALSE(p.empty());
      joined += p;
    }
    ASSERT_EQ(joined, text);
  }
}

TEST(TokenizerUnicode, CharClassSamples) {
  EXPECT_EQ(char_class('a'), CharClass::kLetter);
  EXPECT_EQ(char_class('Z'), CharClass::kLetter);
  EXPECT_EQ(char_class('5'), CharClass::kNumber);
  EXPECT_EQ(char_class(' '), CharClass::kSpace);
  EXPECT_EQ(char_class('\t'), CharClass::kSpace);
  EXPECT_EQ(char_class('\v'), CharClass::kSpace);
  EXPECT_EQ(char_class('!'), CharClass::kOther);
  EXPECT_EQ(char_class('_'), CharClass::kOther);
  EXPECT_EQ(char_class(0x1F), CharClass::kOther);  // JS \s excludes the C0 separators
  EXPECT_EQ(char_class(0xA0), CharClass::kSpace);
  EXPECT_EQ(char_class(0x85), CharClass::kOther);  // NEL: not JS \s
  EXPECT_EQ(char_class(0xFEFF), CharClass::kSpace);  // BOM: JS \s
  EXPECT_EQ(char_class(0x3000), CharClass::kSpace);
  EXPECT_EQ(char_class(0x2028), CharClass::kSpace);
  EXPECT_EQ(char_class(0x0661), CharClass::kNumber);
  EXPECT_EQ(char_class(0x0967), CharClass::kNumber);
  EXPECT_EQ(char_class(0x216B), CharClass::kNumber);  // Roman numeral twelve (Nl)
  EXPECT_EQ(char_class(0x00B2), CharClass::kNumber);  // superscript two (No)
  EXPECT_EQ(char_class(0x4E2D), CharClass::kLetter);
  EXPECT_EQ(char_class(0x3005), CharClass::kLetter);  // Lm
  EXPECT_EQ(char_class(0x0301), CharClass::kOther);   // Mn
  EXPECT_EQ(char_class(0x1F600), CharClass::kOther);
  EXPECT_EQ(char_class(0x20000), CharClass::kLetter);  // CJK extension B
  EXPECT_EQ(char_class(0x1D7D8), CharClass::kNumber);  // mathematical double-struck zero
  EXPECT_EQ(char_class(0x10FFFF), CharClass::kOther);
  EXPECT_EQ(char_class(0x110000), CharClass::kOther);
}

TEST(TokenizerUnicode, TableMatchesNodeRegex) {
  if (!test::have_node()) GTEST_SKIP() << "node not on PATH: table not re-derived";
  int status = 0;
  const std::string out = test::run_command(
      "node '" + std::string(MCD_SOURCE_DIR) + "/scripts/gen_unicode_tables.js' --runs", status);
  ASSERT_EQ(status, 0);
  const auto doc = nlohmann::json::parse(out);
  if (doc["unicode"].get<std::string>() != kUnicodeTablesVersion) {
    GTEST_SKIP() << "this node has Unicode " << doc["unicode"].get<std::string>()
                 << ", the table was generated from " << kUnicodeTablesVersion;
  }
  const auto& runs = doc["runs"];
  ASSERT_EQ(runs.size(), kUnicodeRunCount);
  for (size_t i = 0; i < kUnicodeRunCount; ++i) {
    ASSERT_EQ(runs[i][0].get<uint32_t>(), kUnicodeRuns[i] >> 2) << "run " << i;
    ASSERT_EQ(runs[i][1].get<uint32_t>(), kUnicodeRuns[i] & 3) << "run " << i;
    // char_class agrees at both ends of every run.
    const uint32_t first = kUnicodeRuns[i] >> 2;
    const uint32_t last = i + 1 < kUnicodeRunCount ? (kUnicodeRuns[i + 1] >> 2) - 1 : 0x10FFFF;
    ASSERT_EQ(uint32_t(char_class(first)), kUnicodeRuns[i] & 3) << std::hex << first;
    ASSERT_EQ(uint32_t(char_class(last)), kUnicodeRuns[i] & 3) << std::hex << last;
  }
}

TEST(TokenizerUnicode, Utf8Decoder) {
  auto dec = [](std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    return decode_utf8(p, p + s.size());
  };
  Utf8Char c = dec("\xF0\x9F\x98\x80");
  EXPECT_TRUE(c.valid);
  EXPECT_EQ(c.code_point, 0x1F600u);
  EXPECT_EQ(c.length, 4u);
  c = dec("\xE2\x82\xAC");
  EXPECT_TRUE(c.valid);
  EXPECT_EQ(c.code_point, 0x20ACu);
  for (std::string_view bad : {"\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                               "\xE2\x82", "\x80", "\xFF", "\xC3\x28"}) {
    c = dec(bad);
    EXPECT_FALSE(c.valid);
    EXPECT_EQ(c.length, 1u);
  }
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9", 3));
  EXPECT_FALSE(is_valid_utf8("h\xC3", 2));
}

TEST(TokenizerByteLevel, AlphabetAndRoundTrip) {
  const auto& map = byte_to_unicode();
  EXPECT_EQ(map[' '], 0x120u);   // 'Ġ'
  EXPECT_EQ(map['\n'], 0x10Au);  // 'Ċ'
  EXPECT_EQ(map['a'], uint32_t('a'));
  EXPECT_EQ(map[0xAD], 0x143u);  // soft hyphen, the last non-printable
  std::set<uint32_t> distinct(map.begin(), map.end());
  EXPECT_EQ(distinct.size(), 256u);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(char(b));
  std::string back;
  ASSERT_TRUE(byte_level_decode(byte_level_encode(all), back));
  EXPECT_EQ(back, all);
  EXPECT_EQ(byte_level_encode(" the"), "\xC4\xA0the");
  EXPECT_FALSE(byte_level_decode("\xE2\x82\xAC", back));  // '€' is not in the alphabet
  EXPECT_FALSE(byte_level_decode(" ", back));             // nor is a raw space
}

}  // namespace
}  // namespace mcd::data
