// Whether the calling thread's current CUDA stream is capturing a CUDA graph (train/step_graphs.h,
// infer/graph_decoder.h). Host-side checks that read device values back (.item(), a copy to the
// host) must not run then: a capture may not synchronise, and a replay would not run them anyway.
// Those inputs are checked on the host before they are staged into the graph's buffers.
#pragma once

namespace mcd::ops {

// False in builds without CUDA and when CUDA is not initialised on this thread's device.
bool capturing_cuda_graph();

}  // namespace mcd::ops
