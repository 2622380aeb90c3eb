// UnigramModel: token frequencies of a training split (data/token_cache.h) and the cross-entropy
// they give on a validation split, torch-free. The trainer's acceptance test expects a language
// model's validation loss to beat this baseline.
//
// Probabilities use add-one (Laplace) smoothing over the whole vocabulary:
//   p(id) = (count(id) + 1) / (total + vocab_size),
// and cross_entropy(val) = -(1 / |val|) * sum_t ln p(val[t])  (nats per token; every token,
// <|endoftext|> included, counts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/token_span.h"

namespace mcd::data {

class UnigramModel {
 public:
  // Counts `train`; throws mcd::Error if an id is >= vocab_size.
  static UnigramModel fit(const TokenSpan& train, int64_t vocab_size);

  // Nats per token on `tokens`; throws mcd::Error if an id is >= vocab_size or `tokens` is empty.
  double cross_entropy(const TokenSpan& tokens) const;
  // ln p(id) under the smoothed model.
  double log_prob(int64_t id) const;

  int64_t count(int64_t id) const { return counts_.at(size_t(id)); }
  int64_t total() const { return total_; }
  int64_t vocab_size() const { return int64_t(counts_.size()); }

 private:
  std::vector<int64_t> counts_;  // [vocab_size] occurrences in train
  int64_t total_ = 0;            // train tokens
};

}  // namespace mcd::data
