// The standalone labs' timer (staged_bench.cuh's programs, scan_step_rows.cu): CUDA events around each launch on
// the default stream, 3 untimed launches first, then the median, min and max of `reps`. launch(r) runs the r-th
// launch (a lab passes the r-th input set, rotated past the L2). Errors go through the library's MCD_CUDA_CHECK.
#pragma once
#include <algorithm>
#include <vector>

#include "ops/cuda/cuda_common.cuh"

struct Timing {
  float median, min, max;
};

template <class Launch>
Timing time_launches(int reps, Launch&& launch) {
  cudaEvent_t a, b;
  MCD_CUDA_CHECK(cudaEventCreate(&a));
  MCD_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> us;
  for (int r = 0; r < reps + 3; ++r) {
    MCD_CUDA_CHECK(cudaEventRecord(a));
    launch(r);
    MCD_CUDA_CHECK(cudaEventRecord(b));
    MCD_CUDA_CHECK(cudaEventSynchronize(b));
    float ms;
    MCD_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    if (r >= 3) us.push_back(1000.f * ms);
  }
  MCD_CUDA_CHECK(cudaEventDestroy(a));
  MCD_CUDA_CHECK(cudaEventDestroy(b));
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us.front(), us.back()};
}
