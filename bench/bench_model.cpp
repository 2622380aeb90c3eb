// Model-level timings, one JSON line per measurement (PERF.md items 3–5): a training step
// (forward + backward of the LM loss, bf16 autocast on CUDA), prefill latency at B = 1 and decode
// latency per token, for a preset in several variants measured side by side in one process:
// dense, with SDM gates (the gate overhead), and physically pruned to uniform widths
// (25/50/75 % of channels removed) next to their analytic FLOP ratio.
// Usage: bench_model [--preset mamba-130m-gpt2] [--batch 8] [--seq 2048] [--iters 20]
//                    [--variants dense,gated,p25,p50,p75] [--prefill 128,1024,4096] [--decode 64]
//                    [--trace FILE] (one training step per variant as a Chrome trace, FILE.<variant>)
//                    [--ops KEY=VALUE]… (ops options, ops/options.h: e.g. fused_mixer=false,
//                    scan_plan=low_memory, mixer_saves_conv_output=true; reported in each line)
#include <chrono>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/mamba.h"
#include "ops/options.h"
#include "sdm/flops.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/autograd/profiler_kineto.h>
#define MCD_KINETO_TRACE 1
#endif
#endif

using namespace mcd;
namespace {

using Clock = std::chrono::steady_clock;

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Median and percentiles of per-iteration wall times (synchronised after every iteration).
nlohmann::json time_it(const std::function<void()>& fn, int warmup, int iters, const torch::Device& d) {
  for (int i = 0; i < warmup; ++i) fn();
  sync(d);
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    fn();
    sync(d);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * double(ms.size())))]; };
  return {{"median_ms", pct(0.5)}, {"p95_ms", pct(0.95)}, {"p99_ms", pct(0.99)}, {"min_ms", ms.front()}, {"iters", iters}};
}

// --trace FILE: one training step under LibTorch's Kineto profiler (CPU ops and CUDA kernels),
// saved as a Chrome trace; scripts/trace_summary.py sums the kernel time by name.
void trace_one(const std::function<void()>& fn, const std::string& path) {
#ifdef MCD_KINETO_TRACE
  namespace tpi = torch::profiler::impl;
  const tpi::ProfilerConfig config(tpi::ProfilerState::KINETO);
  const std::set<tpi::ActivityType> activities{tpi::ActivityType::CPU, tpi::ActivityType::CUDA};
  torch::autograd::profiler::prepareProfiler(config, activities);
  torch::autograd::profiler::enableProfiler(config, activities);
  fn();
  torch::cuda::synchronize();
  torch::autograd::profiler::disableProfiler()->save(path);
  std::cerr << "bench_model: trace written to " << path << "\n";
#else
  (void)fn;
  std::cerr << "bench_model: --trace needs a CUDA build with LibTorch 2.x; ignored (" << path << ")\n";
#endif
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "mamba-130m-gpt2", variants = "dense,gated,p25,p50,p75", prefill = "128,1024,4096";
  int64_t batch = 8, seq = 2048, iters = 20, decode = 64;
  std::string trace;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--preset") preset = v;
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--seq") seq = std::stoll(v);
    else if (k == "--iters") iters = std::stoll(v);
    else if (k == "--variants") variants = v;
    else if (k == "--prefill") prefill = v;
    else if (k == "--decode") decode = std::stoll(v);
    else if (k == "--trace") trace = v;
    else if (k == "--ops") {
      const auto eq = v.find('=');
      if (eq == std::string::npos) {
        std::cerr << "bench_model: --ops takes KEY=VALUE, got " << v << "\n";
        return 2;
      }
      try {
        ops::set_ops_options(ops::parse_ops_option(ops::ops_options(), v.substr(0, eq), v.substr(eq + 1)));
      } catch (const std::exception& e) {
        std::cerr << "bench_model: " << e.what() << "\n";
        return 2;
      }
    } else {
      std::cerr << "bench_model: unknown option " << k << "\n";
      return 2;
    }
  }
  try {
    const torch::Device device = cuda_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    const bool cuda = device.is_cuda();
    std::string gpu = "cpu";
#ifdef MCD_WITH_CUDA
    if (cuda) gpu = at::cuda::getCurrentDeviceProperties()->name;
#endif
    const ModelConfig dense = model_preset(preset);
    for (const auto& variant : split(variants)) {
      ModelConfig c = dense;
      if (variant == "gated") {
        c.gate_type = "hard_concrete";
      } else if (variant[0] == 'p') {  // uniform pruning: keep (1 − s) of each layer, multiple of 8
        const double s = std::stod(variant.substr(1)) / 100.0;
        c.d_inner_per_layer.clear();
        for (int64_t l = 0; l < c.n_layer; ++l)
          c.d_inner_per_layer.push_back(std::max<int64_t>(8, int64_t(double(dense.inner_width(l)) * (1 - s) / 8 + 0.5) * 8));
      } else {
        MCD_CHECK(variant == "dense", "unknown variant '", variant, "'");
      }
      MambaLM model(c);
      init_reference(*model, 0);
      model->to(device);
      const auto flops = sdm::compare_flops(dense, c);
      nlohmann::json base = {{"gpu", gpu}, {"torch", torch_version_string()}, {"preset", preset}, {"variant", variant},
                             {"flops_ratio_training", flops["training_flops_ratio"]},
                             {"flops_ratio_forward", flops["forward_flops_ratio"]},
                             {"parameters", c.num_parameters()},
                             {"fused_mixer", ops::ops_options().fused_mixer},
                             {"mixer_saves_conv_output", ops::ops_options().mixer_saves_conv_output},
                             {"scan_plan", ops::scan_plan_name(ops::ops_options().scan_plan)}};
      // Training step: forward + backward (optimizer excluded), gates resampled like the trainer does.
      {
        model->train();
        // seq tokens per row (the loss predicts seq − 1 of them), as mamba-ssm's harness feeds it.
        const at::Tensor ids = torch::randint(0, c.real_vocab_size(), {batch, seq}, torch::kLong).to(device);
        int64_t step = 0;
        auto fn = [&] {
          resample_gates(model->backbone->gates(), 0, step);
          ++step;
          const at::Tensor loss = [&] {
            CudaAutocastScope autocast(cuda);
            return model->loss(ids);
          }();
          loss.backward();
          model->zero_grad();
        };
#ifdef MCD_WITH_CUDA
        if (cuda) c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
        nlohmann::json r = base;
        r["bench"] = "train_step";
        r["batch"] = batch;
        r["seq_len"] = seq;
        r["precision"] = cuda ? "bf16-autocast" : "fp32";
        r["timing"] = time_it(fn, 3, int(iters), device);
        r["tokens_per_s"] = double(batch * seq) / (r["timing"]["median_ms"].get<double>() / 1000.0);
#ifdef MCD_WITH_CUDA
        if (cuda) r["peak_memory_bytes"] = c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].peak;
#endif
        std::cout << r.dump() << std::endl;
        if (!trace.empty()) trace_one(fn, trace + "." + variant);
      }
      // Prefill (B = 1) and decode per token, eval mode, model in bf16 on CUDA.
      model->eval();
      if (cuda) model->to(at::kBFloat16);
      torch::NoGradGuard no_grad;
      for (const auto& lstr : split(prefill)) {
        const int64_t L = std::stoll(lstr);
        const at::Tensor ids = torch::randint(0, c.real_vocab_size(), {1, L}, torch::kLong).to(device);
        auto fn = [&] {
          InferenceCache cache = model->new_cache(1);
          model->prefill(ids, cache);
        };
        nlohmann::json r = base;
        r["bench"] = "prefill";
        r["seq_len"] = L;
        r["timing"] = time_it(fn, 3, int(iters), device);
        std::cout << r.dump() << std::endl;
      }
      if (decode > 0) {
        InferenceCache cache = model->new_cache(1);
        model->prefill(torch::randint(0, c.real_vocab_size(), {1, 16}, torch::kLong).to(device), cache);
        const at::Tensor tok = torch::zeros({1}, torch::kLong).to(device);
        nlohmann::json r = base;
        r["bench"] = "decode_token";
        r["timing"] = time_it([&] { model->step(tok, cache); }, 5, int(decode), device);
        std::cout << r.dump() << std::endl;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_model: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
