#include "ops/decode_workspace.h"

#include <algorithm>

#ifdef MCD_WITH_CUDA
#include "ops/cuda/decode_linear_params.h"
#endif

namespace mcd::ops {
namespace {
thread_local const DecodeWorkspace* g_current = nullptr;
}  // namespace

DecodeWorkspace make_decode_workspace(const std::vector<std::pair<int64_t, int64_t>>& shapes,
                                      const torch::Device& device) {
  DecodeWorkspace w;
#ifdef MCD_WITH_CUDA
  if (!device.is_cuda()) return w;
  int64_t floats = 0, tiles = 0;
  for (const auto& [in, out] : shapes) {
    if (cuda::decode_split_k_slice(in) == 0 || out < 1 || out > cuda::kDecodeSplitKMaxOut) continue;
    floats = std::max(floats, cuda::decode_split_k_partial_floats(in, out));
    tiles = std::max(tiles, cuda::decode_split_k_tiles(out));
  }
  if (floats == 0) return w;
  w.partials = torch::empty({floats}, torch::TensorOptions(torch::kFloat).device(device));
  w.counters = torch::zeros({tiles}, torch::TensorOptions(torch::kInt).device(device));
#else
  (void)shapes, (void)device;
#endif
  return w;
}

ScopedDecodeWorkspace::ScopedDecodeWorkspace(const DecodeWorkspace* workspace) : saved_(g_current) {
  g_current = workspace != nullptr && workspace->defined() ? workspace : nullptr;
}
ScopedDecodeWorkspace::~ScopedDecodeWorkspace() { g_current = saved_; }

const DecodeWorkspace* current_decode_workspace() { return g_current; }

}  // namespace mcd::ops
