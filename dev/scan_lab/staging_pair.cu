// The staged block forward's two ways of staging B and C (BlockFwdTraits::kStageFixedColumn off / on) at the library's
// three staged configurations, without the rest of the lab: a standalone program (CUDA runtime and the scan headers,
// no LibTorch, no mcd_kernels) that builds in under a minute, so that one short device call can time it. The staging
// changes where copies are issued, not a single sum, so each pair must give the same output bits; then each
// configuration is timed (CUDA events, median of --reps launches, bf16, B = 1, time-contiguous rows as the model's
// prefill passes them, inputs rotated past the 50 MB L2).
//   nvcc -std=c++17 -O3 -arch=sm_90 --use_fast_math --expt-relaxed-constexpr -I src dev/scan_lab/staging_pair.cu
//   ./a.out [--reps N] [--shape L,E,N] …
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/cuda/selective_scan_block_fwd.cuh"

namespace cu = mcd::ops::cuda;
using Flags = cu::ScanFlags<true, true, false>;
using T = __nv_bfloat16;

#define CHECK_CUDA(x)                                                                    \
  do {                                                                                   \
    cudaError_t e_ = (x);                                                                \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));    \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

// One input set on the device: u, δ, z (E, L), B, C (N, L) in bf16; A (E, N), D, bias (E) fp32; out (E, L).
struct Set {
  T *u, *dt, *z, *B, *C, *out;
  float *A, *D, *bias;
};

Set make_set(int64_t L, int64_t E, int64_t N, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto upload = [&](int64_t n, float scale, float shift) {
    std::vector<T> h(n);
    for (auto& v : h) v = __float2bfloat16(shift + scale * nd(g));
    T* d;
    CHECK_CUDA(cudaMalloc(&d, n * sizeof(T)));
    CHECK_CUDA(cudaMemcpy(d, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
  };
  auto upload_f = [&](int64_t n, auto gen) {
    std::vector<float> h(n);
    for (int64_t i = 0; i < n; ++i) h[i] = gen(i);
    float* d;
    CHECK_CUDA(cudaMalloc(&d, n * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
  };
  Set s;
  s.u = upload(E * L, 1.f, 0.f);
  s.dt = upload(E * L, 0.5f, -1.f);  // softplus(δ + bias) of typical Δ
  s.z = upload(E * L, 1.f, 0.f);
  s.B = upload(N * L, 1.f, 0.f);
  s.C = upload(N * L, 1.f, 0.f);
  CHECK_CUDA(cudaMalloc(&s.out, E * L * sizeof(T)));
  s.A = upload_f(E * N, [&](int64_t i) { return -float(1 + i % N); });  // S4D-real, as the model initialises A
  s.D = upload_f(E, [&](int64_t) { return nd(g); });
  s.bias = upload_f(E, [&](int64_t) { return 0.1f * nd(g); });
  return s;
}

cu::SelectiveScanParams params(const Set& s, int64_t L, int64_t E, int64_t N) {
  cu::SelectiveScanParams p;
  p.dtype = cu::DType::kBFloat16;
  p.batch = 1, p.dim = E, p.len = L, p.dstate = N;
  p.algorithm = cu::ScanAlgorithm::kBlockForwardStaged;
  const cu::Strides3 rows{E * L, L, 1}, bc{N * L, L, 1};
  p.u = s.u, p.u_s = rows;
  p.delta = s.dt, p.delta_s = rows;
  p.z = s.z, p.z_s = rows;
  p.Bm = s.B, p.B_s = bc;
  p.Cm = s.C, p.C_s = bc;
  p.A = s.A, p.D = s.D, p.delta_bias = s.bias;
  p.delta_softplus = true;
  p.out = s.out, p.out_s = rows;
  return p;
}

template <class Tr>
void run(const cu::SelectiveScanParams& p) {
  cu::selective_scan_block_fwd_run<Tr, T, Flags>(p);
}

struct Config {
  const char* name;
  void (*fn)(const cu::SelectiveScanParams&);
};

int main(int argc, char** argv) {
  int reps = 30;
  std::vector<int64_t> shape_l, shape_e, shape_n;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--shape" && i + 1 < argc) {
      long l, e, n;
      if (std::sscanf(argv[++i], "%ld,%ld,%ld", &l, &e, &n) != 3) return std::fprintf(stderr, "--shape L,E,N\n"), 2;
      shape_l.push_back(l), shape_e.push_back(e), shape_n.push_back(n);
    } else {
      return std::fprintf(stderr, "usage: staging_pair [--reps N] [--shape L,E,N]...\n"), 2;
    }
  }
  if (shape_l.empty()) shape_l = {4096, 4096, 4096}, shape_e = {1536, 2048, 1152}, shape_n = {16, 16, 16};
  // Pairs: per-copy staging (the library's), fixed-column staging (BlockFwdTraits::kStageFixedColumn).
  const std::vector<std::pair<Config, Config>> pairs = {
      {{"59 BlockFwdStaged", &run<cu::BlockFwdTraits<1, 16, 4, 2, true, true, true>>},
       {"79 59 fixed columns", &run<cu::BlockFwdTraits<1, 16, 4, 2, true, true, true, true>>}},
      {{"65 BlockFwdStagedEight", &run<cu::BlockFwdTraits<1, 16, 8, 2, true, true, true>>},
       {"80 65 fixed columns", &run<cu::BlockFwdTraits<1, 16, 8, 2, true, true, true, true>>}},
      {{"48 BlockFwdStagedWide", &run<cu::BlockFwdTraits<1, 8, 8, 2, true, true>>},
       {"48 fixed columns", &run<cu::BlockFwdTraits<1, 8, 8, 2, true, true, false, true>>}},
  };
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s\n", prop.name);
  bool all_same = true;
  for (size_t si = 0; si < shape_l.size(); ++si) {
    const int64_t L = shape_l[si], E = shape_e[si], N = shape_n[si];
    const int64_t set_bytes = (4 * E + 2 * N) * L * int64_t(sizeof(T));
    const int sets = int(std::max<int64_t>(2, (int64_t(128) << 20) / set_bytes + 1));  // > 2.5× the L2
    std::vector<Set> in;
    for (int k = 0; k < sets; ++k) in.push_back(make_set(L, E, N, 1234u + k));
    const int64_t n_out = E * L;
    std::vector<T> ref(n_out), got(n_out);
    for (const auto& pr : pairs) {
      for (const Config* c : {&pr.first, &pr.second}) {
        CHECK_CUDA(cudaMemset(in[0].out, 0xFF, n_out * sizeof(T)));  // poisoned: NaN unless written
        c->fn(params(in[0], L, E, N));
        CHECK_CUDA(cudaDeviceSynchronize());
        CHECK_CUDA(cudaMemcpy(c == &pr.first ? ref.data() : got.data(), in[0].out, n_out * sizeof(T),
                              cudaMemcpyDeviceToHost));
      }
      const bool same = std::memcmp(ref.data(), got.data(), n_out * sizeof(T)) == 0;
      int64_t nan = 0;
      for (const T& v : ref) nan += __bfloat162float(v) != __bfloat162float(v);
      all_same = all_same && same && nan == 0;
      std::printf("L%ld E%ld N%ld  %-24s vs %-24s outputs %s, %ld NaN\n", long(L), long(E), long(N), pr.first.name,
                  pr.second.name, same ? "bit for bit equal" : "DIFFER", long(nan));
    }
    cudaEvent_t a, b;
    CHECK_CUDA(cudaEventCreate(&a));
    CHECK_CUDA(cudaEventCreate(&b));
    for (int round = 0; round < 2; ++round) {
      for (const auto& pr : pairs) {
        for (const Config* c : {&pr.first, &pr.second}) {
          std::vector<float> us;
          for (int r = 0; r < reps + 3; ++r) {
            const auto p = params(in[r % sets], L, E, N);
            CHECK_CUDA(cudaEventRecord(a));
            c->fn(p);
            CHECK_CUDA(cudaEventRecord(b));
            CHECK_CUDA(cudaEventSynchronize(b));
            float ms;
            CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
            if (r >= 3) us.push_back(1000.f * ms);
          }
          std::sort(us.begin(), us.end());
          std::printf("L%ld E%ld N%ld round %d  %-24s median %.1f us  (min %.1f, max %.1f)\n", long(L), long(E), long(N),
                      round + 1, c->name, us[us.size() / 2], us.front(), us.back());
        }
      }
    }
    for (auto& s : in)
      for (void* ptr : {(void*)s.u, (void*)s.dt, (void*)s.z, (void*)s.B, (void*)s.C, (void*)s.out, (void*)s.A,
                        (void*)s.D, (void*)s.bias})
        CHECK_CUDA(cudaFree(ptr));
  }
  std::printf("check: %s\n", all_same ? "every pair bit for bit equal, no NaN" : "FAILED");
  return all_same ? 0 : 1;
}
