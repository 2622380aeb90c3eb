// Token sequences for commands that run a model over text (csp calibration, score): either a
// safetensors file with `input_ids` (B×L, integers), which serves a model with any vocabulary,
// or a corpus (file or folder; data/corpus.h formats) tokenized with the model's tokenizer (GPT-2,
// restricted by the model folder's vocab_map.json if it has one) and cut into windows
// (data/token_windows.h).
#pragma once

#include <string>

#include "util/torch_compat.h"

namespace mcd::cli {

struct TokenInput {
  at::Tensor ids;       // (rows, seq_len) int64, CPU
  std::string source;   // "safetensors" | "corpus"
  int64_t documents = 0;  // corpus documents used (0 for safetensors)
};

// `path` ending in .safetensors → its `input_ids` (max_tokens, when > 0, keeps the first whole
// rows that cover it); otherwise a corpus read in `format` with the window options given, tokenized
// for the model in `model_dir` that takes `model_vocab` ids (data::tokenizer_for_model).
TokenInput read_token_input(const std::string& path, const std::string& format, int64_t seq_len,
                            int64_t max_tokens, int64_t per_document, const char* option,
                            const std::string& model_dir, int64_t model_vocab);

}  // namespace mcd::cli
