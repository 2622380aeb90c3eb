// Helpers shared by the test executables: relative error, paths to ../shared data and the
// fixture, and a skip macro for tests whose data is absent (a user's fresh clone).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "util/fs.h"

#ifdef MCD_TEST_WITH_TORCH
#include "util/torch_compat.h"
#endif

namespace mcd::test {

inline std::string shared_dir() {
  if (const char* env = std::getenv("MCD_SHARED_DIR"); env && *env) return env;
  return MCD_SHARED_DIR;
}
inline std::string fixture_dir() { return shared_dir() + "/fixtures/hf_mamba_tiny"; }
inline std::string source_dir() { return MCD_SOURCE_DIR; }
inline std::string cli_path() { return MCD_CLI_PATH; }

// A fresh empty temporary folder, removed by the destructor. (No std::filesystem: see
// [Note: no std::filesystem] in docs/NOTES.md.)
struct TempDir {
  std::string path;
  TempDir() : path(fs::make_temp_dir("mcd_test_")) {}
  ~TempDir() { fs::remove_tree(path); }
  std::string file(const std::string& name) const { return fs::join(path, name); }
};

#ifdef MCD_TEST_WITH_TORCH
// ‖got − ref‖ / ‖ref‖ over the whole tensor, in float64. NaN anywhere gives +inf.
inline double rel_err(const at::Tensor& got, const at::Tensor& ref) {
  const at::Tensor g = got.detach().to(torch::kCPU, at::kDouble);
  const at::Tensor r = ref.detach().to(torch::kCPU, at::kDouble);
  EXPECT_EQ(g.sizes(), r.sizes());
  if (g.sizes() != r.sizes()) return INFINITY;
  if (!torch::isfinite(g).all().item<bool>()) return INFINITY;
  const double denom = r.norm().item<double>();
  const double num = (g - r).norm().item<double>();
  return denom > 0 ? num / denom : num;
}
#endif

}  // namespace mcd::test

#define MCD_SKIP_IF_NO_FIXTURE()                                                              \
  do {                                                                                        \
    if (!::mcd::fs::exists(::mcd::test::fixture_dir() + "/model.safetensors"))          \
      GTEST_SKIP() << "fixture not found at " << ::mcd::test::fixture_dir()                  \
                   << " (../shared is absent in this clone)";                                 \
  } while (0)
