// 64-bit hashing for the data pipeline, written for this project: splitmix64's finalizer
// (the counter-based RNG of data/batch.h) and a fast byte hash (the train/validation split and
// the token-file checksums of data/token_cache.h). Caches store these values, so never change them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mcd::data {

// A bijective 64-bit mixer (the splitmix64 output function): every input bit affects every
// output bit. mix64(x) for x = 0, 1, 2, ... is a good pseudo-random sequence.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Non-cryptographic hash of `size` bytes: four independent multiply-rotate lanes over
// 32-byte blocks, then mix64. Detects truncation, bit flips and reordering with probability
// 1 - 2^-64 (several GB/s); it is not a defence against deliberate tampering.
uint64_t hash_bytes(const void* data, size_t size, uint64_t seed = 0);

// "0x" + 16 lower-case hex digits, the form stored in JSON sidecars.
std::string hex64(uint64_t value);
// Inverse of hex64; throws mcd::Error naming `what` for anything else.
uint64_t parse_hex64(const std::string& text, const std::string& what);

}  // namespace mcd::data
