// How GraphDecoder and GraphPrefill capture their CUDA graphs: on a side stream (the legacy default
// stream cannot capture), after one eager run of the same work there so that library handles and
// workspaces exist before the capture. CUDA builds only.
#pragma once

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>

#include <functional>
#include <vector>

#include <torch/cuda.h>

#include "util/torch_compat.h"

namespace mcd::infer {

// Waits for the device, runs `warmup` on a side stream of `device` and waits for it, captures `body`
// into `graph` on that stream, and waits for the stream again.
void capture_after_warmup(at::cuda::CUDAGraph& graph, const torch::Device& device, const std::function<void()>& warmup,
                          const std::function<void()>& body);

// Runs each piece of `work` on a stream of its own from the pool, all after what the current stream
// has queued and before what it queues next (events: inside a capture, branches of the graph that
// may run side by side). The pieces must touch disjoint memory. What a piece allocates belongs to its
// stream; a result the current stream reads later stays valid because that stream's next reuse of the
// memory waits for this call's next fork (the decoder's step order).
void run_side_by_side(const std::vector<std::function<void()>>& work);

}  // namespace mcd::infer
#endif
