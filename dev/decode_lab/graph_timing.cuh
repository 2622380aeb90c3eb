// The decode labs' timer: a CUDA graph of `reps` steps (step(i) launches step i's kernels on stream s, e.g. on input
// set i, rotated past L2), captured once and replayed; the median of five replays, µs per step. Plain CUDA.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "ops/cuda/cuda_common.cuh"

namespace mcd::dev {

inline double graph_us(cudaStream_t s, int reps, const std::function<void(int)>& step) {
  step(0);
  MCD_CUDA_CHECK(cudaStreamSynchronize(s));
  cudaGraph_t g;
  cudaGraphExec_t ge;
  MCD_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < reps; ++i) step(i);
  MCD_CUDA_CHECK(cudaStreamEndCapture(s, &g));
  MCD_CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
  MCD_CUDA_CHECK(cudaGraphLaunch(ge, s));  // warm-up
  cudaEvent_t a, b;
  MCD_CUDA_CHECK(cudaEventCreate(&a));
  MCD_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> ms(5);
  for (float& m : ms) {
    MCD_CUDA_CHECK(cudaEventRecord(a, s));
    MCD_CUDA_CHECK(cudaGraphLaunch(ge, s));
    MCD_CUDA_CHECK(cudaEventRecord(b, s));
    MCD_CUDA_CHECK(cudaEventSynchronize(b));
    MCD_CUDA_CHECK(cudaEventElapsedTime(&m, a, b));
  }
  std::sort(ms.begin(), ms.end());
  MCD_CUDA_CHECK(cudaGraphExecDestroy(ge));
  MCD_CUDA_CHECK(cudaGraphDestroy(g));
  return 1000.0 * ms[2] / reps;
}

}  // namespace mcd::dev
