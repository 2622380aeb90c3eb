// hash_bytes and the hex helpers declared in hash64.h. The lane structure keeps four
// independent multiply chains in flight, so hashing a token file costs far less than reading it.
#include "data/hash64.h"

#include <cstdio>
#include <cstring>

#include "util/error.h"

namespace mcd::data {
namespace {

constexpr uint64_t kMulA = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio
constexpr uint64_t kMulB = 0xd6e8feb86659fd93ull;  // odd constants with well-spread bits
constexpr uint64_t kMulC = 0xa0761d6478bd642full;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // unaligned-safe; host byte order (caches record "little")
  return v;
}

inline uint64_t lane_round(uint64_t lane, uint64_t word) {
  return rotl(lane ^ (word * kMulB), 29) * kMulA;
}

}  // namespace

uint64_t hash_bytes(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  const uint8_t* const end = p + size;
  uint64_t h =
      mix64((seed + kMulA) ^ (uint64_t(size) * kMulC));  // + kMulA: nothing hashes to 0 trivially
  if (size >= 32) {
    uint64_t a = h ^ 0x1111111111111111ull, b = h ^ 0x2222222222222222ull;
    uint64_t c = h ^ 0x3333333333333333ull, d = h ^ 0x4444444444444444ull;
    for (; end - p >= 32; p += 32) {
      a = lane_round(a, load64(p));
      b = lane_round(b, load64(p + 8));
      c = lane_round(c, load64(p + 16));
      d = lane_round(d, load64(p + 24));
    }
    h = mix64(a) ^ rotl(mix64(b), 16) ^ rotl(mix64(c), 32) ^ rotl(mix64(d), 48);
  }
  for (; end - p >= 8; p += 8) h = mix64(h ^ (load64(p) * kMulB)) * kMulA;
  if (p < end) {
    uint64_t tail = 0;
    std::memcpy(&tail, p, size_t(end - p));
    h = mix64(h ^ (tail * kMulC) ^ uint64_t(end - p));
  }
  return mix64(h);
}

std::string hex64(uint64_t value) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(value));
  return buf;
}

uint64_t parse_hex64(const std::string& text, const std::string& what) {
  const bool ok = text.size() == 18 && text[0] == '0' && text[1] == 'x' &&
                  text.find_first_not_of("0123456789abcdef", 2) == std::string::npos;
  MCD_CHECK(ok, what, ": expected \"0x\" and 16 hex digits, got \"", text, "\"");
  return std::stoull(text.substr(2), nullptr, 16);
}

}  // namespace mcd::data
