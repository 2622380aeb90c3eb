// Decoding with the whole token step — every layer's step, the LM head and the argmax —
// captured once as a CUDA graph for a fixed batch size (issue 14). Replaying the graph launches
// the step's few hundred kernels with one call and no host work, which is what makes batch-1
// decode fast when each kernel is tiny. The cache, the current tokens, the logits and the next
// tokens live in fixed buffers; each replay writes the next tokens back into the input buffer, so
// successive replays continue the sequence.
#pragma once

#include <memory>
#include <vector>

#include "model/generation.h"
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
  // (greedy: argmax of the last position's logits, which logits() then holds). Returns that token
  // (batch) on the device.
  at::Tensor prefill(const at::Tensor& prompt);
  // One greedy step by graph replay; returns the new tokens (batch), a view of the fixed buffer.
  at::Tensor step();
  // The same step on given input tokens (batch) instead of the last step's: rows still reading
  // their prompt (generate_graph_batch).
  at::Tensor step(const at::Tensor& tokens);
  // The logits of the last step (batch, V) float32, a view of the fixed buffer.
  const at::Tensor& logits() const;
  int64_t batch() const;
  const InferenceCache& cache() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// model/generation.h's generate and generate_batch (every option: greedy, or sampled with its filters
// and repetition penalty, EOS) with each step replayed from one GraphDecoder: the same loop, so the
// same tokens as the eager step on the same device for the same seed; the choice of the next token
// runs on the device between replays (greedy without a penalty takes the graph's own argmax).
at::Tensor generate_graph(MambaLMImpl& model, const at::Tensor& prompts, const GenerationOptions& options);
std::vector<std::vector<int64_t>> generate_graph_batch(MambaLMImpl& model,
                                                       const std::vector<std::vector<int64_t>>& prompts,
                                                       const GenerationOptions& options,
                                                       const TokenCallback& on_token = {});

}  // namespace mcd::infer
