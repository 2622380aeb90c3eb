// The trainer end to end, through the `mamba-codesign` binary on a corpus the test writes:
// resume after a SIGKILL in the middle of writing a checkpoint continues bit-identically;
// a NaN loss stops the run with a clear message and a usable checkpoint; 2 Gloo ranks give the
// same parameters as 1 process with the combined batch. The acceptance run on enwiki2015
// (validation loss below a unigram model's) is at the end.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/batch.h"
#include "data/token_cache.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/unigram.h"
#include "io/safetensors_torch.h"
#include "test_support.h"
#include "util/fs.h"

namespace mcd {
namespace {

using Proc = test::CliRun;

Proc run(const std::string& args, const std::string& env = "", int threads = 1) {
  return test::run_cli(args, env, threads);
}

bool have_gpt2() {
  try {
    data::BpeTokenizer::default_gpt2_dir();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// A small corpus, model and training config in a temporary folder.
struct TinyRun {
  test::TempDir dir;
  std::string config;
  explicit TinyRun(int64_t steps, int64_t batch = 4, int64_t accum = 1) {
    // Ten documents (one per file) so that both the train and the validation split get some.
    fs::make_dirs(dir.file("corpus"));
    for (int d = 0; d < 10; ++d) {
      std::ofstream corpus(dir.file("corpus/doc" + std::to_string(d) + ".txt"));
      for (int i = 0; i < 40; ++i)
        corpus << "The quick brown fox " << d * 40 + i << " jumps over the lazy dog number "
               << ((d * 40 + i) * 7919) % 1000 << ". Mamba models scan sequences in linear time.\n";
    }
    std::ofstream(dir.file("model.yaml")) << "d_model: 16\nn_layer: 2\nvocab_size: 50257\npad_vocab_multiple: 8\n"
                                             "d_state: 4\nexpand: 2\nd_conv: 4\neos_token_id: 50256\n";
    config = dir.file("train.yaml");
    std::ofstream(config) << "model: {config: " << dir.file("model.yaml") << "}\n"
                          << "data: {format: text, paths: [" << dir.file("corpus") << "], cache_dir: "
                          << dir.file("cache") << ", val_fraction: 0.5}\n"
                          << "train: {seq_len: 16, batch_size: " << batch << ", grad_accum: " << accum
                          << ", steps: " << steps << ", lr: 0.01, warmup_steps: 2, seed: 5}\n"
                          << "eval: {interval: 0, windows: 4, batch_size: 2}\n"
                          << "checkpoint: {interval: 2, keep_last: 2}\n"
                          << "run: {device: cpu, log_interval: 1}\n";
  }
  std::string pretrain(const std::string& out, const std::string& extra = "") const {
    return "pretrain --quiet --config " + config + " --set run.out_dir=" + dir.file(out) + " " + extra;
  }
  std::vector<std::pair<int64_t, double>> losses(const std::string& out) const {
    std::vector<std::pair<int64_t, double>> v;
    std::ifstream f(dir.file(out) + "/metrics.jsonl");
    std::string line;
    while (std::getline(f, line)) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("loss")) v.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
    }
    return v;
  }
};

#define MCD_SKIP_WITHOUT_GPT2() \
  if (!have_gpt2()) GTEST_SKIP() << "GPT-2 assets absent (scripts/fetch_assets.sh)"

TEST(Pretrain, KillDuringCheckpointThenResumeIsBitIdentical) {
  MCD_SKIP_WITHOUT_GPT2();
  TinyRun s(8);
  const Proc a = run(s.pretrain("a"));
  ASSERT_EQ(a.status, 0) << a.err;
  // Killed with SIGKILL while writing the step-6 checkpoint.
  const Proc b1 = run(s.pretrain("b", "--test-fault kill-in-checkpoint-at-step=6"));
  EXPECT_NE(b1.status, 0);
  const auto names = fs::list_dir(s.dir.file("b/checkpoints"));
  EXPECT_TRUE(std::count_if(names.begin(), names.end(), [](auto& n) { return n.rfind(".tmp_", 0) == 0; }) == 1)
      << "an interrupted temporary folder is expected";
  EXPECT_TRUE(fs::exists(s.dir.file("b/checkpoints/step_00000004/trainer_state.json")));
  EXPECT_FALSE(fs::exists(s.dir.file("b/checkpoints/step_00000006")));
  const Proc b2 = run(s.pretrain("b", "--resume"));
  ASSERT_EQ(b2.status, 0) << b2.err;
  EXPECT_NE(b2.err.find("resumed from"), std::string::npos) << b2.err;
  const auto la = s.losses("a"), lb = s.losses("b");
  ASSERT_EQ(la.size(), 8u);
  ASSERT_EQ(lb.size(), 8u);
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i].first, lb[i].first);
    EXPECT_EQ(la[i].second, lb[i].second) << "step " << la[i].first;  // bit-identical
  }
  // The final weights are identical too; keep_last=2 pruned the older checkpoints.
  const auto wa = io::load_safetensors(s.dir.file("a/final/model.safetensors"));
  const auto wb = io::load_safetensors(s.dir.file("b/final/model.safetensors"));
  for (const auto& [k, v] : wa) EXPECT_TRUE(torch::equal(v, wb.at(k))) << k;
  std::vector<std::string> kept;
  for (const auto& n : fs::list_dir(s.dir.file("a/checkpoints")))
    if (n.rfind("step_", 0) == 0) kept.push_back(n);
  EXPECT_EQ(kept, (std::vector<std::string>{"step_00000006", "step_00000008"}));
}

TEST(Pretrain, NonFiniteLossStopsWithClearMessageAndUsableCheckpoint) {
  MCD_SKIP_WITHOUT_GPT2();
  TinyRun s(8);
  const Proc r = run(s.pretrain("n", "--test-fault nan-loss-at-step=5"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("training loss is nan at step 5"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(s.dir.file("n/checkpoints/step_00000004/trainer_state.json")));
  const Proc again = run(s.pretrain("n", "--resume"));
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("step 4"), std::string::npos) << again.err;
}

TEST(Pretrain, TwoGlooRanksEqualOneProcessWithTheCombinedBatch) {
  MCD_SKIP_WITHOUT_GPT2();
  TinyRun s(4, /*batch=*/4, /*accum=*/1);
  const Proc one = run(s.pretrain("one"));
  ASSERT_EQ(one.status, 0) << one.err;
  const Proc two = run("launch --nproc 2 --master-port 29612 -- " + s.pretrain("two"));
  ASSERT_EQ(two.status, 0) << two.err;
  // Also: 1 process with 2 micro-batches of accumulation.
  const Proc acc = run(s.pretrain("acc", "--set train.grad_accum=2"));
  ASSERT_EQ(acc.status, 0) << acc.err;
  const auto w1 = io::load_safetensors(s.dir.file("one/final/model.safetensors"));
  const auto w2 = io::load_safetensors(s.dir.file("two/final/model.safetensors"));
  const auto wa = io::load_safetensors(s.dir.file("acc/final/model.safetensors"));
  ASSERT_EQ(w1.size(), w2.size());
  for (const auto& [k, v] : w1) {
    EXPECT_LT(test::rel_err(w2.at(k), v), 1e-5) << k;
    EXPECT_LT(test::rel_err(wa.at(k), v), 1e-5) << k;
  }
  // The runs really trained (parameters moved from the initialisation).
  const auto l = s.losses("one");
  ASSERT_EQ(l.size(), 4u);
}

TEST(Pretrain, EnwikiValidationLossBeatsUnigramModel) {
  MCD_SKIP_WITHOUT_GPT2();
  const std::string wiki = test::shared_dir() + "/data/enwiki2015/AA/wiki_00";
  if (!fs::exists(wiki)) GTEST_SKIP() << wiki << " absent (../shared is absent in this clone)";
  test::TempDir dir;
  const std::string config = test::source_dir() + "/configs/train/small-enwiki-cpu.yaml";
  // The shipped config with paths made absolute for the test's working directory.
  std::string paths;
  for (int i = 0; i < 10; ++i) paths += std::string(i ? "," : "") + test::shared_dir() + "/data/enwiki2015/AA/wiki_0" + std::to_string(i);
  const Proc r = run("pretrain --quiet --config " + config + " --set 'data.paths=[" + paths + "]' --set data.cache_dir=" +
                     dir.file("cache") + " --set run.out_dir=" + dir.file("run"),
                     "", /*threads=*/0);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.last_line());
  const double val = summary.at("val_loss").get<double>(), unigram = summary.at("unigram_val_loss").get<double>();
  std::cout << "validation loss " << val << " nats/token vs unigram " << unigram << "\n";
  EXPECT_LT(val, unigram);
}

}  // namespace
}  // namespace mcd

namespace mcd {
namespace {

TEST(PretrainSdm, TargetSparsityIsHitByTheDeterministicMaskAndPruningKeepsIt) {
  MCD_SKIP_WITHOUT_GPT2();
  const std::string wiki = test::shared_dir() + "/data/enwiki2015/AA/wiki_00";
  if (!fs::exists(wiki)) GTEST_SKIP() << wiki << " absent (../shared is absent in this clone)";
  test::TempDir dir;
  std::string paths;
  for (int i = 0; i < 4; ++i) paths += std::string(i ? "," : "") + test::shared_dir() + "/data/enwiki2015/AA/wiki_0" + std::to_string(i);
  const Proc r = run("pretrain --quiet --config " + test::source_dir() + "/configs/train/sdm-small-enwiki-cpu.yaml" +
                     " --set 'data.paths=[" + paths + "]' --set data.cache_dir=" + dir.file("cache") +
                     " --set run.out_dir=" + dir.file("run"),
                     "", /*threads=*/0);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.last_line());
  const double det = summary.at("sdm").at("deterministic_sparsity").get<double>();
  std::cout << "deterministic sparsity " << det << " (target 0.5), validation loss " << summary.at("val_loss") << "\n";
  EXPECT_NEAR(det, 0.5, 0.03);
  EXPECT_TRUE(std::isfinite(summary.at("val_loss").get<double>()));
  // Physical pruning of the final model removes exactly the channels the mask closes.
  const Proc p = run("prune --model " + dir.file("run/final") + " --out " + dir.file("pruned"));
  ASSERT_EQ(p.status, 0) << p.err;
  const auto pj = nlohmann::json::parse(p.last_line());
  EXPECT_NEAR(pj.at("sparsity").get<double>(), det, 1e-9);
  EXPECT_LT(pj.at("pruned_parameters").get<int64_t>(), pj.at("dense_parameters").get<int64_t>());
}

}  // namespace
}  // namespace mcd
