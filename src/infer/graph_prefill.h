// A prefill of a fixed (batch, length) captured once as a CUDA graph (issue 14): at B = 1 an eager
// prefill is partly bound by the host launching each layer's ~15 ops (130M at L = 4096 on an H200:
// 13.3 ms of GPU work in a 15.1 ms span; a shorter prompt leaves the host a larger share); a replay
// launches them all with one call. For
// serving with fixed shapes (or shapes bucketed to a few lengths) and for `profile --prefill-mode
// graph`; `generate` keeps the eager prefill, which a single prompt would not amortise a capture on.
// The token buffer, the cache and the last position's logits are fixed buffers: run() writes the
// prompt into the first, replays, and returns a view of the last.
#pragma once

#include <memory>

#include "model/mamba.h"

namespace mcd::infer {

class GraphPrefill {
 public:
  // Captures the prefill of `batch` × `length` tokens of `model` (on a CUDA device, eval mode).
  // The model must outlive this object and keep its parameters' storage.
  GraphPrefill(MambaLMImpl& model, int64_t batch, int64_t length);
  ~GraphPrefill();

  // Checks `ids` (batch, length) on the host (shape, ids in the vocabulary), copies them into the
  // token buffer and replays. Returns the last position's logits (batch, V), a view of the fixed buffer.
  const at::Tensor& run(const at::Tensor& ids);
  // Replays on the ids already in the buffer (a timed loop: no host work, no synchronisation).
  const at::Tensor& replay();
  // The states after the prefill (fixed buffers), e.g. for a decoder to continue from.
  const InferenceCache& cache() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcd::infer
