// Fixed-length token windows cut from a corpus (data/corpus.h), GPT-2 tokenized, each document
// followed by <|endoftext|> as in the token cache. Two uses:
//   - calibration (CSP): many documents, each contributing at most `per_document` tokens, until
//     `max_tokens` are collected — so the windows span many articles, not one;
//   - evaluation (`score --corpus`): every token of the corpus in consecutive windows.
// Torch-free; the caller wraps `ids` into a (rows, seq_len) tensor.
#pragma once

#include <cstdint>
#include <vector>

#include "data/corpus.h"

namespace mcd::data {

class BpeTokenizer;

struct WindowOptions {
  int64_t seq_len = 256;       // tokens per window (> 0)
  int64_t max_tokens = -1;     // stop after this many tokens (rounded up to whole windows); -1: all
  int64_t per_document = -1;   // at most this many tokens of each document (+ its EOT); -1: all
};

struct TokenWindows {
  int64_t rows = 0, seq_len = 0;
  std::vector<int32_t> ids;    // rows · seq_len, row-major
  int64_t documents = 0;       // documents that contributed tokens
  int64_t dropped_tail = 0;    // tokens at the end too few for a whole window
};

// Errors (mcd::Error) name the corpus when it yields no whole window.
TokenWindows read_token_windows(const CorpusSpec& spec, const BpeTokenizer& tokenizer, const WindowOptions& options);

}  // namespace mcd::data
