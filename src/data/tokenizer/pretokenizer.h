// GPT-2 pre-tokenization: splits text into the pieces that the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// would match, hand-written over unicode_tables.h; bpe_tokenizer.cpp runs BPE on each piece.
#pragma once

#include <cstddef>
#include <string_view>

namespace mcd::data {

// Iterates the pieces of `text` in order; the pieces tile the text exactly (no byte is dropped).
// Invalid UTF-8 bytes are single characters of the "other" class (neither letter, number nor
// space), so they join runs of punctuation; this never fails on any input.
class PieceSplitter {
 public:
  explicit PieceSplitter(std::string_view text) : text_(text) {}
  // Sets `piece` to the next piece and returns true, or returns false at the end.
  bool next(std::string_view& piece);

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace mcd::data
