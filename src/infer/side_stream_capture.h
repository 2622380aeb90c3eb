// How GraphDecoder and GraphPrefill capture their CUDA graphs: on a side stream (the legacy default
// stream cannot capture), after one eager run of the same work there so that library handles and
// workspaces exist before the capture. CUDA builds only.
#pragma once

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>

#include <functional>

#include <torch/cuda.h>

#include "util/torch_compat.h"

namespace mcd::infer {

// Waits for the device, runs `warmup` on a side stream of `device` and waits for it, captures `body`
// into `graph` on that stream, and waits for the stream again.
void capture_after_warmup(at::cuda::CUDAGraph& graph, const torch::Device& device, const std::function<void()>& warmup,
                          const std::function<void()>& body);

}  // namespace mcd::infer
#endif
