// Autoregressive generation on the recurrent step mode: one full-sequence prefill of the
// prompt, then one step per new token (O(1) work per token). Greedy, temperature, top-k and
// top-p (nucleus) sampling; a seeded generator makes sampling reproducible.
#pragma once

#include <cstdint>
#include <vector>

#include "model/mamba.h"

namespace mcd {

struct GenerationOptions {
  int64_t max_new_tokens = 16;
  bool greedy = false;
  double temperature = 1.0;  // > 0; ignored when greedy
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  uint64_t seed = 0;
  bool stop_at_eos = true;
  int64_t eos_token_id = -1;  // < 0: the model config's
};

// prompts: (B, L) int64 on any device. Returns (B, L + generated) on CPU; a row that hit EOS is
// padded with EOS until every row has stopped or max_new_tokens is reached.
at::Tensor generate(MambaLMImpl& model, const at::Tensor& prompts, const GenerationOptions& options);

// Prompts of different lengths generated together. The shortest prompt's length is prefilled for
// every row at once; then all rows step together, each fed its own next prompt token while it has
// one (the step mode continues the prefill's state exactly) and its sampled token after that.
// Returns per prompt the prompt followed by up to max_new_tokens generated tokens (ending at the
// first EOS when stop_at_eos). Greedy rows equal generating each prompt alone; sampled rows draw
// from one generator shared by the batch.
std::vector<std::vector<int64_t>> generate_batch(MambaLMImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& options);

// The batch both generate_batch and its CUDA-graph form (infer/graph_decoder.h) prefill: every
// prompt's first tokens up to the shortest prompt's length, (B, shortest) int64 on the CPU. Throws
// for no prompts or an empty one.
at::Tensor prompts_prefix(const std::vector<std::vector<int64_t>>& prompts);

// Convenience for one prompt.
std::vector<int64_t> generate(MambaLMImpl& model, const std::vector<int64_t>& prompt,
                              const GenerationOptions& options, torch::Device device);

// Picks the next token from logits (B, V): greedy argmax or filtered sampling. Exposed for tests.
at::Tensor sample_next(const at::Tensor& logits, const GenerationOptions& options, at::Generator& gen);

}  // namespace mcd
