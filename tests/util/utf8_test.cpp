// Tests for util/utf8.h: each encoded length at both of its boundaries, byte for byte (RFC 3629's
// table), and a round of code points decoded back by hand.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "util/utf8.h"

namespace mcd {
namespace {

std::string encoded(uint32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

TEST(Utf8, EachLengthAtItsBoundaries) {
  EXPECT_EQ(encoded(0x00), std::string(1, '\0'));
  EXPECT_EQ(encoded(0x7F), "\x7F");
  EXPECT_EQ(encoded(0x80), "\xC2\x80");
  EXPECT_EQ(encoded(0x7FF), "\xDF\xBF");
  EXPECT_EQ(encoded(0x800), "\xE0\xA0\x80");
  EXPECT_EQ(encoded(0x20AC), "\xE2\x82\xAC");  // €
  EXPECT_EQ(encoded(0xFFFF), "\xEF\xBF\xBF");
  EXPECT_EQ(encoded(0x10000), "\xF0\x90\x80\x80");
  EXPECT_EQ(encoded(0x1F600), "\xF0\x9F\x98\x80");  // 😀
  EXPECT_EQ(encoded(0x10FFFF), "\xF4\x8F\xBF\xBF");
}

TEST(Utf8, AppendsAfterWhatIsThere) {
  std::string s = "a";
  append_utf8(s, 0xE9);  // é
  append_utf8(s, 'b');
  EXPECT_EQ(s, "a\xC3\xA9" "b");
}

// Decoding by the lead byte's length recovers every code point of a stride through the range.
TEST(Utf8, DecodesBackToTheCodePoint) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp += 97) {
    const std::string s = encoded(cp);
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const size_t len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    ASSERT_EQ(s.size(), len) << cp;
    uint32_t back = len == 1 ? b(0) : b(0) & (0x7F >> len);
    for (size_t i = 1; i < len; ++i) {
      ASSERT_EQ(b(i) & 0xC0, 0x80) << cp;
      back = (back << 6) | (b(i) & 0x3F);
    }
    ASSERT_EQ(back, cp);
  }
}

}  // namespace
}  // namespace mcd
