// Chrome traces (chrome://tracing, ui.perfetto.dev) of a piece of work, for `profile --trace`:
// LibTorch's Kineto profiler (operators on the host and, on CUDA, the kernels on the device) where
// the LibTorch build has it (PyTorch's wheels), else its legacy profiler (host operators only;
// Debian's CPU build).
#pragma once

#include <functional>
#include <string>

namespace mcd::infer {

// Runs `work` once under the profiler and writes the trace to `path`; returns "kineto" or "legacy".
std::string write_chrome_trace(const std::string& path, bool cuda, const std::function<void()>& work);

}  // namespace mcd::infer
