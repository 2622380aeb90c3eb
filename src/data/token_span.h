// TokenSpan: a borrowed, read-only run of uint16 token ids (usually a memory-mapped token file
// owned by data/token_cache.h). data/batch.h samples training windows from it and
// data/unigram.h counts it; nothing here owns memory.
#pragma once

#include <cstdint>

namespace mcd::data {

struct TokenSpan {
  const uint16_t* data = nullptr;  // [size] token ids; valid while the owner lives
  int64_t size = 0;                // number of tokens (not bytes)

  uint16_t operator[](int64_t i) const { return data[i]; }
  const uint16_t* begin() const { return data; }
  const uint16_t* end() const { return data + size; }
};

}  // namespace mcd::data
