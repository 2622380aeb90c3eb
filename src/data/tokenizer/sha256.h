// SHA-256 (FIPS 180-4), written for this project: the tokenizer pins its vocabulary files by
// hash (bpe_tokenizer.cpp) and derives its fingerprint from one. Streaming and one-shot forms.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mcd::data {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Pads and returns the digest; the object must not be updated afterwards.
  Digest finish();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_;
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha256::Digest sha256(std::string_view data);
std::string to_hex(const Sha256::Digest& digest);
std::string sha256_hex(std::string_view data);
// Hashes a file in chunks; throws mcd::Error naming the path when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace mcd::data
