#include "util/heap.h"

#include <cstdlib>  // defines __GLIBC__ (through <features.h>) where glibc is the C library

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace mcd {

void keep_freed_heap() {
#ifdef __GLIBC__
  // [Note: heap trimming] LibTorch frees and re-allocates the same large CPU buffers every step;
  // glibc's default gives the top of the heap back to the kernel on each free and faults it in
  // again on the next allocation. Keeping up to 2 GiB of freed heap (and growing it in 1 GiB
  // steps) made a CPU pre-training step 3.3× faster on the project's 2-core machines (docs/NOTES.md).
  mallopt(M_TRIM_THRESHOLD, 2147483647);
  mallopt(M_TOP_PAD, 1 << 30);
#endif
}

}  // namespace mcd
