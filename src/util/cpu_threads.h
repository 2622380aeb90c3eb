// The CPU thread pools a process runs on ([Note: CPU thread pools] in docs/NOTES.md).
//
// LibTorch's intra-op pool is set with at::set_num_threads. Debian's LibTorch runs its matrix
// products on OpenBLAS's pthread build, whose pool is OpenBLAS's own: at::set_num_threads does not
// reach it, and left alone it takes OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else every core.
// Both pools spin while they wait, so two processes of one thread each on two cores ran four busy
// threads. `--threads` therefore sets both (through these functions); `--blas-threads` parts them.
#pragma once

#include <nlohmann/json.hpp>

namespace mcd {

// The pool sizes asked for: LibTorch's `torch` and the BLAS library's `blas`, both >= 1.
struct CpuThreads {
  int torch = 1;
  int blas = 1;
};

// threads: LibTorch's pool (0 = every core); blas_threads: the BLAS pool (-1 = as threads,
// 0 = every core); cores: the machine's (>= 1 is used).
CpuThreads resolve_cpu_threads(int threads, int blas_threads, int cores);

// Sets the BLAS library's own pool to n >= 1 threads where the process has one: OpenBLAS, found by
// its exported `openblas_set_num_threads`. Returns false where there is none (MKL follows
// at::set_num_threads; a serial BLAS has no pool; a process without LibTorch has no BLAS).
bool set_blas_threads(int n);

// The BLAS pool's size, or -1 where the process has no separate BLAS pool.
int blas_threads();

// What a result records of the pools it ran on (profile JSON, training summaries): {"torch": torch_threads
// (at::get_num_threads(), which this LibTorch-free layer cannot call), "blas": the BLAS pool, null where none}.
nlohmann::json cpu_threads_record(int torch_threads);

}  // namespace mcd
