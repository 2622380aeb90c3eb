// UnigramModel (unigram.h): one counting pass over train, then log-probabilities looked up per
// validation token. Sums are accumulated per id (count x ln p) so the result does not depend on
// token order and loses no precision over hundreds of millions of tokens.
#include "data/unigram.h"

#include <cmath>

#include "util/error.h"

namespace mcd::data {

UnigramModel UnigramModel::fit(const TokenSpan& train, int64_t vocab_size) {
  MCD_CHECK(vocab_size >= 1 && vocab_size <= 65536, "unigram vocabulary size ", vocab_size,
            " must be in [1, 65536]");
  UnigramModel model;
  model.counts_.assign(size_t(vocab_size), 0);
  for (const uint16_t id : train) {
    MCD_CHECK(id < vocab_size, "token id ", id,
              " in the training tokens is >= the vocabulary size ", vocab_size);
    ++model.counts_[id];
  }
  model.total_ = train.size;
  return model;
}

double UnigramModel::log_prob(int64_t id) const {
  MCD_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " outside the vocabulary [0, ",
            vocab_size(), ")");
  return std::log(double(counts_[size_t(id)] + 1)) - std::log(double(total_ + vocab_size()));
}

double UnigramModel::cross_entropy(const TokenSpan& tokens) const {
  MCD_CHECK(tokens.size > 0, "unigram cross-entropy of an empty token span");
  std::vector<int64_t> seen(counts_.size(), 0);  // [vocab_size] occurrences in `tokens`
  for (const uint16_t id : tokens) {
    MCD_CHECK(id < vocab_size(), "token id ", id,
              " in the evaluated tokens is >= the vocabulary size ", vocab_size());
    ++seen[id];
  }
  double nats = 0;
  for (size_t id = 0; id < seen.size(); ++id) {
    if (seen[id] != 0) nats -= double(seen[id]) * log_prob(int64_t(id));
  }
  return nats / double(tokens.size);
}

}  // namespace mcd::data
