// The loaded vocabulary and the BPE merge loop, independent of file formats: bpe_tokenizer.cpp
// fills a BpeSpec from GPT-2 or HF files, builds a BpeModel, and runs it on each pre-token.
// Immutable after construction, so any number of threads may share one.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mcd::data {

// A token matched literally in the text before pre-tokenization (e.g. <|endoftext|>).
struct AddedToken {
  std::string content;  // raw UTF-8 text, not byte-level symbols
  int32_t id = -1;
  bool special = true;  // special tokens are matched only when the caller allows them
  bool lstrip = false;  // swallow whitespace to the left of a match (HF semantics)
  bool rstrip = false;  // ... and to the right
};

// Everything a loader extracts from its files.
struct BpeSpec {
  std::string source;                                    // what was loaded, for messages
  std::vector<std::pair<std::string, int32_t>> vocab;    // byte strings usable by BPE
  std::vector<std::pair<std::string, int32_t>> opaque;   // decodable only (not byte-level text)
  std::vector<std::pair<std::string, std::string>> merges;  // byte strings, by rank
  std::vector<AddedToken> added;
  bool ignore_merges = false;     // a piece that is itself a token is emitted whole (HF option)
  bool add_prefix_space = false;  // HF ByteLevel: prefix each text segment with ' '
};

// Open-addressing map from a (left id, right id) pair to (rank << 32 | merged id).
class PairMap {
 public:
  void reserve(size_t count);
  // Keeps the first value inserted for a key (the lowest rank when inserted in rank order).
  void insert(uint64_t key, uint64_t value);
  bool find(uint64_t key, uint64_t& value) const {
    size_t i = slot(key);
    while (true) {
      const uint64_t k = keys_[i];
      if (k == key) {
        value = values_[i];
        return true;
      }
      if (k == kEmpty) return false;
      i = (i + 1) & mask_;
    }
  }
  static uint64_t key(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are non-negative: never a real key
  size_t slot(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::vector<uint64_t> keys_, values_;
  size_t mask_ = 0;
  int shift_ = 64;
};

class BpeModel {
 public:
  // Validates and indexes the spec; throws mcd::Error naming `spec.source` on any
  // inconsistency (a merge whose parts or result are not tokens, a missing byte token, ...).
  explicit BpeModel(BpeSpec spec);

  // Appends the ids of one pre-tokenized piece (non-empty): lowest-rank adjacent pair first,
  // leftmost on ties, until no pair merges.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  // The two implementations encode_piece picks between by length; public for tests.
  void encode_piece_short(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_piece_long(std::string_view piece, std::vector<int32_t>& out) const;
  static constexpr size_t kShortPieceLimit = 128;

  int32_t byte_token(unsigned char b) const { return byte_token_[b]; }
  bool has_id(int32_t id) const {
    return id >= 0 && size_t(id) < present_.size() && present_[size_t(id)];
  }
  const std::string& token_bytes(int32_t id) const { return token_bytes_[size_t(id)]; }
  size_t vocab_size() const { return token_bytes_.size(); }
  const std::vector<AddedToken>& added() const { return added_; }
  bool add_prefix_space() const { return add_prefix_space_; }
  const std::string& source() const { return source_; }
  uint64_t fingerprint() const { return fingerprint_; }
  uint64_t serial() const { return serial_; }  // unique per built model, keys the caches

 private:
  std::string source_;
  std::vector<std::string> token_bytes_;  // by id; decode output
  std::vector<uint8_t> present_;          // whether an id is assigned
  std::array<int32_t, 256> byte_token_{};
  std::unordered_map<std::string, int32_t> bpe_ids_;  // byte string -> id, BPE tokens only
  PairMap merges_;
  std::vector<AddedToken> added_;
  bool ignore_merges_ = false;
  bool add_prefix_space_ = false;
  uint64_t fingerprint_ = 0;
  uint64_t serial_ = 0;
};

}  // namespace mcd::data
