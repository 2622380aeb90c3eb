// Pre-training on a CUDA device with CUDA-graph steps (train.cuda_graphs, ops/step_graphs.h): the
// same run as one of eager steps — the same kernels on the same staged windows — so every logged
// loss and gradient norm, the evaluation and the final weights must be bit-identical. Both runs use
// deterministic algorithms: the scan's default backward sums dB/dC with atomics, so two eager runs
// already differ in the last bits, which would hide a replay that reads a stale buffer. fp32 and
// bf16 (autocast inside the captured step).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizer/bpe_tokenizer.h"
#include "io/safetensors_torch.h"
#include "test_support.h"
#include "train/train_config.h"
#include "train/trainer.h"
#include "util/fs.h"

namespace mcd {
namespace {

// metrics.jsonl's training records: (loss, grad_norm) per logged step.
std::vector<std::pair<double, double>> pretrain_records(const std::string& metrics) {
  std::vector<std::pair<double, double>> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss") && j.contains("grad_norm")) out.emplace_back(j["loss"].get<double>(), j["grad_norm"].get<double>());
  }
  return out;
}

TEST(GpuPretrain, GraphStepsRepeatTheEagerStepsBitForBit) {
  MCD_SKIP_IF_NO_CUDA();
  try {
    data::BpeTokenizer::default_gpt2_dir();
  } catch (const std::exception&) {
    GTEST_SKIP() << "GPT-2 assets absent (scripts/fetch_assets.sh)";
  }
  const test::DeterministicScope deterministic;
  test::TempDir dir;
  fs::make_dirs(dir.file("corpus"));
  for (int d = 0; d < 6; ++d) {
    std::ofstream corpus(dir.file("corpus/doc" + std::to_string(d) + ".txt"));
    for (int i = 0; i < 60; ++i)
      corpus << "Selective state spaces scan " << d * 60 + i << " tokens in linear time, step " << (i * 7919) % 1000
             << ".\n";
  }
  // E = 96 (not a multiple of the scan's blocks), N = 16: the model's real kernels at a tiny size.
  std::ofstream(dir.file("model.yaml")) << "d_model: 48\nn_layer: 2\nvocab_size: 50257\npad_vocab_multiple: 8\n"
                                           "d_state: 16\nexpand: 2\nd_conv: 4\neos_token_id: 50256\n";
  std::ofstream(dir.file("train.yaml")) << "model: {config: " << dir.file("model.yaml") << "}\n"
                                        << "data: {format: text, paths: [" << dir.file("corpus") << "], cache_dir: "
                                        << dir.file("cache") << ", val_fraction: 0.3}\n"
                                        << "train: {seq_len: 64, batch_size: 4, steps: 9, lr: 0.01, warmup_steps: 2, seed: 3}\n"
                                        << "eval: {interval: 4, windows: 4, batch_size: 2}\n"
                                        << "checkpoint: {interval: 0}\n"
                                        << "run: {device: cuda, log_interval: 1}\n";
  for (const std::string precision : {"fp32", "bf16"}) {
    nlohmann::json summary[2];
    for (const bool graphs : {false, true}) {
      const std::string out = dir.file(precision + (graphs ? "-graphs" : "-eager"));
      const train::TrainConfig c = train::load_train_config(
          dir.file("train.yaml"), {"run.out_dir=" + out, "train.precision=" + precision,
                                   std::string("train.cuda_graphs=") + (graphs ? "true" : "false")});
      train::TrainOptions o;
      o.quiet = true;
      summary[graphs] = train::run_pretraining(c, o);
    }
    EXPECT_EQ(summary[0]["cuda_graphs"].get<int64_t>(), 0) << precision;
    EXPECT_EQ(summary[1]["cuda_graphs"].get<int64_t>(), 1) << precision << summary[1].dump();
    // Step 1 runs eagerly (warm-up), step 2 is captured and replayed, so are the rest.
    EXPECT_EQ(summary[1]["graph_replays"].get<int64_t>(), summary[1]["steps"].get<int64_t>() - 1) << precision;
    const auto eager = pretrain_records(dir.file(precision + "-eager/metrics.jsonl"));
    const auto graphed = pretrain_records(dir.file(precision + "-graphs/metrics.jsonl"));
    ASSERT_EQ(eager.size(), 9u) << precision;
    EXPECT_EQ(eager, graphed) << precision;
    EXPECT_EQ(summary[0]["val_loss"], summary[1]["val_loss"]) << precision;
    const auto a = io::load_safetensors(dir.file(precision + "-eager/final/model.safetensors"));
    const auto b = io::load_safetensors(dir.file(precision + "-graphs/final/model.safetensors"));
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << precision << " " << name;
  }
}

}  // namespace
}  // namespace mcd
