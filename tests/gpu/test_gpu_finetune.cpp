// Fine-tuning on a CUDA device with CUDA-graph steps (ops/step_graphs.h): a run whose steps are
// replayed graphs is the same run as one of eager steps — the same kernels on the same inputs with
// the same dropout draws — so losses and trained weights must be bit-identical. Both runs use
// deterministic algorithms: the default backward kernels sum some gradients with atomics, so two
// eager runs already differ in the last bits (measured on an H200: full fine-tuning's weights by
// up to 3e-5 after 39 steps), which would hide a replay that reads a stale buffer.
#include <gtest/gtest.h>

#include <fstream>

#include "finetune/finetune.h"
#include "io/safetensors_torch.h"
#include "../finetune/keyword_task.h"
#include "test_support.h"
#include "util/fs.h"

namespace mcd {
namespace {

std::vector<double> logged_losses(const std::string& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

TEST(GpuFinetune, GraphStepsRepeatTheEagerStepsBitForBit) {
  MCD_SKIP_IF_NO_CUDA();
  const test::DeterministicScope deterministic;
  test::TempDir tmp;
  test::write_keyword_task(tmp.file("train.jsonl"), 200, 1);
  test::write_keyword_task(tmp.file("dev.jsonl"), 60, 2);
  const std::string model = test::write_model(tmp.file("model"));
  // full: every weight's gradient; lora: dropout's random masks inside the graph; ia3: weight forms.
  for (const std::string method : {"full", "lora", "ia3"}) {
    nlohmann::json results[2];
    for (const bool graphs : {false, true}) {
      finetune::FinetuneSettings s;
      s.model_dir = model;
      s.data.task = "custom";
      s.data.train_file = tmp.file("train.jsonl");
      s.data.dev_file = tmp.file("dev.jsonl");
      s.out_dir = tmp.file(method + (graphs ? "-graphs" : "-eager"));
      s.peft.method = peft::parse_method(method);
      s.peft.lora.rank = 4;
      s.peft.lora.alpha = 8;
      s.epochs = 3;  // 13 steps an epoch: every length bucket is met, captured and replayed
      s.batch_size = 16;
      s.lr = method == "full" ? 3e-3 : 2e-2;
      s.device = torch::Device(torch::kCUDA);
      s.cuda_graphs = graphs;
      s.quiet = true;
      results[graphs] = finetune::run_finetune(s);
    }
    const auto& eager = results[0]["train_summary"];
    const auto& graphed = results[1]["train_summary"];
    EXPECT_EQ(eager["cuda_graphs"].get<int64_t>(), 0) << method;
    EXPECT_GT(graphed["cuda_graphs"].get<int64_t>(), 0) << method;
    // Most steps are replays: each key runs eagerly once and is captured on its second step.
    EXPECT_GT(graphed["graph_replays"].get<int64_t>(), graphed["steps"].get<int64_t>() / 2) << method << graphed.dump();
    const auto a = logged_losses(tmp.file(method + "-eager/metrics.jsonl"));
    const auto b = logged_losses(tmp.file(method + "-graphs/metrics.jsonl"));
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a, b) << method;
    ASSERT_EQ(results[0]["history"].size(), results[1]["history"].size());
    for (size_t i = 0; i < results[0]["history"].size(); ++i)
      for (const char* k : {"val_loss", "score"})
        EXPECT_EQ(results[0]["history"][i][k], results[1]["history"][i][k]) << method << " evaluation " << i << " " << k;
    const std::string file = method == "full" ? "/model/model.safetensors" : "/adapters/adapter_model.safetensors";
    auto ta = io::load_safetensors(tmp.file(method + "-eager") + file);
    auto tb = io::load_safetensors(tmp.file(method + "-graphs") + file);
    ASSERT_EQ(ta.size(), tb.size());
    for (const auto& [name, t] : ta) {
      ASSERT_TRUE(tb.count(name)) << name;
      EXPECT_TRUE(at::equal(t, tb.at(name))) << method << " " << name << " max diff "
                                              << (t.to(at::kDouble) - tb.at(name).to(at::kDouble)).abs().max().item<double>();
    }
  }
}

}  // namespace
}  // namespace mcd
