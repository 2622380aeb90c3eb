// `profile` and its workloads (src/infer/profiler.h) on the CPU: case parsing and its errors, the
// memory parts of each workload, and the command's JSON — every field present, percentiles ordered,
// one ratio per extra model, samples interleaved and counted, memory parts adding up.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "infer/profiler.h"
#include "model/checkpoint.h"
#include "ops/options.h"
#include "test_support.h"

namespace mcd::infer {
namespace {

using nlohmann::json;

ModelConfig tiny(int64_t n_layer = 2) {
  ModelConfig c = model_preset("mamba-tiny");
  c.n_layer = n_layer;
  return c;
}

TEST(ProfileCases, ParsesShapesAndNamesBadItems) {
  const auto p = parse_cases(CaseKind::kPrefill, "1x1024,4x16", 16, "--prefill");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].batch, 4);
  EXPECT_EQ(p[1].length, 16);
  EXPECT_EQ(p[0].label(), "prefill 1x1024");
  const auto d = parse_cases(CaseKind::kDecode, "1,64", 8, "--decode-batch");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].batch, 64);
  EXPECT_EQ(d[1].length, 8);
  EXPECT_EQ(d[1].label(), "decode b64");
  EXPECT_TRUE(parse_cases(CaseKind::kTrain, "", 1, "--train-batch").empty());
  EXPECT_NE(test::error_of([] { parse_cases(CaseKind::kPrefill, "1x1024,12", 1, "--prefill"); })
                .find("--prefill: '12' is not BATCHxLENGTH"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { parse_cases(CaseKind::kDecode, "1,x", 1, "--decode-batch"); })
                .find("'x' is not a positive integer"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { parse_cases(CaseKind::kPrefill, "0x5", 1, "--prefill"); }).find("positive"),
            std::string::npos);
}

TEST(ProfileRunner, MemoryPartsOfEachWorkload) {
  const ModelConfig c = tiny();
  MambaLM m(c);
  init_reference(*m, 1);
  const int64_t weights = parameter_bytes(*m);
  // E = 128, N = 8, K = 4 per layer: conv (B, E, K−1) + ssm (B, E, N) in float32.
  const int64_t states_b2 = c.n_layer * 2 * 128 * (3 + 8) * 4;  // layers · B · E · (K−1 + N) · 4 bytes
  CaseRunner decode(m, ProfileCase{CaseKind::kDecode, 2, 3}, torch::kCPU, 0, false);
  EXPECT_GT(decode.run_ms(), 0.0);
  EXPECT_EQ(decode.tokens_per_sample(), 6);
  const MemoryUse md = decode.measure_memory();
  EXPECT_EQ(md.weights, weights);
  EXPECT_EQ(md.states, states_b2);
  EXPECT_EQ(md.gradients, 0);
  EXPECT_EQ(md.peak_allocated, -1);  // not measurable on the CPU

  MambaLM t(c);
  init_reference(*t, 1);
  CaseRunner train(t, ProfileCase{CaseKind::kTrain, 2, 9}, torch::kCPU, 0, false);
  train.run_ms();
  const MemoryUse mt = train.measure_memory();
  EXPECT_EQ(mt.gradients, weights);  // every parameter trains, fp32 gradients
  EXPECT_EQ(mt.optimizer, 2 * weights);
  EXPECT_EQ(mt.states, 0);
}

// An SDM-gated model's training step: each sample draws its own step's gate noise, as pre-training
// does (without a resample the gated forward refuses to run), so the gate logits get a gradient
// that changes from sample to sample; a CUDA-graph step (it would replay one noise sample) is
// refused with a message that says why, before any device work.
TEST(ProfileRunner, GatedModelTrainsWithFreshGateNoiseEachSample) {
  ModelConfig c = tiny();
  c.gate_type = "hard_concrete";
  MambaLM m(c);
  init_reference(*m, 2);
  CaseRunner train(m, ProfileCase{CaseKind::kTrain, 2, 9}, torch::kCPU, 0, false);
  ASSERT_FALSE(m->backbone->gates().empty());
  ChannelGate gate = m->backbone->gates()[0];
  train.run_ms();  // refuses to run without the sample's resample
  ASSERT_TRUE(gate->log_alpha.grad().defined());
  EXPECT_GT(gate->log_alpha.grad().abs().sum().item<double>(), 0.0);
  const at::Tensor first = gate->forward().detach();  // the mask of the noise the sample drew
  train.run_ms();
  // AdamW (lr 1e-4) moves α by ~1e-4 per step, which moves the mask by less than that; fresh
  // noise moves some of its 128 entries by O(0.1).
  EXPECT_GT((gate->forward().detach() - first).abs().max().item<double>(), 1e-2)
      << "the second sample must draw other noise";
  ProfileCase graphed{CaseKind::kTrain, 2, 9};
  graphed.cuda_graph = true;
  EXPECT_NE(test::error_of([&] { CaseRunner(m, graphed, torch::kCPU, 0, false); })
                .find("model with SDM gates would replay one noise sample"),
            std::string::npos);
}

// --threads sets LibTorch's pool and the BLAS library's own (Debian's OpenBLAS, which at::set_num_threads
// does not reach), --blas-threads the latter alone; the profile records both. ctest's OMP_NUM_THREADS=1
// is what OpenBLAS would read by itself, so a pool of 2 is the options' doing.
TEST(ProfileCli, SetsAndRecordsBothCpuThreadPools) {
  test::TempDir tmp;
  MambaLM a(tiny());
  init_reference(*a, 1);
  save_pretrained(*a, tmp.file("a"));
  const auto pools = [&](const std::string& globals, int threads) {
    const auto r = test::run_cli(globals + " profile --model " + tmp.file("a") +
                                     " --device cpu --prefill 1x8 --iters 2 --warmup 0 --resamples 10 --out " +
                                     tmp.file("p.json"),
                                 "", threads);
    EXPECT_EQ(r.status, 0) << r.err;
    std::ifstream f(tmp.file("p.json"));
    return json::parse(f).at("cpu_threads");
  };
  const json one = pools("", 1), two = pools("", 2), parted = pools("--blas-threads 2", 1);
  EXPECT_EQ(one["torch"], 1);
  EXPECT_EQ(two["torch"], 2);
  EXPECT_EQ(parted["torch"], 1);
  if (one["blas"].is_null()) GTEST_SKIP() << "this LibTorch's BLAS has no thread pool of its own (not OpenBLAS)";
  EXPECT_EQ(one["blas"], 1);
  EXPECT_EQ(two["blas"], 2);
  EXPECT_EQ(parted["blas"], 2);
}

// --decode-sampling: each decode step chooses its token as generate does (the penalty, the filters,
// the draw: aten::exponential_ in the trace, absent from a greedy decode's), the case is labelled and
// its spec recorded; a bad spec is refused before any model loads.
TEST(ProfileCli, SampledDecodeChoosesTokensAsGenerateDoes) {
  test::TempDir tmp;
  MambaLM a(tiny());
  init_reference(*a, 1);
  save_pretrained(*a, tmp.file("a"));
  const std::string base = "profile --model " + tmp.file("a") +
                           " --device cpu --prefill '' --decode-batch 2 --decode-steps 3 --iters 2 --warmup 0";
  const std::string spec = "temperature=0.9,top_p=0.95,repetition_penalty=1.1";
  const auto r = test::run_cli(base + " --decode-sampling " + spec + " --trace " + tmp.file("t.json") + " --out " +
                               tmp.file("p.json"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(tmp.file("p.json"));
  const json j = json::parse(f);
  ASSERT_EQ(j["cases"].size(), 1u);
  EXPECT_EQ(j["cases"][0]["label"], "decode b2 sampled");
  EXPECT_EQ(j["cases"][0]["sampling"], spec);
  EXPECT_EQ(j["cases"][0]["results"][0]["samples_ms"].size(), 2u);
  const auto ops_in_trace = [](const std::string& path) {
    std::ifstream tin(path);
    const json trace = json::parse(tin);
    std::set<std::string> names;
    for (const json& e : trace.is_array() ? trace : trace.at("traceEvents")) names.insert(e.value("name", std::string()));
    return names;
  };
  EXPECT_EQ(ops_in_trace(tmp.file("t.decode_b2_sampled.json")).count("aten::exponential_"), 1u);
  const auto greedy = test::run_cli(base + " --trace " + tmp.file("g.json") + " --out " + tmp.file("g_p.json"));
  ASSERT_EQ(greedy.status, 0) << greedy.err;
  EXPECT_EQ(ops_in_trace(tmp.file("g.decode_b2.json")).count("aten::exponential_"), 0u);
  std::ifstream fg(tmp.file("g_p.json"));
  EXPECT_TRUE(json::parse(fg)["cases"][0]["sampling"].is_null());
  const auto bad = test::run_cli(base + " --decode-sampling top_q=0.5 --out " + tmp.file("q.json"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--decode-sampling: unknown key 'top_q'"), std::string::npos) << bad.err;
}

TEST(ProfileCli, WritesSummariesRatiosAndMemory) {
  test::TempDir tmp;
  MambaLM a(tiny()), b(tiny(3));
  init_reference(*a, 1);
  init_reference(*b, 2);
  save_pretrained(*a, tmp.file("a"));
  save_pretrained(*b, tmp.file("b"));
  const auto r = test::run_cli("--scan-time-segments off profile --model " + tmp.file("a") + " --model " + tmp.file("b") +
                               " --device cpu --prefill 1x32,2x16 --decode-batch 1 --decode-steps 4 --train-batch 2x8"
                               " --iters 6 --warmup 1 --resamples 200 --out " + tmp.file("p.json"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(tmp.file("p.json"));
  const json j = json::parse(f);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["timer"], "wall clock");
  EXPECT_EQ(j["inference_dtype"], "fp32");
  // The ops options it ran under, every key, the global option given before `profile` among them.
  EXPECT_EQ(j["ops"].size(), ops::ops_option_keys().size());
  EXPECT_EQ(j["ops"]["scan_time_segments"], "false");
  EXPECT_EQ(j["ops"]["decode_fused_head"], "true");
  ASSERT_EQ(j["models"].size(), 2u);
  EXPECT_EQ(j["models"][1]["widths"].size(), 3u);
  EXPECT_GT(j["models"][1]["forward_flops_per_token"].get<int64_t>(),
            j["models"][0]["forward_flops_per_token"].get<int64_t>());
  ASSERT_EQ(j["cases"].size(), 4u);  // 2 prefill, 1 decode, 1 train
  for (const json& c : j["cases"]) {
    ASSERT_EQ(c["results"].size(), 2u) << c["label"];
    for (const json& res : c["results"]) {
      EXPECT_EQ(res["samples_ms"].size(), 6u);
      const json& s = res["summary_ms"];
      EXPECT_EQ(s["n"], 6);
      EXPECT_LE(s["min"].get<double>(), s["p50"].get<double>());
      EXPECT_LE(s["p50"].get<double>(), s["p95"].get<double>());
      EXPECT_LE(s["p95"].get<double>(), s["p99"].get<double>());
      EXPECT_LE(s["p99"].get<double>(), s["max"].get<double>());
      EXPECT_GT(res["tokens_per_s_at_median"].get<double>(), 0.0);
      const json& mem = res["memory_bytes"];
      for (const char* k : {"weights", "states", "gradients", "optimizer", "peak_allocated", "peak_reserved",
                            "activations_and_workspace", "baseline_allocated"})
        EXPECT_TRUE(mem.contains(k)) << k;
      EXPECT_GT(mem["weights"].get<int64_t>(), 0);
    }
    EXPECT_FALSE(c["results"][0].contains("ratio_to_model0"));
    const json& ratio = c["results"][1]["ratio_to_model0"];
    EXPECT_LE(ratio["lower"].get<double>(), ratio["ratio_of_medians"].get<double>());
    EXPECT_LE(ratio["ratio_of_medians"].get<double>(), ratio["upper"].get<double>());
  }
  EXPECT_EQ(j["cases"][2]["case"], "decode");
  EXPECT_TRUE(j["cases"][2]["results"][0].contains("per_token_ms_p50"));
  EXPECT_EQ(j["cases"][3]["results"][0]["tokens_per_sample"], 16);
  // --trace: one Chrome trace per case of one more sample of each model; on Debian's LibTorch the
  // legacy profiler (a JSON array of events), with Kineto an object with traceEvents. Either way
  // the model's operators are in it.
  const auto traced = test::run_cli("profile --model " + tmp.file("a") + " --model " + tmp.file("b") +
                                    " --device cpu --prefill 1x32 --decode-batch 1 --decode-steps 2 --iters 2 --warmup 0"
                                    " --resamples 50 --trace " + tmp.file("t.json") + " --out " + tmp.file("pt.json"));
  ASSERT_EQ(traced.status, 0) << traced.err;
  std::ifstream ft(tmp.file("pt.json"));
  const json jt = json::parse(ft);
  ASSERT_EQ(jt["cases"].size(), 2u);
  for (const json& c : jt["cases"]) {
    const std::string path = c["trace"]["path"].get<std::string>();
    EXPECT_EQ(path, tmp.file(c["case"] == "prefill" ? "t.prefill_1x32.json" : "t.decode_b1.json"));
    std::ifstream tin(path);
    ASSERT_TRUE(tin.good()) << path;
    const json trace = json::parse(tin);
    const json& events = trace.is_array() ? trace : trace.at("traceEvents");
    bool saw_op = false;
    for (const json& e : events) saw_op = saw_op || e.value("name", std::string()).rfind("aten::", 0) == 0;
    EXPECT_TRUE(saw_op) << path;
  }
  const auto bad = test::run_cli("profile --model " + tmp.file("a") + " --device cpu --prefill 1x --decode-batch '' --out " +
                                 tmp.file("q.json"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("--prefill"), std::string::npos) << bad.err;
  // A CUDA-graph prefill needs a CUDA device; the label says which prefill ran.
  const auto graph_on_cpu = test::run_cli("profile --model " + tmp.file("a") +
                                          " --device cpu --prefill 1x8 --prefill-mode graph --decode-batch '' --out " +
                                          tmp.file("g.json"));
  EXPECT_EQ(graph_on_cpu.status, 1);
  EXPECT_NE(graph_on_cpu.err.find("--prefill-mode graph needs a CUDA device"), std::string::npos) << graph_on_cpu.err;
  ProfileCase g = parse_cases(CaseKind::kPrefill, "1x8", 1, "--prefill")[0];
  g.cuda_graph = true;
  EXPECT_EQ(g.label(), "prefill 1x8 graph");
  // So does a training step replayed as a CUDA graph (--train-mode graph or both).
  for (const char* mode : {"graph", "both"}) {
    const auto train_graph_on_cpu = test::run_cli("profile --model " + tmp.file("a") +
                                                  " --device cpu --prefill '' --decode-batch '' --train-batch 1x8 "
                                                  "--train-mode " + std::string(mode) + " --out " + tmp.file("tg.json"));
    EXPECT_EQ(train_graph_on_cpu.status, 1) << mode;
    EXPECT_NE(train_graph_on_cpu.err.find(std::string("--train-mode ") + mode + " needs a CUDA device"), std::string::npos)
        << train_graph_on_cpu.err;
  }
  ProfileCase t = parse_cases(CaseKind::kTrain, "2x8", 1, "--train-batch")[0];
  EXPECT_EQ(t.label(), "train 2x8");
  t.cuda_graph = true;
  EXPECT_EQ(t.label(), "train 2x8 graph");
}

}  // namespace
}  // namespace mcd::infer
