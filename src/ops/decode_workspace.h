// The scratch a decode step's split-K products share (ops option decode_split_k;
// ops/cuda/decode_linear_params.h, DecodeSplitKParams): fp32 partial sums and one arrival counter per
// column tile, zeros between calls. A model's inference cache owns one, made with the cache — before
// any CUDA graph is captured on it, so a graph's replays use the very buffers its capture did — and
// makes it current for its step (ScopedDecodeWorkspace); that step's products on this thread use it.
// One step at a time per workspace: its kernels run in stream order, each one's last block leaving
// the counters at zero for the next.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "util/torch_compat.h"

namespace mcd::ops {

struct DecodeWorkspace {
  at::Tensor partials;  // fp32
  at::Tensor counters;  // int32, zeros
  bool defined() const { return partials.defined(); }
};

// A workspace for products of these (in_features, out_features) shapes at up to 64 rows on a CUDA
// `device`; empty (undefined) where no split-K kernel can run (a CPU device, a build without CUDA,
// no shape the kernel takes).
DecodeWorkspace make_decode_workspace(const std::vector<std::pair<int64_t, int64_t>>& shapes,
                                      const torch::Device& device);

// While an object of this class lives on a thread, `workspace` (null: none) is that thread's current one.
class ScopedDecodeWorkspace {
 public:
  explicit ScopedDecodeWorkspace(const DecodeWorkspace* workspace);
  ~ScopedDecodeWorkspace();
  ScopedDecodeWorkspace(const ScopedDecodeWorkspace&) = delete;
  ScopedDecodeWorkspace& operator=(const ScopedDecodeWorkspace&) = delete;

 private:
  const DecodeWorkspace* saved_;
};

const DecodeWorkspace* current_decode_workspace();  // null when none

}  // namespace mcd::ops
