// Peak memory readings (see memory_stats.h).
#include "train/memory_stats.h"

#include <fstream>
#include <string>

#ifdef MCD_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace mcd::train {

int64_t peak_memory_bytes(const torch::Device& device) {
#ifdef MCD_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[0].peak;  // [0] = aggregate over pool kinds
  }
#endif
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmHWM:") {
      int64_t kb = 0;
      f >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

void reset_peak_memory(const torch::Device& device) {
#ifdef MCD_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#endif
}

}  // namespace mcd::train
