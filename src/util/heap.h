// Process-wide heap settings for LibTorch's CPU work ([Note: heap trimming] in docs/NOTES.md).
#pragma once

namespace mcd {

// Keeps freed heap memory for reuse instead of handing it back to the kernel after every free
// (glibc only; elsewhere nothing). Called once, first thing in main: by `mamba-codesign` and by
// the CPU benchmarks, so that they time what the tool runs.
void keep_freed_heap();

}  // namespace mcd
