// What the standalone block-forward programs (staging_pair.cu, staged_variants.cu, narrow_variants.cu) share: bf16
// input sets on the device shaped as the model's prefill passes them (B = 1, time-contiguous rows), their scan
// parameters, their arguments, the timer (lab_timing.cuh) over input sets rotated past the 50 MB L2, and the variant
// programs' body (compare_and_time).
#pragma once
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lab_timing.cuh"
#include "ops/cuda/selective_scan_block_fwd.cuh"

namespace cu = mcd::ops::cuda;
using Flags = cu::ScanFlags<true, true, false>;
using T = __nv_bfloat16;

// One input set on the device: u, δ, z (E, L), B, C (N, L) in bf16; A (E, N), D, bias (E) fp32; out (E, L).
struct Set {
  T *u, *dt, *z, *B, *C, *out;
  float *A, *D, *bias;
};

inline Set make_set(int64_t L, int64_t E, int64_t N, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto upload = [&](int64_t n, float scale, float shift) {
    std::vector<T> h(n);
    for (auto& v : h) v = __float2bfloat16(shift + scale * nd(g));
    T* d;
    MCD_CUDA_CHECK(cudaMalloc(&d, n * sizeof(T)));
    MCD_CUDA_CHECK(cudaMemcpy(d, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
  };
  auto upload_f = [&](int64_t n, auto gen) {
    std::vector<float> h(n);
    for (int64_t i = 0; i < n; ++i) h[i] = gen(i);
    float* d;
    MCD_CUDA_CHECK(cudaMalloc(&d, n * sizeof(float)));
    MCD_CUDA_CHECK(cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
  };
  Set s;
  s.u = upload(E * L, 1.f, 0.f);
  s.dt = upload(E * L, 0.5f, -1.f);  // softplus(δ + bias) of typical Δ
  s.z = upload(E * L, 1.f, 0.f);
  s.B = upload(N * L, 1.f, 0.f);
  s.C = upload(N * L, 1.f, 0.f);
  MCD_CUDA_CHECK(cudaMalloc(&s.out, E * L * sizeof(T)));
  s.A = upload_f(E * N, [&](int64_t i) { return -float(1 + i % N); });  // S4D-real, as the model initialises A
  s.D = upload_f(E, [&](int64_t) { return nd(g); });
  s.bias = upload_f(E, [&](int64_t) { return 0.1f * nd(g); });
  return s;
}

inline cu::SelectiveScanParams params(const Set& s, int64_t L, int64_t E, int64_t N) {
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

// Enough input sets that together they exceed 2.5× the L2 (each launch reads a set the last ones did not).
inline int rotated_sets(int64_t L, int64_t E, int64_t N) {
  const int64_t set_bytes = (4 * E + 2 * N) * L * int64_t(sizeof(T));
  return int(std::max<int64_t>(2, (int64_t(128) << 20) / set_bytes + 1));
}

// One shape's input sets, rotated_sets of them (seeds 1234, 1235, …).
inline std::vector<Set> input_sets(int64_t L, int64_t E, int64_t N) {
  std::vector<Set> in;
  for (int k = 0, sets = rotated_sets(L, E, N); k < sets; ++k) in.push_back(make_set(L, E, N, 1234u + k));
  return in;
}

inline void free_set(Set& s) {
  for (void* ptr : {(void*)s.u, (void*)s.dt, (void*)s.z, (void*)s.B, (void*)s.C, (void*)s.out, (void*)s.A, (void*)s.D,
                    (void*)s.bias})
    MCD_CUDA_CHECK(cudaFree(ptr));
}

// c's output on in[0] (its out buffer poisoned first: NaN wherever c writes nothing).
inline std::vector<T> output_of(const Config& c, const Set& s, int64_t L, int64_t E, int64_t N) {
  const int64_t n_out = E * L;
  std::vector<T> out(n_out);
  MCD_CUDA_CHECK(cudaMemset(s.out, 0xFF, n_out * sizeof(T)));
  c.fn(params(s, L, E, N));
  MCD_CUDA_CHECK(cudaDeviceSynchronize());
  MCD_CUDA_CHECK(cudaMemcpy(out.data(), s.out, n_out * sizeof(T), cudaMemcpyDeviceToHost));
  return out;
}

// reps timed launches of c (lab_timing.cuh), each on the next input set.
inline Timing time_config(const Config& c, const std::vector<Set>& in, int64_t L, int64_t E, int64_t N, int reps) {
  return time_launches(reps, [&](int r) { c.fn(params(in[r % in.size()], L, E, N)); });
}

// The programs' arguments: --reps N (default 30) and --shape L,E,N, repeatable (replacing `shapes`, the defaults).
// False (after a usage line naming `program`) on anything else.
struct Shape {
  int64_t L, E, N;
};
inline bool parse_lab_args(int argc, char** argv, const char* program, int& reps, std::vector<Shape>& shapes) {
  reps = 30;
  std::vector<Shape> given;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    long l, e, n;
    if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--shape" && i + 1 < argc && std::sscanf(argv[++i], "%ld,%ld,%ld", &l, &e, &n) == 3) {
      given.push_back({l, e, n});
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--shape L,E,N]...\n", program);
      return false;
    }
  }
  if (!given.empty()) shapes = given;
  return true;
}

// The card the timings come from, first in every program's output.
inline void print_device() {
  cudaDeviceProp prop;
  MCD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s\n", prop.name);
}

// The variant programs' body: per shape, each config's output on one input set against the first config's, then two
// rounds of timings. Different configurations sum in different orders, so outputs are compared within bf16 rounding:
// each element's difference in units of its bf16 spacing (2^-7 of its magnitude, the spacing's largest relative size;
// magnitudes below the output's rms / 256 count as that, where summation order moves the last bits of a
// near-cancelled sum) — the largest such difference and how many exceed 2 units are printed; a NaN or an element
// beyond 8 units marks the variant FAILED. True when none failed.
inline bool compare_and_time(const std::vector<Config>& configs, const std::vector<Shape>& shapes, int reps) {
  print_device();
  bool all_ok = true;
  for (const Shape& shape : shapes) {
    const int64_t L = shape.L, E = shape.E, N = shape.N;
    std::vector<Set> in = input_sets(L, E, N);
    const std::vector<T> ref = output_of(configs[0], in[0], L, E, N);
    double sq = 0;
    for (const T& v : ref) sq += double(__bfloat162float(v)) * __bfloat162float(v);
    const double floor_mag = std::sqrt(sq / double(ref.size())) / 256;  // near-zero outputs: spacing of rms / 256
    for (const Config& c : configs) {
      const std::vector<T> got = output_of(c, in[0], L, E, N);
      double worst = 0;
      int64_t over2 = 0, nan = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        const double r = __bfloat162float(ref[i]), g = __bfloat162float(got[i]);
        if (std::isnan(r) || std::isnan(g)) { ++nan; continue; }
        const double spacing = std::max(std::fabs(r), floor_mag) / 128.0;
        const double units = std::fabs(g - r) / spacing;
        worst = std::max(worst, units);
        over2 += units > 2;
      }
      const bool ok = nan == 0 && worst <= 8;
      all_ok = all_ok && ok;
      std::printf("L%ld E%ld N%ld  %-26s vs the first: largest difference %.2f bf16 spacings, %ld beyond 2, %ld NaN%s\n",
                  long(L), long(E), long(N), c.name, worst, long(over2), long(nan), ok ? "" : "  FAILED");
    }
    for (int round = 0; round < 2; ++round)
      for (const Config& c : configs) {
        const Timing t = time_config(c, in, L, E, N, reps);
        std::printf("L%ld E%ld N%ld round %d  %-26s median %.1f us  (min %.1f, max %.1f)\n", long(L), long(E), long(N),
                    round + 1, c.name, t.median, t.min, t.max);
      }
    for (auto& s : in) free_set(s);
  }
  std::printf("check: %s\n", all_ok ? "every variant within 8 bf16 spacings of the first, no NaN" : "FAILED");
  return all_ok;
}
