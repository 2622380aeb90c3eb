// Lookups over the generated class table (unicode_tables.cpp) and the forgiving UTF-8 decoder
// declared in unicode_tables.h; pretokenizer.cpp calls these for every non-ASCII character.
#include <algorithm>

#include "data/tokenizer/unicode_tables.h"

namespace mcd::data {
namespace {

// Direct table for U+0000..U+07FF (all one- and two-byte characters: Latin, Greek, Cyrillic,
// Hebrew, Arabic), built once from the runs; everything above is a binary search.
constexpr uint32_t kDirectLimit = 0x800;

struct DirectTable {
  CharClass cls[kDirectLimit];
  DirectTable() {
    size_t run = 0;
    for (uint32_t cp = 0; cp < kDirectLimit; ++cp) {
      while (run + 1 < kUnicodeRunCount && (kUnicodeRuns[run + 1] >> 2) <= cp) ++run;
      cls[cp] = CharClass(kUnicodeRuns[run] & 3);
    }
  }
};

const DirectTable& direct_table() {
  static const DirectTable table;
  return table;
}

}  // namespace

CharClass char_class(uint32_t code_point) {
  if (code_point < kDirectLimit) return direct_table().cls[code_point];
  if (code_point > 0x10FFFF) return CharClass::kOther;
  // Last run whose start <= code_point. Entries compare by start because class bits are low.
  const uint32_t key = (code_point << 2) | 3u;
  const uint32_t* end = kUnicodeRuns + kUnicodeRunCount;
  const uint32_t* it = std::upper_bound(kUnicodeRuns, end, key);
  return CharClass(*(it - 1) & 3);
}

Utf8Char decode_utf8(const unsigned char* p, const unsigned char* end) {
  const unsigned char b0 = p[0];
  const Utf8Char invalid{b0, 1, false};
  if (b0 < 0x80) return {b0, 1, true};
  uint32_t length, cp, min_cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2, cp = b0 & 0x1F, min_cp = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3, cp = b0 & 0x0F, min_cp = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4, cp = b0 & 0x07, min_cp = 0x10000;
  } else {
    return invalid;  // continuation byte, C0/C1 (always overlong), F5..FF
  }
  if (size_t(end - p) < length) return invalid;
  for (uint32_t i = 1; i < length; ++i) {
    if ((p[i] & 0xC0) != 0x80) return invalid;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return invalid;
  return {cp, length, true};
}

bool is_valid_utf8(const char* data, size_t size) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  const auto* end = p + size;
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const Utf8Char c = decode_utf8(p, end);
    if (!c.valid) return false;
    p += c.length;
  }
  return true;
}

}  // namespace mcd::data
