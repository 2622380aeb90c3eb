// Log-likelihood of continuations (infer/choice_scoring.h) against a reference written from the
// definition — the full forward of context + choice, log-softmax over the real vocabulary, the sum
// over the choice's positions — in float64: batching and right-padding, left truncation, an empty
// context and the greedy flags. The `zeroshot` command end to end: tests/train/test_model_tokenizer_e2e.cpp.
#include <gtest/gtest.h>

#include "infer/choice_scoring.h"
#include "test_support.h"

namespace mcd::infer {
namespace {

MambaLM float64_model(uint64_t seed) {
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 104;
  c.tokenizer_vocab_size = 100;  // 4 padding rows the probabilities must leave out
  c.eos_token_id = 7;
  MambaLM m(c);
  init_reference(*m, seed);
  m->to(at::kDouble);
  m->eval();
  return m;
}

// Σ log p(choice tokens) by the definition, and whether each was the argmax.
std::pair<double, bool> reference(MambaLM& m, const std::vector<int64_t>& context, const std::vector<int64_t>& choice) {
  std::vector<int64_t> ids = context;
  ids.insert(ids.end(), choice.begin(), choice.end());
  torch::NoGradGuard no_grad;
  const at::Tensor logp =
      m->forward(torch::tensor(ids, torch::kLong).unsqueeze(0))[0].narrow(-1, 0, 100).log_softmax(-1);  // (L, 100)
  double sum = 0;
  bool greedy = true;
  for (size_t k = 0; k < choice.size(); ++k) {
    const int64_t t = int64_t(context.size() + k) - 1;
    sum += logp[t][choice[k]].item<double>();
    greedy = greedy && logp[t].argmax().item<int64_t>() == choice[k];
  }
  return {sum, greedy};
}

// Float64 end to end: the batched, padded scores equal the one-sequence reference to ~1e-12
// relative (the same operations in another grouping; the sums are of ~10 terms of size ~5).
TEST(ChoiceScoring, EqualsTheFullForwardDefinitionWhateverTheBatch) {
  MambaLM m = float64_model(3);
  std::vector<ChoiceRequest> requests = {{{5, 9, 2, 40}, {{11}, {12, 13, 14}, {99, 3}}},
                                         {{1}, {{2, 3, 4, 5, 6, 8}, {60}}},
                                         {{8, 8, 60, 4, 2, 1, 1, 9}, {{33, 34}, {35}}}};
  for (int64_t batch : {1, 2, 7}) {
    const auto scores = score_choices(*m, requests, batch, 2048);
    ASSERT_EQ(scores.size(), requests.size());
    for (size_t r = 0; r < requests.size(); ++r)
      for (size_t k = 0; k < requests[r].choices.size(); ++k) {
        const auto [sum, greedy] = reference(m, requests[r].context, requests[r].choices[k]);
        EXPECT_NEAR(scores[r].log_likelihood[k], sum, 1e-12 * std::abs(sum)) << "batch " << batch << " " << r << "/" << k;
        EXPECT_EQ(scores[r].tokens[k], int64_t(requests[r].choices[k].size()));
        EXPECT_EQ(scores[r].greedy[k], greedy);
      }
  }
}

// The greedy continuation of a context is flagged greedy (and more likely than any other single
// token); a context longer than max_length keeps its last tokens; an empty context scores the
// choice after the config's EOS; a choice that cannot fit, or an id beyond the vocabulary, is refused.
TEST(ChoiceScoring, GreedyFlagsTruncationEmptyContextsAndErrors) {
  MambaLM m = float64_model(4);
  const std::vector<int64_t> context = {5, 9, 2, 40, 17, 23};
  torch::NoGradGuard no_grad;
  const int64_t next =
      m->forward(torch::tensor(context, torch::kLong).unsqueeze(0))[0][-1].narrow(0, 0, 100).argmax().item<int64_t>();
  const int64_t other = (next + 1) % 100;
  const auto s = score_choices(*m, {{context, {{next}, {other}}}}, 4, 2048)[0];
  EXPECT_TRUE(s.greedy[0]);
  EXPECT_FALSE(s.greedy[1]);
  EXPECT_GT(s.log_likelihood[0], s.log_likelihood[1]);
  // max_length 5 with a 2-token choice keeps the context's last 3 tokens.
  const auto cut = score_choices(*m, {{context, {{11, 12}}}}, 1, 5)[0];
  EXPECT_NEAR(cut.log_likelihood[0], reference(m, {40, 17, 23}, {11, 12}).first, 1e-12);
  const auto empty = score_choices(*m, {{{}, {{11, 12}}}}, 1, 2048)[0];
  EXPECT_NEAR(empty.log_likelihood[0], reference(m, {7}, {11, 12}).first, 1e-12);
  test::expect_error([&] { score_choices(*m, {{context, {{1, 2, 3, 4, 5}}}}, 1, 5); },
                     "has 5 tokens; at most max_length - 1 = 4");
  test::expect_error([&] { score_choices(*m, {{context, {{104}}}}, 1, 64); }, "token id 104 outside the vocabulary");
  test::expect_error([&] { score_choices(*m, {{context, {{}}}}, 1, 64); }, "choice 0 has no token");
}

}  // namespace
}  // namespace mcd::infer
