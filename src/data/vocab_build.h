// Building a restricted vocabulary (data/tokenizer/vocab_map.h) from the text a model will see:
// the documents of one or more corpora (those a token cache with the same split settings puts
// into training) and the training examples of classification tasks. Torch-free.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/corpus.h"
#include "data/tokenizer/vocab_map.h"

namespace mcd::data {

struct VocabSources {
  std::vector<CorpusSpec> corpora;
  // The token cache's split (token_cache.h): documents it would put into validation are not
  // counted, so validation text plays no part in choosing the vocabulary. 0 = every document.
  double val_fraction = 0;
  uint64_t split_seed = 0;
  int64_t max_documents = -1;              // per corpus, as the token cache's max_documents
  std::vector<std::string> custom_files;   // custom task files (.jsonl / .tsv), text and text_b
  std::vector<std::pair<std::string, std::string>> glue;  // (task, data dir): its train split
  int64_t min_count = 1;  // ids seen fewer times map to the unknown id
};

struct VocabBuild {
  VocabMap map;
  // documents, examples, tokens, distinct_ids, kept_ids, size, unk_tokens (tokens of the
  // sources that the map sends to unk: those of ids under min_count), min_count, sources.
  nlohmann::json summary;
};

// Tokenizes every source with `base` (an unrestricted tokenizer) and keeps the ids seen at least
// min_count times, plus <|endoftext|>. Throws mcd::Error when there is no source or no text.
VocabBuild build_vocab_map(const VocabSources& sources, const BpeTokenizer& base);

}  // namespace mcd::data
