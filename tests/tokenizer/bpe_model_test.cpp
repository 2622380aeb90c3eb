// Tests for the merge loop in bpe_model.{h,cpp} on a toy BPE trained here: the short (array)
// and long (heap) paths and a plain reference (GPT-2's original "merge every occurrence of the
// best pair" loop) must agree on every piece. Also checks the model's load-time validation.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "data/tokenizer/bpe_model.h"
#include "util/error.h"

namespace mcd::data {
namespace {

// All 256 bytes (id = byte) plus `merge_count` merges learned greedily on `corpus`.
BpeSpec train_toy_bpe(const std::string& corpus, int merge_count) {
  BpeSpec spec;
  spec.source = "toy";
  for (int b = 0; b < 256; ++b) spec.vocab.emplace_back(std::string(1, char(b)), b);
  std::vector<std::string> seq;
  for (char c : corpus) seq.emplace_back(1, c);
  for (int m = 0; m < merge_count; ++m) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (size_t i = 0; i + 1 < seq.size(); ++i) ++counts[{seq[i], seq[i + 1]}];
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    if (best->second < 2) break;
    const auto [left, right] = best->first;
    spec.merges.emplace_back(left, right);
    spec.vocab.emplace_back(left + right, int32_t(256 + m));
    std::vector<std::string> next;
    for (size_t i = 0; i < seq.size(); ++i) {
      if (i + 1 < seq.size() && seq[i] == left && seq[i + 1] == right) {
        next.push_back(left + right);
        ++i;
      } else {
        next.push_back(seq[i]);
      }
    }
    seq.swap(next);
  }
  return spec;
}

std::vector<int32_t> reference_bpe(const BpeSpec& spec, const std::string& piece) {
  std::map<std::pair<std::string, std::string>, size_t> ranks;
  for (size_t r = 0; r < spec.merges.size(); ++r) ranks.emplace(spec.merges[r], r);
  std::map<std::string, int32_t> ids;
  for (const auto& [bytes, id] : spec.vocab) ids.emplace(bytes, id);
  std::vector<std::string> word;
  for (char c : piece) word.emplace_back(1, c);
  while (word.size() > 1) {
    size_t best_rank = SIZE_MAX;
    std::pair<std::string, std::string> best;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks.find({word[i], word[i + 1]});
      if (it != ranks.end() && it->second < best_rank) {
        best_rank = it->second;
        best = it->first;
      }
    }
    if (best_rank == SIZE_MAX) break;
    std::vector<std::string> next;
    for (size_t i = 0; i < word.size(); ++i) {
      if (i + 1 < word.size() && word[i] == best.first && word[i + 1] == best.second) {
        next.push_back(best.first + best.second);
        ++i;
      } else {
        next.push_back(word[i]);
      }
    }
    word.swap(next);
  }
  std::vector<int32_t> out;
  for (const auto& w : word) out.push_back(ids.at(w));
  return out;
}

TEST(TokenizerBpeModel, ShortLongAndReferenceAgree) {
  std::mt19937 rng(42);
  const std::string alphabet = "aabbbcdeee  ";
  std::string corpus;
  for (int i = 0; i < 4000; ++i) corpus.push_back(alphabet[rng() % alphabet.size()]);
  const BpeSpec spec = train_toy_bpe(corpus, 120);
  ASSERT_GT(spec.merges.size(), 50u);
  const BpeModel model(spec);
  for (int round = 0; round < 400; ++round) {
    const size_t len = 2 + rng() % (round < 300 ? BpeModel::kShortPieceLimit - 1 : 600);
    const size_t start = rng() % (corpus.size() - len);
    const std::string piece = corpus.substr(start, len);
    const auto expected = reference_bpe(spec, piece);
    std::vector<int32_t> got_long, got_any;
    model.encode_piece_long(piece, got_long);
    model.encode_piece(piece, got_any);
    ASSERT_EQ(got_long, expected) << "'" << piece << "'";
    ASSERT_EQ(got_any, expected) << "'" << piece << "'";
    if (len <= BpeModel::kShortPieceLimit) {
      std::vector<int32_t> got_short;
      model.encode_piece_short(piece, got_short);
      ASSERT_EQ(got_short, expected) << "'" << piece << "'";
    }
  }
}

TEST(TokenizerBpeModel, RejectsInconsistentSpecs) {
  BpeSpec spec = train_toy_bpe("abababab", 2);
  spec.merges.emplace_back("zz", "a");
  try {
    BpeModel model(spec);
    FAIL() << "expected an error";
  } catch (const mcd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("merge #2"), std::string::npos) << e.what();
  }
  BpeSpec missing_byte = train_toy_bpe("abab", 1);
  missing_byte.vocab.erase(missing_byte.vocab.begin() + 7);
  EXPECT_THROW(BpeModel{missing_byte}, mcd::Error);
  BpeSpec twice = train_toy_bpe("abab", 1);
  twice.vocab.emplace_back("xyz", 3);
  EXPECT_THROW(BpeModel{twice}, mcd::Error);
}

TEST(TokenizerBpeModel, FingerprintDependsOnMerges) {
  const BpeSpec a = train_toy_bpe("abcabcabcab", 3);
  BpeSpec b = a;
  std::swap(b.merges[0], b.merges[1]);
  EXPECT_EQ(BpeModel(a).fingerprint(), BpeModel(a).fingerprint());
  EXPECT_NE(BpeModel(a).fingerprint(), BpeModel(b).fingerprint());
  EXPECT_NE(BpeModel(a).serial(), BpeModel(a).serial());
}

}  // namespace
}  // namespace mcd::data
