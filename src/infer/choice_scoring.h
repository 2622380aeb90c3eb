// Log-likelihood of continuations: for each (context, choice) pair, the sum over the choice's
// tokens of log p(token | everything before it), as zero-shot multiple-choice evaluation scores
// them (lm-evaluation-harness's loglikelihood requests; `mamba-codesign zeroshot`, docs/eval.md).
// Sequences are batched right-padded (a causal model's positions never see the padding after
// them) and only the choice positions go through the LM head.
#pragma once

#include <cstdint>
#include <vector>

#include "model/mamba.h"

namespace mcd::infer {

struct ChoiceRequest {
  std::vector<int64_t> context;               // may be empty: the model's EOS token is put before the choice
  std::vector<std::vector<int64_t>> choices;  // token ids, none empty
};

struct ChoiceScores {
  std::vector<double> log_likelihood;  // per choice: Σ log p over its tokens (natural log)
  std::vector<int64_t> tokens;         // per choice: how many tokens were scored
  std::vector<bool> greedy;            // per choice: every token the argmax of its position
};

// Scores every choice of every request with `model` (eval mode, no gradients), `batch` sequences
// per forward. A context + choice longer than `max_length` tokens loses context tokens from its
// start; a choice alone longer than max_length − 1 is an error. Probabilities are over the
// config's real vocabulary (the embedding's padding rows excluded; a choice id among them is an
// error), from logits widened to float32 (a bf16 model's are bf16 products; float64 for a float64
// model), summed in double.
std::vector<ChoiceScores> score_choices(MambaLMImpl& model, const std::vector<ChoiceRequest>& requests,
                                        int64_t batch, int64_t max_length);

}  // namespace mcd::infer
