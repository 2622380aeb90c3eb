// Benchmark of the fused CUDA ops (ops/cuda) against the LibTorch composite, following
// PERF.md: selective scan forward and forward+backward (atomic and deterministic dB/dC), causal
// conv1d forward and backward, at (B, L, E, N) = (8, 2048, 1536, 16), (16, 1024, 2048, 16),
// (1, 4096, 1536, 16) or the --shape ones; bf16 activations, fp32 state. The backwards that take
// time segments (eight-lane, segmented, dense-state) also split along time into 2 to 16 of them. Warm-up,
// CUDA events on the current stream, median of ≥ 50 repetitions over input sets rotated so that together they exceed the 50 MB L2.
// One JSON line per measurement on stdout (GPU, driver/runtime, commit, shapes, dtype, µs, GB/s
// of the algorithmic minimum traffic, % of the HBM datasheet and of a measured device copy).
// docs/PERF_NOTES.md explains the floors and records the figures.
//   usage: bench_ops [--reps N] [--composite-reps N] [--no-composite] [--layout model|contiguous|both]
//                    [--shape B,L,E,N[,R]]...
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ops/causal_conv1d.h"
#include "ops/cuda/ops_cuda.h"
#include "ops/mamba_inner.h"
#include "ops/selective_scan.h"
#include "util/error.h"

#ifndef MCD_GIT_COMMIT
#define MCD_GIT_COMMIT "unknown"
#endif

namespace {

using mcd::cat;
using nlohmann::json;

struct Stats {
  double median_us = 0, p10_us = 0, p90_us = 0;
  int reps = 0;
};

// Times fn(rep) with CUDA events on the current stream, one event pair per repetition.
Stats time_op(const std::function<void(int)>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn(i);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(start, stream);
    fn(warmup + r);
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    us.push_back(ms * 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(us.begin(), us.end());
  auto q = [&](double f) { return us[std::min<size_t>(us.size() - 1, static_cast<size_t>(f * us.size()))]; };
  return {q(0.5), q(0.1), q(0.9), reps};
}

struct Device {
  std::string name;
  int sm_count = 0, driver = 0, runtime = 0;
  double hbm_datasheet_GBps = 0, copy_GBps = 0;
};

Device describe_device() {
  Device d;
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, dev);
  d.name = prop.name;
  d.sm_count = prop.multiProcessorCount;
  cudaDriverGetVersion(&d.driver);
  cudaRuntimeGetVersion(&d.runtime);
  const std::string n = d.name;
  if (n.find("H200") != std::string::npos) d.hbm_datasheet_GBps = 4800;
  else if (n.find("H100") != std::string::npos && n.find("PCIe") != std::string::npos) d.hbm_datasheet_GBps = 2000;
  else if (n.find("H100") != std::string::npos) d.hbm_datasheet_GBps = 3350;
  // Measured: a 1 GiB device-to-device copy (read + write).
  const int64_t bytes = int64_t{1} << 30;
  auto a = torch::empty({bytes}, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kUInt8));
  auto b = torch::empty_like(a);
  const Stats s = time_op([&](int) { b.copy_(a); }, 3, 20);
  d.copy_GBps = 2.0 * bytes / (s.median_us * 1e-6) / 1e9;
  return d;
}

struct Shape {
  int64_t B, L, E, N;
  int64_t rank = 0;  // dt_rank; 0: that of d_model = E / 2. A pruned model keeps its dense dt_rank (the
                     // B and C columns' offset in x_dbl, which decides the scan's vector loads)
  int64_t R() const { return rank > 0 ? rank : (E / 2 + 15) / 16; }
};

// One set of inputs laid out as the mixer produces them (or time-contiguous).
struct ScanSet {
  mcd::ops::ScanInputs in;
  at::Tensor dout;
  at::Tensor conv_x, conv_w, conv_b;
};

ScanSet make_set(const Shape& s, bool model_layout, uint64_t seed) {
  torch::manual_seed(seed);
  const auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
  ScanSet set;
  auto& in = set.in;
  if (model_layout) {
    const at::Tensor xz = torch::randn({s.B, s.L, 2 * s.E}, bf);                 // in_proj output
    const at::Tensor x_dbl = torch::randn({s.B, s.L, s.R() + 2 * s.N}, bf);      // x_proj output
    in.u = torch::randn({s.B, s.L, s.E}, bf).transpose(1, 2);                    // conv output
    in.delta = (torch::randn({s.B, s.L, s.E}, bf) * 0.5).transpose(1, 2);        // dt_proj output
    in.z = xz.narrow(2, s.E, s.E).transpose(1, 2);
    in.B = x_dbl.narrow(2, s.R(), s.N).transpose(1, 2);
    in.C = x_dbl.narrow(2, s.R() + s.N, s.N).transpose(1, 2);
    set.conv_x = xz.narrow(2, 0, s.E).transpose(1, 2);
    set.dout = torch::randn({s.B, s.L, s.E}, bf).transpose(1, 2);                // out_proj grad
  } else {
    in.u = torch::randn({s.B, s.E, s.L}, bf);
    in.delta = torch::randn({s.B, s.E, s.L}, bf) * 0.5;
    in.z = torch::randn({s.B, s.E, s.L}, bf);
    in.B = torch::randn({s.B, s.N, s.L}, bf);
    in.C = torch::randn({s.B, s.N, s.L}, bf);
    set.conv_x = torch::randn({s.B, s.E, s.L}, bf);
    set.dout = torch::randn({s.B, s.E, s.L}, bf);
  }
  in.A = -torch::arange(1, s.N + 1, f32).repeat({s.E, 1});
  in.D = torch::ones({s.E}, f32);
  const at::Tensor dt = torch::exp(torch::rand({s.E}, f32) * (std::log(0.1) - std::log(1e-3)) + std::log(1e-3));
  in.delta_bias = dt + torch::log(-torch::expm1(-dt));
  in.delta_softplus = true;
  set.conv_w = torch::randn({s.E, 4}, f32) * 0.5;
  set.conv_b = torch::randn({s.E}, f32);
  return set;
}

int64_t set_bytes(const Shape& s) { return (6 * s.B * s.L * s.E + 2 * s.B * s.L * (s.R() + 2 * s.N)) * 2; }

class Reporter {
 public:
  Reporter(Device d, std::string commit) : d_(std::move(d)), commit_(std::move(commit)) {}
  void emit(const std::string& bench, const std::string& impl, const Shape& s, const std::string& layout,
            const std::string& mode, const Stats& st, double bytes, const std::string& algorithm = "") {
    json j;
    j["bench"] = bench;
    j["impl"] = impl;
    j["algorithm"] = algorithm;
    j["gpu"] = d_.name;
    j["sm_count"] = d_.sm_count;
    j["driver"] = d_.driver;
    j["cuda_runtime"] = d_.runtime;
    j["torch"] = mcd::torch_version_string();
    j["commit"] = commit_;
    j["B"] = s.B;
    j["L"] = s.L;
    j["E"] = s.E;
    j["N"] = s.N;
    j["R"] = s.R();
    j["dtype"] = "bf16";
    j["state"] = "fp32";
    j["layout"] = layout;
    j["mode"] = mode;
    j["reps"] = st.reps;
    j["median_us"] = st.median_us;
    j["p10_us"] = st.p10_us;
    j["p90_us"] = st.p90_us;
    j["bytes_min"] = bytes;
    const double gbps = bytes / (st.median_us * 1e-6) / 1e9;
    j["GBps"] = gbps;
    j["hbm_datasheet_GBps"] = d_.hbm_datasheet_GBps;
    j["pct_hbm_datasheet"] = d_.hbm_datasheet_GBps > 0 ? 100.0 * gbps / d_.hbm_datasheet_GBps : 0.0;
    j["copy_GBps"] = d_.copy_GBps;
    j["pct_copy"] = 100.0 * gbps / d_.copy_GBps;
    std::cout << j.dump() << std::endl;
  }

 private:
  Device d_;
  std::string commit_;
};

// The fused mixer (core and out_proj), forward + backward under bf16 autocast, at the Mamba-130M
// mixer shape (d_model 768): what mamba-ssm's mamba_inner_fn computes (bench/compare/ times it).
void time_mixer_inner(Reporter& rep, const Shape& s, int reps) {
  torch::AutoGradMode grad(true);
  const int64_t Dm = 768, K = 4, E = s.E, N = s.N, R = s.R();
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
  const auto bf = f32.dtype(torch::kBFloat16);
  struct MixerSet {
    at::Tensor xz, dout, out_w;
    mcd::ops::MambaInnerWeights w;
  };
  std::vector<MixerSet> sets;
  for (int k = 0; k < 3; ++k) {
    torch::manual_seed(300 + k);
    MixerSet m;
    m.xz = torch::randn({s.B, s.L, 2 * E}, bf).requires_grad_(true);
    m.w.conv_weight = (torch::randn({E, K}, f32) * 0.5).requires_grad_(true);
    m.w.conv_bias = torch::randn({E}, f32).requires_grad_(true);
    m.w.x_proj_weight = (torch::randn({R + 2 * N, E}, f32) / std::sqrt(double(E))).requires_grad_(true);
    m.w.dt_proj_weight = (torch::randn({E, R}, f32) / std::sqrt(double(R))).requires_grad_(true);
    const at::Tensor dt = torch::exp(torch::rand({E}, f32) * (std::log(0.1) - std::log(1e-3)) + std::log(1e-3));
    m.w.dt_proj_bias = (dt + torch::log(-torch::expm1(-dt))).requires_grad_(true);
    m.w.A = (-torch::arange(1, N + 1, f32).repeat({E, 1})).requires_grad_(true);
    m.w.D = torch::ones({E}, f32).requires_grad_(true);
    m.out_w = (torch::randn({Dm, E}, f32) / std::sqrt(double(E))).requires_grad_(true);
    m.w.out_proj_weight = m.out_w;
    m.dout = torch::randn({s.B, s.L, Dm}, bf);
    sets.push_back(m);
  }
  rep.emit("mixer_inner", "mcd", s, "model", "fwd+bwd incl. out_proj, bf16 autocast",
           time_op([&](int r) {
             MixerSet& m = sets[r % 3];
             at::Tensor out;
             {
               mcd::CudaAutocastScope autocast(true);
               out = mcd::ops::mamba_inner(m.xz, m.w);  // out_proj included
             }
             torch::autograd::grad({out}, {m.xz, m.w.conv_weight, m.w.conv_bias, m.w.x_proj_weight,
                                           m.w.dt_proj_weight, m.w.dt_proj_bias, m.w.A, m.w.D, m.out_w},
                                   {m.dout});
           }, 3, reps),
           0.0);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int reps = 60, composite_reps = 2;
    bool composite = true;
    std::string layouts = "both";
    std::vector<Shape> shapes;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
      else if (a == "--composite-reps" && i + 1 < argc) composite_reps = std::max(1, std::atoi(argv[++i]));
      else if (a == "--no-composite") composite = false;
      else if (a == "--layout" && i + 1 < argc) layouts = argv[++i];
      else if (a == "--shape" && i + 1 < argc) {  // repeatable; replaces the default shapes
        long b = 0, l = 0, e = 0, n = 0, r = 0;
        char tail = 0;
        const int got = std::sscanf(argv[++i], "%ld,%ld,%ld,%ld,%ld%c", &b, &l, &e, &n, &r, &tail);
        if ((got != 4 && got != 5) || b < 1 || l < 1 || e < 1 || n < 1 || (got == 5 && r < 1))
          mcd::fail(cat("bench_ops: --shape takes B,L,E,N[,R] (positive integers; R the dt_rank), got '", argv[i], "'"));
        shapes.push_back({b, l, e, n, got == 5 ? r : 0});
      } else
        mcd::fail(cat("bench_ops: unknown argument '", a,
                      "' (valid: --reps N, --composite-reps N, --no-composite, --layout model|contiguous|both, "
                      "--shape B,L,E,N[,R])"));
    }
    if (!mcd::cuda_available()) {
      std::cerr << "bench_ops: no CUDA device\n";
      return 2;
    }
    const char* env_commit = std::getenv("MCD_GIT_COMMIT");
    Reporter rep(describe_device(), env_commit && *env_commit ? env_commit : MCD_GIT_COMMIT);
    torch::NoGradGuard no_grad;
    if (shapes.empty()) shapes = {{8, 2048, 1536, 16}, {16, 1024, 2048, 16}, {1, 4096, 1536, 16}};
    std::vector<bool> layout_list;
    if (layouts == "model" || layouts == "both") layout_list.push_back(true);
    if (layouts == "contiguous" || layouts == "both") layout_list.push_back(false);
    namespace cu = mcd::ops::cuda;
    for (const Shape& s : shapes) {
      const double ble = double(s.B) * s.L * s.E, bnl = double(s.B) * s.N * s.L;
      // Minimum traffic (bf16 = 2 bytes): fwd reads u, Δ, z, B, C and writes out; bwd reads
      // u, Δ, z, dout, B, C and writes du, dΔ, dz, dB, dC. Conv: x → out; x, dout → dx.
      const double scan_fwd_bytes = 2 * (4 * ble + 2 * bnl);
      const double scan_bwd_bytes = 2 * (7 * ble + 4 * bnl);
      for (bool model_layout : layout_list) {
        const std::string layout = model_layout ? "model" : "contiguous";
        const int n_sets = static_cast<int>(std::max<int64_t>(2, (200ll << 20) / set_bytes(s) + 1));
        std::vector<ScanSet> sets;
        for (int k = 0; k < n_sets; ++k) sets.push_back(make_set(s, model_layout, 100 + k));
        auto set = [&](int r) -> ScanSet& { return sets[r % n_sets]; };

        // The production scan algorithms side by side (those that take this N), then the one the
        // default plan chooses for this shape and card ("auto:<name>", timed twice for the
        // spread, and in deterministic mode).
        std::vector<std::pair<cu::ScanAlgorithm, std::string>> runs;
        for (int a = 0; a < cu::kScanAlgorithmCount; ++a) {
          const auto algorithm = static_cast<cu::ScanAlgorithm>(a);
          if (cu::scan_algorithm_supports(algorithm, s.N))
            runs.emplace_back(algorithm, cu::scan_algorithm_name(algorithm));
        }
        const cu::ScanAlgorithm chosen = cu::scan_algorithm_for(set(0).in);
        for (int k = 0; k < 2; ++k) runs.emplace_back(chosen, std::string("auto:") + cu::scan_algorithm_name(chosen));
        // An inference forward's own choice (no saved states): forward only.
        const cu::ScanAlgorithm chosen_fwd = cu::scan_forward_algorithm_for(set(0).in);
        for (int k = 0; k < 2; ++k)
          runs.emplace_back(chosen_fwd, std::string("inference:") + cu::scan_algorithm_name(chosen_fwd));
        for (const auto& run : runs) {
          const cu::ScanAlgorithm algorithm = run.first;  // a plain variable: lambdas capture it
          const std::string& label = run.second;
          const bool is_auto = label.rfind("auto:", 0) == 0;
          rep.emit("scan_fwd", "mcd", s, layout, "-",
                   time_op([&](int r) { cu::selective_scan_cuda_forward(set(r).in, algorithm, false, false); }, 5,
                           reps),
                   scan_fwd_bytes, label);
          for (bool det : {false, true}) {
            if ((det && !is_auto) || !cu::scan_algorithm_has_backward(algorithm) || label.rfind("inference:", 0) == 0)
              continue;
            cu::ScanBackwardOptions o;
            o.deterministic = det;
            // The auto rows run what the autograd nodes run, the backward's time segments included.
            if (is_auto) o.time_segments = cu::backward_time_segments(algorithm, s.B, s.E, set(0).in.u.device());
            rep.emit("scan_fwd_bwd", "mcd", s, layout, det ? "deterministic" : "atomic",
                     time_op([&](int r) {
                       auto f = cu::selective_scan_cuda_forward(set(r).in, algorithm, true, false);
                       cu::selective_scan_cuda_backward(set(r).in, algorithm, f.states, set(r).dout, o);
                     }, 3, reps),
                     scan_fwd_bytes + scan_bwd_bytes, label);
          }
          // The backward split along time into 2 … 16 segments (the algorithms that take them; the
          // forward walks once): where scan_backward_time_segments should split, and into how many.
          if (!is_auto && label.rfind("inference:", 0) != 0 && cu::scan_algorithm_takes_time_segments(algorithm))
            for (int64_t segments : {2, 3, 4, 6, 8, 12, 16}) {
              cu::ScanBackwardOptions o;
              o.time_segments = segments;
              rep.emit("scan_fwd_bwd", "mcd", s, layout, "atomic",
                       time_op([&](int r) {
                         auto f = cu::selective_scan_cuda_forward(set(r).in, algorithm, true, false);
                         cu::selective_scan_cuda_backward(set(r).in, algorithm, f.states, set(r).dout, o);
                       }, 3, reps),
                       scan_fwd_bytes + scan_bwd_bytes, label + " backward time_segments=" + std::to_string(segments));
            }
        }
        rep.emit("conv_fwd", "mcd", s, layout, "K=4 silu",
                 time_op([&](int r) { cu::causal_conv1d_cuda_forward(set(r).conv_x, set(r).conv_w, set(r).conv_b, true); }, 5, reps),
                 2 * 2 * ble);
        rep.emit("conv_bwd", "mcd", s, layout, "K=4 silu",
                 time_op([&](int r) { cu::causal_conv1d_cuda_backward(set(r).dout, set(r).conv_x, set(r).conv_w, set(r).conv_b, true); }, 5, reps),
                 2 * 3 * ble);
        if (model_layout && s.B == 8 && s.L == 2048 && s.E == 1536) time_mixer_inner(rep, s, reps);
        if (composite && model_layout) {  // the composite is slow: one layout is enough
          rep.emit("scan_fwd", "composite", s, layout, "-",
                   time_op([&](int r) { mcd::ops::selective_scan_composite(set(r).in); }, 1, composite_reps),
                   scan_fwd_bytes);
          {
            torch::AutoGradMode grad(true);
            rep.emit("scan_fwd_bwd", "composite", s, layout, "autograd",
                     time_op([&](int r) {
                       mcd::ops::ScanInputs in = set(r).in;
                       for (at::Tensor* t : {&in.u, &in.delta, &in.z, &in.B, &in.C, &in.A, &in.D, &in.delta_bias})
                         *t = t->detach().requires_grad_(true);
                       mcd::ops::selective_scan_composite(in).backward(set(r).dout);
                     }, 1, composite_reps),
                     scan_fwd_bytes + scan_bwd_bytes);
          }
          rep.emit("conv_fwd", "composite", s, layout, "K=4 silu",
                   time_op([&](int r) { mcd::ops::causal_conv1d_composite(set(r).conv_x, set(r).conv_w, set(r).conv_b, true); }, 3, 20),
                   2 * 2 * ble);
          {
            torch::AutoGradMode grad(true);
            rep.emit("conv_fwd_bwd", "composite", s, layout, "K=4 silu autograd",
                     time_op([&](int r) {
                       const at::Tensor x = set(r).conv_x.detach().requires_grad_(true);
                       const at::Tensor w = set(r).conv_w.detach().requires_grad_(true);
                       const at::Tensor b = set(r).conv_b.detach().requires_grad_(true);
                       mcd::ops::causal_conv1d_composite(x, w, b, true).backward(set(r).dout);
                     }, 3, 20),
                     2 * 5 * ble);
            rep.emit("conv_fwd_bwd", "mcd", s, layout, "K=4 silu",
                     time_op([&](int r) {
                       cu::causal_conv1d_cuda_forward(set(r).conv_x, set(r).conv_w, set(r).conv_b, true);
                       cu::causal_conv1d_cuda_backward(set(r).dout, set(r).conv_x, set(r).conv_w, set(r).conv_b, true);
                     }, 3, reps),
                     2 * 5 * ble);
          }
        }
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_ops: " << e.what() << "\n";
    return 1;
  }
}
