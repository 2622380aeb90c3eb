// Chrome traces through LibTorch's profilers (see trace.h).
#include "infer/trace.h"

#include <torch/csrc/autograd/profiler_kineto.h>
// The legacy profiler is the fallback of LibTorch builds without Kineto (Debian's 1.13); a LibTorch
// that has dropped its header has Kineto.
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define MCD_HAVE_LEGACY_PROFILER 1
#endif

#include <cstdio>
#include <set>

#include "util/error.h"
#include "util/fs.h"
#include "util/torch_compat.h"

namespace mcd::infer {
namespace {

namespace ap = torch::autograd::profiler;
namespace pi = torch::profiler::impl;

std::set<pi::ActivityType> activities(bool cuda) {
  std::set<pi::ActivityType> a{pi::ActivityType::CPU};
  if (cuda) a.insert(pi::ActivityType::CUDA);
  return a;
}

// Whether this LibTorch can write a Kineto trace: builds without Kineto accept the profiler but
// refuse to save, so a trace of nothing is tried once.
bool kineto_saves(const std::string& probe_path) {
  static const bool ok = [&] {
    try {
      const pi::ProfilerConfig config(pi::ProfilerState::KINETO);
      ap::prepareProfiler(config, activities(false));
      ap::enableProfiler(config, activities(false));
      ap::disableProfiler()->save(probe_path);
      std::remove(probe_path.c_str());
      return true;
    } catch (const std::exception&) {
      std::remove(probe_path.c_str());
      return false;
    }
  }();
  return ok;
}

}  // namespace

std::string write_chrome_trace(const std::string& path, bool cuda, const std::function<void()>& work) {
  if (kineto_saves(path + ".probe")) {
    const pi::ProfilerConfig config(pi::ProfilerState::KINETO);
    ap::prepareProfiler(config, activities(cuda));
    ap::enableProfiler(config, activities(cuda));
    try {
      work();
    } catch (...) {
      ap::disableProfiler();
      throw;
    }
    ap::disableProfiler()->save(path);
    return "kineto";
  }
#ifdef MCD_HAVE_LEGACY_PROFILER
  {
    ap::RecordProfile guard(path);  // writes the file when it goes out of scope
    work();
  }
  MCD_CHECK(fs::exists(path), path, ": the profiler wrote no trace");
  return "legacy";
#else
  (void)cuda;
  fail(cat(path, ": this LibTorch can neither save a Kineto trace nor has the legacy profiler"));
#endif
}

}  // namespace mcd::infer
