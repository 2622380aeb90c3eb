// CPU thread pools (cpu_threads.h).
#include "util/cpu_threads.h"

#include <dlfcn.h>

#include <algorithm>

namespace mcd {

CpuThreads resolve_cpu_threads(int threads, int blas_threads, int cores) {
  const int all = std::max(1, cores);
  CpuThreads t;
  t.torch = threads > 0 ? threads : all;
  t.blas = blas_threads < 0 ? t.torch : blas_threads == 0 ? all : blas_threads;
  return t;
}

namespace {
// Looked up in the symbols the process already has (LibTorch's libblas.so.3 brings libopenblas.so.0
// in as a dependency): nothing is loaded here, so a process without OpenBLAS finds nothing.
template <class F>
F openblas_function(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

bool set_blas_threads(int n) {
  auto set = openblas_function<void (*)(int)>("openblas_set_num_threads");
  if (!set || n < 1) return false;
  set(n);
  return true;
}

int blas_threads() {
  auto get = openblas_function<int (*)()>("openblas_get_num_threads");
  return get ? get() : -1;
}

nlohmann::json cpu_threads_record(int torch_threads) {
  const int blas = blas_threads();
  return {{"torch", torch_threads}, {"blas", blas < 0 ? nlohmann::json() : nlohmann::json(blas)}};
}

}  // namespace mcd
