// Generation's token choice beyond greedy and top-k / top-p (tests/model/test_model.cpp has those):
// min-p, the repetition penalty and its bookkeeping in the batch loop, the padding rows of a
// restricted vocabulary, option errors, and the loop over a decoder other than the model's step.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "model/generation.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

ModelConfig vocab97_config() {
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 97;
  return c;
}

MambaLM seeded_model(uint64_t seed, ModelConfig c = vocab97_config()) {
  MambaLM m(c);
  init_reference(*m, seed);
  m->eval();
  return m;
}

// Counts of `draws` tokens drawn from one row of logits repeated (one call: the draws are the rows).
std::vector<int64_t> sampled_counts(const at::Tensor& row, const GenerationOptions& o, int64_t draws, uint64_t seed) {
  at::Generator gen = make_generator(seed, torch::kCPU);
  const at::Tensor tokens = sample_next(row.unsqueeze(0).expand({draws, row.size(0)}).contiguous(), o, gen);
  std::vector<int64_t> counts(size_t(row.size(0)), 0);
  for (int64_t i = 0; i < draws; ++i) ++counts[size_t(tokens[i].item<int64_t>())];
  return counts;
}

// Pearson's statistic of `counts` against probabilities `p` over the tokens with p > 0.
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& p, int64_t draws) {
  double x = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) x += std::pow(double(counts[i]) - double(draws) * p[i], 2) / (double(draws) * p[i]);
  return x;
}

// min-p 0.2 of probabilities (0.5, 0.3, 0.15, 0.05) drops the last (0.05 < 0.2 · 0.5) and draws the
// others in proportion (0.5, 0.3, 0.15) / 0.95. With 2 degrees of freedom the χ² tail is exp(−x/2),
// so x > 27.6 happens with probability 1e-6 for a right sampler; a sampler that ignored min-p or
// drew uniformly among the kept would exceed it by far at 20,000 draws (the dropped token alone
// would add ~1,000 draws the test forbids outright).
TEST(Generation, MinPDropsTokensFarBelowTheMostLikelyAndDrawsTheRestInProportion) {
  const at::Tensor row = torch::log(torch::tensor({0.5f, 0.3f, 0.15f, 0.05f}));
  GenerationOptions o;
  o.min_p = 0.2;
  const int64_t draws = 20000;
  const auto counts = sampled_counts(row, o, draws, 5);
  EXPECT_EQ(counts[3], 0);
  EXPECT_LT(chi_square(counts, {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0}, draws), 27.6);
  // After temperature 2 the probabilities ∝ √p: 0.05's share 0.2236 / (0.7071 + 0.5477 + 0.3873 + 0.2236)
  // is 0.1198 of the mass and 0.316 of the most likely: min-p 0.2 keeps it now (HF's order:
  // temperature first, then the filters).
  o.temperature = 2.0;
  EXPECT_GT(sampled_counts(row, o, 2000, 6)[3], 0);
  // min-p 1 leaves only the most likely token.
  o.min_p = 1.0;
  EXPECT_EQ(sampled_counts(row, o, 500, 7)[0], 500);
}

TEST(Generation, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens) {
  const at::Tensor logits = torch::tensor({{2.0, -1.0, 3.0, -4.0}, {1.0, 1.0, -2.0, 0.0}}, torch::kDouble);
  const at::Tensor seen = torch::tensor({{1, 1, 0, 0}, {0, 0, 1, 1}}).to(torch::kBool);
  const at::Tensor expected = torch::tensor({{2.0 / 1.5, -1.5, 3.0, -4.0}, {1.0, 1.0, -3.0, 0.0}}, torch::kDouble);
  EXPECT_TRUE(torch::equal(apply_repetition_penalty(logits, seen, 1.5), expected));
}

// Greedy decoding with a repetition penalty against a reference written from the definition: at
// each position the full-sequence forward's last logits, every token of the row so far (prompt and
// generated) penalised, the argmax. Float64 throughout (the sampler keeps float64 logits): the step
// mode and the forward agree to ~1e-15, far below any gap these seeds draw, so the argmax cannot flip. Rows of different lengths check the
// loop's bookkeeping of which tokens each row has seen while others still read their prompts; a
// penalty of 3 changes the tokens (asserted), so the test sees whether it is applied at all.
TEST(Generation, GreedyRepetitionPenaltyEqualsTheFullForwardReference) {
  MambaLM m = seeded_model(21);
  m->to(at::kDouble);
  const std::vector<std::vector<int64_t>> prompts = {{5, 9, 2, 40, 7, 1}, {3}, {8, 8, 60}};
  GenerationOptions g;
  g.greedy = true;
  g.max_new_tokens = 10;
  g.stop_at_eos = false;
  g.repetition_penalty = 3.0;
  const auto got = generate_batch(*m, prompts, g);
  torch::NoGradGuard no_grad;
  for (size_t r = 0; r < prompts.size(); ++r) {
    std::vector<int64_t> seq = prompts[r];
    for (int64_t k = 0; k < g.max_new_tokens; ++k) {
      const at::Tensor ids = torch::tensor(seq, torch::kLong).unsqueeze(0);
      at::Tensor last = m->forward(ids)[0][-1].clone();  // (V)
      for (int64_t id : std::set<int64_t>(seq.begin(), seq.end())) {  // a repeated id is penalised once
        const double v = last[id].item<double>();
        last[id] = v < 0 ? v * 3.0 : v / 3.0;
      }
      seq.push_back(last.argmax().item<int64_t>());
    }
    EXPECT_EQ(got[r], seq) << "prompt " << r;
  }
  g.repetition_penalty = 1.0;
  EXPECT_NE(generate_batch(*m, prompts, g), got);
}

// The penalty's bookkeeping by hand, on a decoder whose logits never change: token 7 at 10, 5 at
// 9.5, 3 at 9, the rest 0 (unchanged by the rule). Penalty 2, so a seen token's logit halves, once
// however often it was seen. Row 0 (prompt 7 1, all prefilled): 7 is seen → 5 (9.5), then 3 (9
// against 4.75 and 5), then 7 (5 against 4.75 and 4.5) twice. Row 1 (prompt 2 3 5: the 5 is fed
// by the loop while row 0 already generates) → 7 (10), then 7 three times (5 against 4.75 and 4.5).
// Forgetting the prefilled prompt would start row 0 with 7; forgetting a fed prompt token would
// give row 1 a 5 second.
TEST(Generation, RepetitionPenaltyCountsThePromptAndEachSeenTokenOnce) {
  const ModelConfig c = vocab97_config();
  at::Tensor logits = torch::zeros({2, c.vocab_size}, torch::kDouble);
  logits.select(1, 7).fill_(10.0);
  logits.select(1, 5).fill_(9.5);
  logits.select(1, 3).fill_(9.0);
  const DecodeSteps constant{[&](const at::Tensor&) { return DecodeOutput{logits, {}}; },
                             [&](const at::Tensor&) { return DecodeOutput{logits, {}}; }};
  GenerationOptions g;
  g.greedy = true;
  g.max_new_tokens = 4;
  g.stop_at_eos = false;
  g.repetition_penalty = 2.0;
  const auto rows = generate_batch(c, torch::kCPU, constant, {{7, 1}, {2, 3, 5}}, g);
  EXPECT_EQ(rows[0], (std::vector<int64_t>{7, 1, 5, 3, 7, 7}));
  EXPECT_EQ(rows[1], (std::vector<int64_t>{2, 3, 5, 7, 7, 7, 7}));
}

// Streaming: the callback hears every generated token of every row, in order, the last one flagged,
// and nothing of the prompts — exactly the rows generate_batch returns (sampled, rows of different
// lengths, one row stopped by EOS).
TEST(Generation, TheTokenCallbackHearsExactlyTheGeneratedTokens) {
  MambaLM m = seeded_model(25);
  const std::vector<std::vector<int64_t>> prompts = {{5, 9, 2, 40}, {3}, {8, 8, 60}};
  GenerationOptions g;
  g.max_new_tokens = 9;
  g.seed = 4;
  g.stop_at_eos = false;
  const auto free_run = generate_batch(*m, prompts, g);
  g.eos_token_id = free_run[1][1 + 3];  // row 1 stops at its fourth token (others may meet it too)
  g.stop_at_eos = true;
  std::vector<std::vector<int64_t>> heard(prompts.size());
  std::vector<int> lasts(prompts.size(), 0);
  const auto rows = generate_batch(*m, prompts, g, [&](int64_t r, int64_t id, bool last) {
    ASSERT_EQ(lasts[size_t(r)], 0) << "row " << r << " heard after its last token";
    heard[size_t(r)].push_back(id);
    lasts[size_t(r)] += last;
  });
  for (size_t r = 0; r < prompts.size(); ++r) {
    EXPECT_EQ(std::vector<int64_t>(rows[r].begin() + int64_t(prompts[r].size()), rows[r].end()), heard[r]) << r;
    EXPECT_EQ(lasts[r], 1) << r;
  }
  EXPECT_LE(heard[1].size(), 4u);
  EXPECT_EQ(rows, generate_batch(*m, prompts, g));  // listening changes nothing
}

// A restricted vocabulary (tokenizer_vocab_size below the embedding's rows) never produces a
// padding row's id, penalty or not, and a prompt may hold such an id (the penalty's record of seen
// tokens is as wide as the embedding). Temperature 5 spreads the draws over the whole vocabulary
// (the random model's logits differ by less than one unit), so the 7 padding ids would hold about
// 7 % of the mass were they allowed: 600 draws would miss them all with probability ~1e-19.
TEST(Generation, SamplingNeverProducesThePaddingRowsOfARestrictedVocabulary) {
  ModelConfig c = vocab97_config();
  c.tokenizer_vocab_size = 90;
  MambaLM m = seeded_model(22, c);
  GenerationOptions g;
  g.temperature = 5.0;
  g.max_new_tokens = 100;
  g.stop_at_eos = false;
  g.seed = 3;
  for (double penalty : {1.0, 1.7}) {
    g.repetition_penalty = penalty;
    const std::vector<std::vector<int64_t>> prompts = {{1, 95, 2}, {96}, {4, 5, 6, 7, 8, 9}};
    const auto rows = generate_batch(*m, prompts, g);
    for (size_t r = 0; r < rows.size(); ++r) {
      ASSERT_EQ(rows[r].size(), prompts[r].size() + 100);
      for (size_t i = prompts[r].size(); i < rows[r].size(); ++i) ASSERT_LT(rows[r][i], 90) << "penalty " << penalty;
    }
  }
}

TEST(Generation, OptionsOutOfRangeAreRefused) {
  MambaLM m = seeded_model(23);
  const auto refuses = [&](GenerationOptions g, const std::string& message) {
    test::expect_error([&] { generate_batch(*m, {{1, 2}}, g); }, message);
  };
  GenerationOptions g;
  g.min_p = 1.5;
  refuses(g, "min_p must be in [0, 1], got 1.5");
  g = {};
  g.repetition_penalty = 0;
  refuses(g, "repetition_penalty must be positive, got 0");
  g = {};
  g.temperature = 0;
  refuses(g, "temperature must be positive, got 0");
  g.greedy = true;  // a greedy run ignores the temperature
  EXPECT_EQ(generate_batch(*m, {{1, 2}}, g)[0].size(), 2u + 16u);
  g = {};
  g.top_p = 0;
  refuses(g, "top_p must be in (0, 1], got 0");
  g = {};
  g.max_new_tokens = -1;
  refuses(g, "max_new_tokens must be >= 0, got -1");
}

TEST(Generation, ParseSamplingReadsItemsAndNamesBadOnes) {
  const GenerationOptions o = parse_sampling("temperature=0.8,top_k=50,top_p=0.9,min_p=0.05,repetition_penalty=1.2,seed=7", "--x");
  EXPECT_FALSE(o.greedy);
  EXPECT_EQ(o.temperature, 0.8);
  EXPECT_EQ(o.top_k, 50);
  EXPECT_EQ(o.top_p, 0.9);
  EXPECT_EQ(o.min_p, 0.05);
  EXPECT_EQ(o.repetition_penalty, 1.2);
  EXPECT_EQ(o.seed, 7u);
  const GenerationOptions g = parse_sampling("greedy,repetition_penalty=1.5", "--x");
  EXPECT_TRUE(g.greedy);
  EXPECT_EQ(g.repetition_penalty, 1.5);
  EXPECT_EQ(g.top_p, 1.0);  // the defaults stay
  test::expect_error([] { parse_sampling("top_q=1", "--x"); }, "--x: unknown key 'top_q' in 'top_q=1'");
  test::expect_error([] { parse_sampling("top_p", "--x"); }, "--x: 'top_p' is neither greedy nor KEY=VALUE");
  test::expect_error([] { parse_sampling("top_p=abc", "--x"); }, "--x: 'top_p=abc' has no finite number after '='");
  test::expect_error([] { parse_sampling("temperature=inf", "--x"); }, "'temperature=inf' has no finite number");
  test::expect_error([] { parse_sampling("seed=-1", "--x"); }, "--x: 'seed=-1' needs a whole number >= 0");
  EXPECT_EQ(parse_sampling("seed=18446744073709551615", "--x").seed, 18446744073709551615ull);  // every seed, exactly
  test::expect_error([] { parse_sampling("top_k=2.5", "--x"); }, "--x: 'top_k=2.5' needs a whole number >= 0");
  test::expect_error([] { parse_sampling("min_p=2", "--x"); }, "min_p must be in [0, 1], got 2");
  test::expect_error([] { parse_sampling("", "--x"); }, "--x: empty");
}

// The loop over a decoder given as DecodeSteps (what the CUDA graph gives it) is the model's own:
// wrapping the eager step as GraphDecoder works — one persistent token buffer that each step reads
// its input from and writes its argmax into — gives the same tokens greedy (the loop must copy the
// buffer before the next step overwrites it), and the same draws sampled with the same seed.
TEST(Generation, TheLoopOverAnyDecoderGivesTheModelsTokens) {
  MambaLM m = seeded_model(24);
  const std::vector<std::vector<int64_t>> prompts = {{5, 9, 2}, {3, 1}, {8, 8, 60, 4, 2}};
  InferenceCache cache = m->new_cache(3);
  int64_t steps = 0;
  const int64_t real = m->config().real_vocab_size();
  at::Tensor buffer = torch::zeros({3}, torch::kLong);
  const DecodeSteps graph_like{[&](const at::Tensor& prefix) {
                                 const at::Tensor l = m->prefill(prefix, cache);
                                 buffer.copy_(l.narrow(1, 0, real).argmax(-1));
                                 return DecodeOutput{l, buffer};
                               },
                               [&](const at::Tensor& token) {
                                 ++steps;
                                 buffer.copy_(token);
                                 const at::Tensor l = m->step(buffer, cache);
                                 buffer.copy_(l.narrow(1, 0, real).argmax(-1));
                                 return DecodeOutput{l, buffer};
                               }};
  GenerationOptions g;
  g.max_new_tokens = 6;
  g.stop_at_eos = false;
  for (bool greedy : {true, false}) {
    g.greedy = greedy;
    g.seed = 11;
    steps = 0;
    cache.reset();
    EXPECT_EQ(generate_batch(m->config(), torch::kCPU, graph_like, prompts, g), generate_batch(*m, prompts, g))
        << (greedy ? "greedy" : "sampled");
    // Positions 2 … 10 decided (the shortest prompt is 2, the longest ends at 5 + 6): 8 steps between them.
    EXPECT_EQ(steps, 8);
  }
}

}  // namespace
}  // namespace mcd
