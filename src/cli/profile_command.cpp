// The `profile` subcommand (docs/profile.md): latency percentiles, throughput and a memory breakdown
// of one or more models for prefill, per-token decode and a training step. Several models are timed
// in one process with their samples interleaved (model A, model B, A, B, …), so drift of the machine
// hits all of them alike, and each model's latency is also given relative to the first one as a ratio
// of medians with a bootstrap interval. Raw per-sample times are written too.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "eval/statistics.h"
#include "infer/profiler.h"
#include "infer/trace.h"
#include "model/checkpoint.h"
#include "model/generation.h"
#include "ops/options.h"
#include "sdm/flops.h"
#include "util/atomic_file.h"
#include "util/cpu_threads.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::cli {
namespace {

nlohmann::json summary_json(const eval::Summary& s) {
  return {{"n", s.n},     {"mean", s.mean}, {"sd", s.sd},   {"min", s.min},
          {"p50", s.p50}, {"p95", s.p95},   {"p99", s.p99}, {"max", s.max}};
}

nlohmann::json memory_json(const infer::MemoryUse& m) {
  auto measured = [](int64_t v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"weights", m.weights},
          {"states", m.states},
          {"gradients", m.gradients},
          {"optimizer", m.optimizer},
          {"baseline_allocated", measured(m.baseline)},
          {"activations_and_workspace", measured(m.activations)},
          {"peak_allocated", measured(m.peak_allocated)},
          {"peak_reserved", measured(m.peak_reserved)}};
}

}  // namespace

Command add_profile(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "profile", "latency percentiles, throughput and memory of models: prefill, decode, training step (JSON)");
  struct Args {
    std::vector<std::string> models;
    std::string device = "auto", prefill = "1x1024", decode = "1", train, out, dtype = "auto", decode_mode = "auto",
                prefill_mode = "eager", train_mode = "eager";
    std::string trace, decode_sampling;
    int64_t iters = 50, warmup = 5, decode_steps = 16, resamples = 10000;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->models, "HF-format model folder (repeat to compare models; the first is the baseline)")
      ->required();
  sub->add_option("--device", a->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  sub->add_option("--prefill", a->prefill, "prefill shapes BATCHxLENGTH, comma-separated ('' for none)")
      ->capture_default_str();
  sub->add_option("--decode-batch", a->decode, "decode batch sizes, comma-separated ('' for none)")
      ->capture_default_str();
  sub->add_option("--decode-steps", a->decode_steps, "decode steps per timed sample (latency is per token)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--decode-mode", a->decode_mode,
                  "decode steps: eager (one launch per kernel), graph (CUDA-graph replay), both, or auto (graph on CUDA)")
      ->check(CLI::IsMember({"auto", "eager", "graph", "both"}))
      ->capture_default_str();
  sub->add_option("--decode-sampling", a->decode_sampling,
                  "decode chooses each token as generate does with these options, on the device: e.g. "
                  "'temperature=0.8,top_p=0.9,min_p=0.05,repetition_penalty=1.2' (keys: greedy, temperature, top_k, "
                  "top_p, min_p, repetition_penalty, seed); default: the greedy argmax");
  sub->add_option("--prefill-mode", a->prefill_mode,
                  "prefill: eager (as generate runs it), graph (the whole prefill one CUDA-graph replay, for fixed "
                  "shapes), or both")
      ->check(CLI::IsMember({"eager", "graph", "both"}))
      ->capture_default_str();
  sub->add_option("--train-batch", a->train, "training-step shapes BATCHxLENGTH (AdamW; bf16 autocast on CUDA)");
  sub->add_option("--train-mode", a->train_mode,
                  "training step: eager (as pretrain runs it by default), graph (forward and backward one CUDA-graph "
                  "replay, as with train.cuda_graphs), or both")
      ->check(CLI::IsMember({"eager", "graph", "both"}))
      ->capture_default_str();
  sub->add_option("--iters", a->iters, "timed samples per model and case")->check(CLI::Range(2, 1000000))->capture_default_str();
  sub->add_option("--warmup", a->warmup, "untimed samples first")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--dtype", a->dtype, "inference weights: auto (bf16 on CUDA, fp32 on CPU), fp32, bf16")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  sub->add_option("--resamples", a->resamples, "bootstrap resamples for the latency ratios")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "seed of the random inputs and the bootstrap")->capture_default_str();
  sub->add_option("--out", a->out, "JSON file with every sample, summary, ratio and memory figure")->required();
  sub->add_option("--trace", a->trace,
                  "also write a Chrome trace of one more sample of every model, one file per case: the case's "
                  "label goes before the extension (trace.json -> trace.prefill_1x1024.json)");
  return {sub, [a] {
            const torch::Device device = parse_device(a->device);
            const at::ScalarType infer_dtype =
                a->dtype == "bf16" || (a->dtype == "auto" && device.is_cuda()) ? at::kBFloat16 : at::kFloat;
            if (!a->decode_sampling.empty()) parse_sampling(a->decode_sampling, "--decode-sampling");  // errors first
            std::vector<infer::ProfileCase> cases;
            for (auto [kind, text, option] : {std::make_tuple(infer::CaseKind::kPrefill, a->prefill, "--prefill"),
                                              std::make_tuple(infer::CaseKind::kDecode, a->decode, "--decode-batch"),
                                              std::make_tuple(infer::CaseKind::kTrain, a->train, "--train-batch")})
              for (auto c : infer::parse_cases(kind, text, a->decode_steps, option)) {
                if (kind == infer::CaseKind::kDecode) c.sampling = a->decode_sampling;
                // Eager, CUDA-graph replays, or both (decode's auto: graph on CUDA).
                const char* mode_option = kind == infer::CaseKind::kPrefill  ? "--prefill-mode "
                                          : kind == infer::CaseKind::kDecode ? "--decode-mode "
                                                                             : "--train-mode ";
                const std::string mode = kind == infer::CaseKind::kPrefill ? a->prefill_mode
                                         : kind == infer::CaseKind::kTrain ? a->train_mode
                                         : a->decode_mode == "auto"        ? (device.is_cuda() ? "graph" : "eager")
                                                                           : a->decode_mode;
                MCD_CHECK(mode == "eager" || device.is_cuda(), "profile: ", mode_option, mode, " needs a CUDA device");
                if (mode == "eager" || mode == "both") cases.push_back(c);
                c.cuda_graph = true;
                if (mode == "graph" || mode == "both") cases.push_back(c);
              }
            MCD_CHECK(!cases.empty(), "profile: no case to run (give --prefill, --decode-batch or --train-batch)");

            nlohmann::json out;
            out["device"] = device.str();
            out["torch"] = torch_version_string();
            out["device_name"] = infer::device_description(device);
            out["iters"] = a->iters;
            out["warmup"] = a->warmup;
            out["inference_dtype"] = infer_dtype == at::kBFloat16 ? "bf16" : "fp32";
            out["timer"] = device.is_cuda() ? "cuda events" : "wall clock";
            out["cpu_threads"] = cpu_threads_record(at::get_num_threads());  // the host side's CPU pools
            // The ops options the cases ran under (the global options, e.g. an A/B of --decode-fused-head),
            // as a training run's summary.json records them.
            nlohmann::json ops_used = nlohmann::json::object();
            for (const auto& [key, value] : ops::ops_option_values(ops::ops_options())) ops_used[key] = value;
            out["ops"] = ops_used;
            nlohmann::json models = nlohmann::json::array();
            for (const std::string& dir : a->models) {
              // Only the config here; each case loads the weights (and checks them) itself.
              const ModelConfig c = ModelConfig::from_json_file(fs::join(dir, "config.json"));
              const sdm::FlopCount f = sdm::count_flops(c);
              std::vector<int64_t> widths;
              for (int64_t l = 0; l < c.n_layer; ++l) widths.push_back(c.inner_width(l));
              models.push_back({{"path", dir},
                                {"parameters", f.parameters},
                                {"widths", widths},
                                {"forward_flops_per_token", f.forward_total},
                                {"forward_flops_per_token_without_head", f.forward_total - f.head},
                                {"head_flops_per_token", f.head},
                                {"training_flops_per_token", f.training}});
            }
            out["models"] = models;

            nlohmann::json case_results = nlohmann::json::array();
            for (const infer::ProfileCase& pc : cases) {
              // One runner per model, each with its own copy of the weights on the device.
              std::vector<std::unique_ptr<infer::CaseRunner>> runners;
              for (const std::string& dir : a->models) {
                LoadOptions lo;
                lo.device = device;
                lo.dtype = pc.kind == infer::CaseKind::kTrain ? at::kFloat : infer_dtype;
                // Graphed training steps of the models share one memory pool (they never overlap).
                runners.push_back(std::make_unique<infer::CaseRunner>(load_pretrained(dir, lo), pc, device, a->seed,
                                                                      /*autocast=*/true,
                                                                      runners.empty() ? nullptr : runners.front().get()));
              }
              for (int64_t i = 0; i < a->warmup; ++i)
                for (auto& r : runners) r->run_ms();
              std::vector<std::vector<double>> samples(runners.size());
              for (int64_t i = 0; i < a->iters; ++i)
                for (size_t m = 0; m < runners.size(); ++m) samples[m].push_back(runners[m]->run_ms());
              nlohmann::json per_model = nlohmann::json::array();
              for (size_t m = 0; m < runners.size(); ++m) {
                const eval::Summary s = eval::summarize(samples[m]);
                const double tokens = double(runners[m]->tokens_per_sample());
                nlohmann::json r = {{"model", m},
                                    {"samples_ms", samples[m]},
                                    {"summary_ms", summary_json(s)},
                                    {"tokens_per_sample", runners[m]->tokens_per_sample()},
                                    {"tokens_per_s_at_median", tokens / (s.p50 / 1000.0)},
                                    {"memory_bytes", memory_json(runners[m]->measure_memory())}};
                if (pc.kind == infer::CaseKind::kDecode) {
                  r["per_token_ms_p50"] = s.p50 / double(pc.length);
                  r["per_token_ms_mean"] = s.mean / double(pc.length);
                }
                if (m > 0) {
                  eval::BootstrapOptions bo;
                  bo.resamples = a->resamples;
                  bo.seed = a->seed + m;
                  const eval::BootstrapInterval ci = eval::bootstrap_median_ratio(samples[m], samples[0], bo);
                  r["ratio_to_model0"] = {{"ratio_of_medians", ci.estimate},
                                          {"lower", ci.lower},
                                          {"upper", ci.upper},
                                          {"level", ci.level},
                                          {"resamples", ci.resamples}};
                }
                per_model.push_back(r);
                std::fprintf(stderr, "profile: %-16s model %zu  p50 %9.3f ms  p95 %9.3f ms  p99 %9.3f ms  %.0f tokens/s%s\n",
                             pc.label().c_str(), m, s.p50, s.p95, s.p99, tokens / (s.p50 / 1000.0),
                             m > 0 ? cat("  ratio ", r["ratio_to_model0"]["ratio_of_medians"].get<double>(), " [",
                                         r["ratio_to_model0"]["lower"].get<double>(), ", ",
                                         r["ratio_to_model0"]["upper"].get<double>(), "]")
                                         .c_str()
                                   : "");
              }
              nlohmann::json trace_file = nullptr;
              if (!a->trace.empty()) {
                // One untimed sample of each model under the profiler, after the timed ones.
                const std::string::size_type dot = a->trace.rfind('.');
                const bool has_ext = dot != std::string::npos && a->trace.find('/', dot) == std::string::npos;
                std::string label = pc.label();
                for (char& ch : label)
                  if (ch == ' ' || ch == '/' || ch == '=') ch = '_';
                const std::string file = has_ext ? a->trace.substr(0, dot) + "." + label + a->trace.substr(dot)
                                                 : a->trace + "." + label + ".json";
                const std::string how = infer::write_chrome_trace(file, device.is_cuda(), [&] {
                  for (auto& r : runners) r->run_ms();
                });
                trace_file = {{"path", file}, {"profiler", how}};
                std::fprintf(stderr, "profile: %-16s trace %s (%s)\n", pc.label().c_str(), file.c_str(), how.c_str());
              }
              case_results.push_back({{"case", infer::case_kind_name(pc.kind)},
                                      {"trace", trace_file},
                                      {"cuda_graph", pc.cuda_graph},
                                      {"sampling", pc.sampling.empty() ? nlohmann::json(nullptr)  // decode cases only
                                                                        : nlohmann::json(pc.sampling)},
                                      {"label", pc.label()},
                                      {"batch", pc.batch},
                                      {"length", pc.length},
                                      {"results", per_model}});
              // Last made, first gone: a graph training step's runner keeps its side stream current
              // while it lives (ops/step_graphs.h) and gives back the stream it found.
              while (!runners.empty()) runners.pop_back();
            }
            out["cases"] = case_results;
            write_text_atomic(a->out, out.dump(1) + "\n");
            std::cout << nlohmann::json({{"out", a->out}, {"cases", cases.size()}, {"models", a->models.size()}}).dump()
                      << std::endl;
          }};
}

}  // namespace mcd::cli
