// Peak memory of this process for metrics: CUDA caching-allocator peak on a GPU, peak resident
// set size (VmHWM) on the CPU.
#pragma once

#include "util/torch_compat.h"

namespace mcd::train {
int64_t peak_memory_bytes(const torch::Device& device);
void reset_peak_memory(const torch::Device& device);
}  // namespace mcd::train
