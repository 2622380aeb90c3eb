// The byte <-> symbol tables of byte_level.h, built once on first use.
// Encoding is a table walk; decoding reverse-maps the two-byte UTF-8 symbols (all are < U+0144).
#include "data/tokenizer/byte_level.h"

#include "data/tokenizer/unicode_tables.h"
#include "util/utf8.h"

namespace mcd::data {
namespace {

struct Tables {
  std::array<uint32_t, 256> to_unicode;
  std::array<int16_t, 512> to_byte;  // code point -> byte, -1 outside the alphabet
  Tables() {
    to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      to_unicode[b] = printable(b) ? uint32_t(b) : next_extra++;
      to_byte[to_unicode[b]] = int16_t(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::array<uint32_t, 256>& byte_to_unicode() { return tables().to_unicode; }

std::string byte_level_encode(std::string_view bytes) {
  const auto& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_utf8(out, t.to_unicode[b]);
  return out;
}

bool byte_level_decode(std::string_view text, std::string& bytes) {
  const auto& t = tables();
  bytes.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const Utf8Char c = decode_utf8(p, end);
    if (!c.valid || c.code_point >= t.to_byte.size() || t.to_byte[c.code_point] < 0) return false;
    bytes.push_back(char(t.to_byte[c.code_point]));
    p += c.length;
  }
  return true;
}

}  // namespace mcd::data
