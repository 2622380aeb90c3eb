// The GPT-2 pre-tokenizer as a scanner (see pretokenizer.h): one pass, each step decides
// which regex alternative matches first at the current position. ASCII is classified by a
// 128-entry table; other characters go through the generated Unicode tables.
#include "data/tokenizer/pretokenizer.h"

#include <array>

#include "data/tokenizer/unicode_tables.h"

namespace mcd::data {
namespace {

struct AsciiTable {
  std::array<CharClass, 128> cls;
  AsciiTable() {
    for (uint32_t c = 0; c < 128; ++c) cls[c] = char_class(c);
  }
};

const AsciiTable& ascii_table() {
  static const AsciiTable table;
  return table;
}

struct Peek {
  CharClass cls;
  size_t length;
};

inline Peek peek(const unsigned char* p, const unsigned char* end,
                 const std::array<CharClass, 128>& ascii) {
  if (*p < 0x80) return {ascii[*p], 1};
  const Utf8Char c = decode_utf8(p, end);
  if (!c.valid) return {CharClass::kOther, 1};
  return {char_class(c.code_point), c.length};
}

}  // namespace

bool PieceSplitter::next(std::string_view& piece) {
  const size_t n = text_.size();
  if (pos_ >= n) return false;
  const auto* base = reinterpret_cast<const unsigned char*>(text_.data());
  const auto* end = base + n;
  const auto& ascii = ascii_table().cls;
  const size_t start = pos_;
  const unsigned char b0 = base[start];

  auto emit = [&](size_t stop) {
    piece = text_.substr(start, stop - start);
    pos_ = stop;
    return true;
  };

  // 's 't 're 've 'm 'll 'd (case-sensitive, as in the regex).
  if (b0 == '\'' && start + 1 < n) {
    const unsigned char b1 = base[start + 1];
    if (b1 == 's' || b1 == 't' || b1 == 'm' || b1 == 'd') return emit(start + 2);
    if (start + 2 < n) {
      const unsigned char b2 = base[start + 2];
      if ((b1 == 'r' && b2 == 'e') || (b1 == 'v' && b2 == 'e') || (b1 == 'l' && b2 == 'l')) {
        return emit(start + 3);
      }
    }
  }

  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020 then a run of one class.
  Peek first = peek(base + start, end, ascii);
  size_t run_start = start;
  if (b0 == ' ' && start + 1 < n) {
    const Peek second = peek(base + start + 1, end, ascii);
    if (second.cls != CharClass::kSpace) {
      first = second;
      run_start = start + 1;
    }
  }
  if (first.cls != CharClass::kSpace) {
    const CharClass cls = first.cls;
    size_t k = run_start + first.length;
    while (k < n) {
      const Peek c = peek(base + k, end, ascii);
      if (c.cls != cls) break;
      k += c.length;
    }
    return emit(k);
  }

  // `\s+(?!\S)` then `\s+`: a whitespace run followed by a non-space gives up its last
  // character (which then prefixes the next word), unless the run is a single character.
  size_t k = start + first.length;
  size_t last_start = start;
  while (k < n) {
    const Peek c = peek(base + k, end, ascii);
    if (c.cls != CharClass::kSpace) break;
    last_start = k;
    k += c.length;
  }
  if (k < n && last_start > start) return emit(last_start);
  return emit(k);
}

}  // namespace mcd::data
