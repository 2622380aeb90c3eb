// See side_stream_capture.h.
#include "infer/side_stream_capture.h"

#ifdef MCD_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace mcd::infer {

void capture_after_warmup(at::cuda::CUDAGraph& graph, const torch::Device& device, const std::function<void()>& warmup,
                          const std::function<void()>& body) {
  // The side stream does not follow the caller's stream: wait for everything queued so far (the
  // buffers the caller just filled, e.g. a decoder's zeroed token, and any replay still in flight),
  // or the warm-up reads them before they are written.
  torch::cuda::synchronize(device.index());
  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool(false, device.index());
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    warmup();
    stream.synchronize();
    graph.capture_begin();
    body();
    graph.capture_end();
  }
  stream.synchronize();
}

}  // namespace mcd::infer
#endif
