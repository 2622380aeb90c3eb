// Tests for util/cpu_threads.h: the pool sizes asked for from --threads / --blas-threads. (That the
// BLAS pool really takes its size is tested where LibTorch, and so OpenBLAS, is loaded:
// ProfileCli.SetsAndRecordsBothCpuThreadPools.)
#include <gtest/gtest.h>

#include "util/cpu_threads.h"

namespace mcd {
namespace {

TEST(CpuThreads, BlasFollowsThreadsUnlessGivenAndZeroMeansEveryCore) {
  const auto r = [](int threads, int blas, int cores) {
    const CpuThreads t = resolve_cpu_threads(threads, blas, cores);
    return std::make_pair(t.torch, t.blas);
  };
  EXPECT_EQ(r(1, -1, 8), std::make_pair(1, 1));  // ./run.sh's stages: one thread in each pool
  EXPECT_EQ(r(3, -1, 8), std::make_pair(3, 3));
  EXPECT_EQ(r(0, -1, 8), std::make_pair(8, 8));  // the default: every core, both pools
  EXPECT_EQ(r(1, 0, 8), std::make_pair(1, 8));   // one process alone: the BLAS pool on every core
  EXPECT_EQ(r(2, 5, 8), std::make_pair(2, 5));
  EXPECT_EQ(r(0, -1, 0), std::make_pair(1, 1));  // hardware_concurrency() may say 0 ("unknown")
  EXPECT_EQ(r(0, 0, -3), std::make_pair(1, 1));
}

TEST(CpuThreads, SettingAPoolThatIsNotThereSaysSo) {
  // This test binary does not link LibTorch; whatever BLAS the process has, the setter's answer
  // agrees with the getter's, and a size below 1 is refused.
  EXPECT_EQ(set_blas_threads(1), blas_threads() >= 0);
  EXPECT_FALSE(set_blas_threads(0));
}

}  // namespace
}  // namespace mcd
