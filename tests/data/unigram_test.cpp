// Tests for UnigramModel (data/unigram.h): a hand-computed add-one-smoothed cross-entropy,
// unseen ids, the uniform limit, and errors for ids outside the vocabulary.
#include "data/unigram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data_test_util.h"

namespace mcd::data {
namespace {

TokenSpan span(const std::vector<uint16_t>& v) { return TokenSpan{v.data(), int64_t(v.size())}; }

TEST(Unigram, HandComputedExample) {
  // Train 0 0 1 over a vocabulary of 3: counts 2 1 0, so p = 3/6, 2/6, 1/6 after add-one.
  const std::vector<uint16_t> train = {0, 0, 1}, val = {0, 2};
  const UnigramModel m = UnigramModel::fit(span(train), 3);
  EXPECT_EQ(m.count(0), 2);
  EXPECT_EQ(m.count(2), 0);
  EXPECT_EQ(m.total(), 3);
  EXPECT_NEAR(m.log_prob(1), std::log(2.0 / 6.0), 1e-12);
  // -(ln 1/2 + ln 1/6) / 2
  EXPECT_NEAR(m.cross_entropy(span(val)), (std::log(2.0) + std::log(6.0)) / 2, 1e-12);
}

TEST(Unigram, EmptyTrainIsUniform) {
  const std::vector<uint16_t> none, val = {5, 9, 9, 0};
  EXPECT_NEAR(UnigramModel::fit(span(none), 50257).cross_entropy(span(val)), std::log(50257.0),
              1e-9);
}

TEST(Unigram, IdsOutsideTheVocabularyAreErrors) {
  const std::vector<uint16_t> train = {0, 7}, val = {3};
  EXPECT_NE(test::error_of([&] { UnigramModel::fit(span(train), 5); }).find("token id 7"),
            std::string::npos);
  const UnigramModel m = UnigramModel::fit(span(val), 4);
  EXPECT_NE(test::error_of([&] { m.cross_entropy(span(train)); }).find("token id 7"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { m.cross_entropy(span({})); }).find("empty"), std::string::npos);
}

}  // namespace
}  // namespace mcd::data
