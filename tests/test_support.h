// Helpers shared by the test executables: relative error, paths to ../shared data and the
// fixture, and a skip macro for tests whose data is absent (a user's fresh clone).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <functional>

#include <string>

#include "util/error.h"
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

// The message of the mcd::Error that `f` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Expects `call` to throw an mcd::Error whose message contains `fragment`.
inline void expect_error(const std::function<void()>& call, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "no mcd::Error; expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message '" << e.what() << "' lacks '" << fragment << "'";
  }
}

// One run of the `mamba-codesign` binary: exit status, standard output and standard error.
struct CliRun {
  int status;
  std::string out, err;
  std::string last_line() const {
    std::string s = out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    const auto pos = s.rfind('\n');
    return pos == std::string::npos ? s : s.substr(pos + 1);
  }
};

// Runs `<env> mamba-codesign --threads <threads> <args>` (threads 0 = all cores).
inline CliRun run_cli(const std::string& args, const std::string& env = "", int threads = 1) {
  TempDir tmp;
  const std::string cmd = env + " " + cli_path() + " --threads " + std::to_string(threads) + " " + args + " >" +
                          tmp.file("out") + " 2>" + tmp.file("err");
  const int rc = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(tmp.file("out")), slurp(tmp.file("err"))};
}

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

// Deterministic algorithms for a scope (warn_only: cuBLAS's workspace setting is not needed for
// one stream), restored after: where two runs must agree bit for bit, the default backward kernels'
// atomic sums would otherwise differ in the last bits.
struct DeterministicScope {
  bool saved = at::globalContext().deterministicAlgorithms();
  DeterministicScope() { at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true); }
  ~DeterministicScope() { at::globalContext().setDeterministicAlgorithms(saved, false); }
  DeterministicScope(const DeterministicScope&) = delete;
  DeterministicScope& operator=(const DeterministicScope&) = delete;
};
#endif

}  // namespace mcd::test

#ifdef MCD_TEST_WITH_TORCH
// A GPU test's first line: skips it where this build or machine has no CUDA device (ctest label `gpu`).
#define MCD_SKIP_IF_NO_CUDA() \
  if (!::mcd::cuda_available()) GTEST_SKIP() << "no CUDA device in this build or on this machine"
#endif

#define MCD_SKIP_IF_NO_FIXTURE()                                                              \
  do {                                                                                        \
    if (!::mcd::fs::exists(::mcd::test::fixture_dir() + "/model.safetensors"))          \
      GTEST_SKIP() << "fixture not found at " << ::mcd::test::fixture_dir()                  \
                   << " (../shared is absent in this clone)";                                 \
  } while (0)
