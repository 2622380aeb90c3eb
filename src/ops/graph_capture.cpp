// See graph_capture.h.
#include "ops/graph_capture.h"

#ifdef MCD_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace mcd::ops {

bool capturing_cuda_graph() {
#ifdef MCD_WITH_CUDA
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream().stream(), &status) != cudaSuccess) {
    (void)cudaGetLastError();  // a query's failure is no error of the caller's
    return false;
  }
  return status != cudaStreamCaptureStatusNone;
#else
  return false;
#endif
}

namespace {
thread_local bool checked_on_host = false;
}  // namespace

InputsCheckedOnHost::InputsCheckedOnHost() : saved_(checked_on_host) { checked_on_host = true; }
InputsCheckedOnHost::~InputsCheckedOnHost() { checked_on_host = saved_; }

bool skip_device_input_checks() { return checked_on_host || capturing_cuda_graph(); }

}  // namespace mcd::ops
