// Autoregressive generation on the recurrent step mode: one full-sequence prefill of the
// prompt, then one step per new token (O(1) work per token). Greedy decoding or sampling with
// temperature, top-k, top-p (nucleus), min-p and a repetition penalty; a seeded generator makes
// sampling reproducible. Everything after the prefill — the penalty, the filters, the draw, the
// teacher-forced prompt tails, EOS — runs on the model's device, so the host queues a CUDA decoder's
// tokens (the eager step or infer/graph_decoder.h's graph) ahead of the device, reading it back only
// every 8 tokens to see whether every row has ended (and not at all without EOS stops).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/mamba.h"

namespace mcd {

struct GenerationOptions {
  int64_t max_new_tokens = 16;
  bool greedy = false;
  double temperature = 1.0;  // > 0; ignored when greedy
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  double min_p = 0.0;        // 0 = off: drop tokens less likely than min_p × the most likely one (in [0, 1])
  // 1 = off. A token already in the row (prompt or generated) has its logit divided by the penalty
  // when positive and multiplied by it when negative (HF's RepetitionPenaltyLogitsProcessor and
  // mamba-ssm's rule); applies to greedy decoding too. > 0.
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
  bool stop_at_eos = true;
  int64_t eos_token_id = -1;  // < 0: the model config's
};

// Told each generated token as soon as it is chosen (streaming output): the row, its token, and
// whether it is the row's last (max_new_tokens reached or EOS). Setting one makes the loop read each
// token back from the device (one small copy and a wait per step); the tokens and draws are the same.
using TokenCallback = std::function<void(int64_t row, int64_t token, bool last)>;

// Throws for options out of range (temperature, top-p, min-p, penalty, max_new_tokens).
void validate(const GenerationOptions& options);

// How the next token is chosen, from text (the profile command's --decode-sampling): comma-separated
// items, each `greedy` or KEY=VALUE with KEY one of temperature, top_k, top_p, min_p,
// repetition_penalty, seed — e.g. "temperature=0.8,top_p=0.9" or "greedy,repetition_penalty=1.2".
// Unset fields keep GenerationOptions' defaults. Errors name `option` and the item.
GenerationOptions parse_sampling(const std::string& spec, const std::string& option);

// prompts: (B, L) int64 on any device. Returns (B, L + generated) on CPU; a row that hit EOS is
// padded with EOS up to the longest row (every row has L + max_new_tokens without EOS stops).
at::Tensor generate(MambaLMImpl& model, const at::Tensor& prompts, const GenerationOptions& options);

// Prompts of different lengths generated together. The shortest prompt's length is prefilled for
// every row at once; then all rows step together, each fed its own next prompt token while it has
// one (the step mode continues the prefill's state exactly) and its chosen token after that.
// Returns per prompt the prompt followed by up to max_new_tokens generated tokens (ending at the
// first EOS when stop_at_eos). Greedy rows equal generating each prompt alone; sampled rows draw
// from one generator shared by the batch.
std::vector<std::vector<int64_t>> generate_batch(MambaLMImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& options, const TokenCallback& on_token = {});

// What a decoder gives the generation loop after a prefill or a step: the logits of the next
// position (B, ≥ real vocabulary) and, where the decoder formed them itself (the CUDA graph's
// fused head), the greedy tokens over the real vocabulary (else undefined).
struct DecodeOutput {
  at::Tensor logits;
  at::Tensor argmax;
};
struct DecodeSteps {
  std::function<DecodeOutput(const at::Tensor& prefix)> prefill;  // (B, L) int64 on the device
  std::function<DecodeOutput(const at::Tensor& tokens)> step;     // (B) int64 on the device
};

// The EOS id generation stops at: options.eos_token_id, else the config's (< 0: none).
int64_t eos_token(const GenerationOptions& options, const ModelConfig& config);

// Throws unless there are prompts, none empty, every id in [0, config.vocab_size).
void check_prompts(const ModelConfig& config, const std::vector<std::vector<int64_t>>& prompts);

// generate_batch's loop over any decoder on `device` (the eager step above, or a CUDA graph's):
// the same options, the same semantics, the same random draws.
std::vector<std::vector<int64_t>> generate_batch(const ModelConfig& config, torch::Device device,
                                                 const DecodeSteps& decoder,
                                                 const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& options,
                                                 const TokenCallback& on_token = {});

// (B, L) prompts on any device as B rows; throws unless 2-D with L ≥ 1.
std::vector<std::vector<int64_t>> prompt_rows(const at::Tensor& prompts);
// generate_batch's rows as (B, longest) int64 on the CPU, the shorter ones padded with `pad`.
at::Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad);

// Convenience for one prompt.
std::vector<int64_t> generate(MambaLMImpl& model, const std::vector<int64_t>& prompt,
                              const GenerationOptions& options, torch::Device device);

// Picks the next token from logits (B, V) on their device: the greedy argmax, or temperature, then
// top-k, top-p and min-p filtering (HF's order), then a draw from `gen` (a generator on the logits'
// device, make_generator). Returns (B) int64 on that device. Exposed for tests.
at::Tensor sample_next(const at::Tensor& logits, const GenerationOptions& options, at::Generator& gen);

// HF's repetition penalty on logits (B, V) where `seen` (B, V) bool marks the tokens each row has had.
at::Tensor apply_repetition_penalty(const at::Tensor& logits, const at::Tensor& seen, double penalty);

// The next-token choice of one generation on one device: the options, the generator seeded with
// options.seed, and, with a repetition penalty, which tokens each row has seen.
class TokenSampler {
 public:
  // Samples over config's real vocabulary (its padding rows are never produced).
  TokenSampler(const GenerationOptions& options, int64_t batch, const ModelConfig& config, torch::Device device);
  // Records tokens the rows have had: (B) or (B, L) int64 on the device (needed only with a penalty).
  void observe(const at::Tensor& tokens);
  // (B) int64 on the device from a decoder's output (its argmax when greedy without a penalty).
  at::Tensor next(const DecodeOutput& out);

 private:
  GenerationOptions options_;
  int64_t vocab_;  // the real vocabulary
  at::Generator gen_;
  at::Tensor seen_;  // (B, config.vocab_size) bool, with a penalty only
};

}  // namespace mcd
