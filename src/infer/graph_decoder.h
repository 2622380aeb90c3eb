// Greedy decoding with the whole token step — every layer's step, the LM head and the argmax —
// captured once as a CUDA graph for a fixed batch size (issue 14). Replaying the graph launches
// the step's few hundred kernels with one call and no host work, which is what makes batch-1
// decode fast when each kernel is tiny. The cache, the current tokens, the logits and the next
// tokens live in fixed buffers; each replay writes the next tokens back into the input buffer, so
// successive replays continue the sequence.
#pragma once

#include <memory>
#include <vector>

#include "model/mamba.h"

namespace mcd::infer {

// Whether this build can capture graphs (a CUDA build) and a CUDA device is present.
bool graph_decoding_available();

class GraphDecoder {
 public:
  // Captures the step for `batch` sequences of `model` (on a CUDA device, eval mode). The model
  // must outlive the decoder and keep its parameters' storage.
  GraphDecoder(MambaLMImpl& model, int64_t batch);
  ~GraphDecoder();

  // Resets the cache, consumes `prompt` (batch, L ≥ 1) eagerly and sets the first token to decode
  // (greedy: argmax of the last position's logits). Returns that token (batch) on the device.
  at::Tensor prefill(const at::Tensor& prompt);
  // One greedy step by graph replay; returns the new tokens (batch), a view of the fixed buffer.
  at::Tensor step();
  // The same step on given input tokens (batch) instead of the last step's: rows still reading
  // their prompt (generate_greedy_graph_batch).
  at::Tensor step(const at::Tensor& tokens);
  // The logits of the last step (batch, V) float32, a view of the fixed buffer.
  const at::Tensor& logits() const;
  int64_t batch() const;
  const InferenceCache& cache() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Greedy generation through a GraphDecoder: prompts (B, L) → (B, L + max_new_tokens) on the CPU.
// With eos_token_id ≥ 0 a row that produced it is padded with it afterwards (as model/generation.h
// does), but the graph keeps stepping: the batch decodes max_new_tokens steps in any case.
at::Tensor generate_greedy_graph(MambaLMImpl& model, const at::Tensor& prompts, int64_t max_new_tokens,
                                 int64_t eos_token_id = -1);

// Prompts of different lengths through one GraphDecoder, with the semantics of model/generation.h's
// generate_batch (greedy): the shortest length prefilled for every row, then each row fed its own
// prompt tokens and its argmax after; per prompt the prompt and up to max_new_tokens tokens, ending
// at the first EOS when eos_token_id ≥ 0.
std::vector<std::vector<int64_t>> generate_greedy_graph_batch(MambaLMImpl& model,
                                                              const std::vector<std::vector<int64_t>>& prompts,
                                                              int64_t max_new_tokens, int64_t eos_token_id = -1);

}  // namespace mcd::infer
