// The trainer end to end, through the `mamba-codesign` binary on a corpus the test writes:
// resume after a SIGKILL in the middle of writing a checkpoint continues bit-identically;
// a NaN loss stops the run with a clear message and a usable checkpoint; 2 Gloo ranks are
// bit-identical to 1 process accumulating the same 2 micro-batches and within a derived rounding
// bound of 1 process with the combined batch. The acceptance run on enwiki2015
// (validation loss below a unigram model's) is at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

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
  struct Record {
    int64_t step;
    double loss, grad_norm;
  };
  // The training records of metrics.jsonl (run.log_interval 1: one per step).
  std::vector<Record> records(const std::string& out) const {
    std::vector<Record> v;
    std::ifstream f(dir.file(out) + "/metrics.jsonl");
    std::string line;
    while (std::getline(f, line)) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("loss"))
        v.push_back({j["step"].get<int64_t>(), j["loss"].get<double>(), j["grad_norm"].get<double>()});
    }
    return v;
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

// The data-parallel contract, in three comparisons (every run pinned to one thread: run_cli
// passes --threads 1 and launch forwards it to its ranks; the CPU scan's backward sums
// per-thread partials, so a different thread count rounds differently):
//  1. 2 Gloo ranks (1 micro-batch of 2 rows each) and 1 process with 2 accumulation micro-batches
//     of the same 2 rows are bit-identical, every step. Rank r's rows are micro-batch r
//     (data/batch.h), so both compute the same two micro-batch gradients g0, g1 with the same
//     kernels. The ranks average (g0 + g1)/2; accumulation backpropagates loss/2 twice and sums,
//     g0/2 + g1/2. Halving is exact in binary floating point (no underflow at these magnitudes)
//     and commutes with every rounding, so backward(loss/2) = backward(loss)/2 bit for bit and
//     g0/2 + g1/2 = fl(g0 + g1)/2. The loss is (l0 + l1)/2 vs l0/2 + l1/2 in double: the same.
//  2. 1 process with the batch of 4 vs the 2 ranks at step 1 (same initial weights): the same
//     sums in a different order, within the bound derived at kSummationBound.
//  3. The weights moved from the initialisation (a step-0 model: the same run at lr 1e-30).
TEST(Pretrain, TwoGlooRanksEqualAccumulationAndOneProcessWithTheCombinedBatch) {
  MCD_SKIP_WITHOUT_GPT2();
  TinyRun s(4, /*batch=*/4, /*accum=*/1);
  // --master-port 0: launch picks a free port (no clash with another test or job).
  const Proc two = run("launch --nproc 2 --master-port 0 -- " + s.pretrain("two"));
  ASSERT_EQ(two.status, 0) << two.err;
  const Proc acc = run(s.pretrain("acc", "--set train.grad_accum=2"));
  ASSERT_EQ(acc.status, 0) << acc.err;
  const Proc one = run(s.pretrain("one"));
  ASSERT_EQ(one.status, 0) << one.err;
  // The step-0 weights: one step at lr 1e-30 (lr must be > 0). AdamW moves a weight by at most
  // ~lr per step, far below the rounding of any weight that is not exactly 0.
  const Proc init = run(s.pretrain("init", "--set train.steps=1 --set train.lr=1e-30"));
  ASSERT_EQ(init.status, 0) << init.err;

  // 1. Bit-identical: per-step loss and gradient norm, and the final weights.
  const auto r2 = s.records("two"), ra = s.records("acc"), r1 = s.records("one");
  ASSERT_EQ(r2.size(), 4u);
  ASSERT_EQ(ra.size(), 4u);
  ASSERT_EQ(r1.size(), 4u);
  for (size_t i = 0; i < r2.size(); ++i) {
    EXPECT_EQ(r2[i].loss, ra[i].loss) << "step " << r2[i].step;
    EXPECT_EQ(r2[i].grad_norm, ra[i].grad_norm) << "step " << r2[i].step;
  }
  const auto w2 = io::load_safetensors(s.dir.file("two/final/model.safetensors"));
  const auto wa = io::load_safetensors(s.dir.file("acc/final/model.safetensors"));
  const auto w0 = io::load_safetensors(s.dir.file("init/final/model.safetensors"));
  ASSERT_EQ(w2.size(), wa.size());
  ASSERT_EQ(w2.size(), w0.size());
  for (const auto& [k, v] : w2) EXPECT_TRUE(torch::equal(v, wa.at(k))) << k;

  // 2. One process vs two ranks at step 1.
  // [Summation bound] A float32 sum of n terms in any order is within γ_n·Σ|terms| of the exact
  // sum (γ_n = n·u/(1 − n·u), u = 2^-24), so two orders differ by at most 2γ_n·Σ|terms|. The
  // longest reduction whose order the batch split can change is over the vocabulary (logsumexp
  // and the LM head's products, n = V = 50264, padded); the token sums (B·L = 64 positions) and the
  // two-rank average are far shorter. Loss: per-token losses are positive, Σ|terms| = Σ terms, so
  // |Δloss|/loss ≤ 2γ_V ≈ 6.0e-3 strictly. Gradient norm: the same 2γ_V covers the token sums
  // (2γ_64 ≈ 7.6e-6) even with cancellation among the 64 token contributions up to a condition
  // number Σ|a|/|Σa| of V/64 ≈ 785. A gradient scale error (a missing /world or /accum, or one
  // too many) changes the gradient norm by a factor 2 (relative 0.5..1), and a loss reported
  // without /world is 2× too: both exceed the bound ~80–170 times.
  const double u = std::ldexp(1.0, -24), n = 50264;
  const double kSummationBound = 2 * n * u / (1 - n * u);
  ASSERT_EQ(r1[0].step, 1);
  const double dloss = std::abs(r2[0].loss - r1[0].loss) / r1[0].loss;
  const double dnorm = std::abs(r2[0].grad_norm - r1[0].grad_norm) / r1[0].grad_norm;
  std::cout << "step 1: loss " << r1[0].loss << " vs " << r2[0].loss << " (rel " << dloss << "), grad norm "
            << r1[0].grad_norm << " vs " << r2[0].grad_norm << " (rel " << dnorm << "), bound " << kSummationBound
            << "\n";
  EXPECT_LE(dloss, kSummationBound);
  EXPECT_LE(dnorm, kSummationBound);
  EXPECT_GT(r1[0].grad_norm, 0.0);

  // 3. The runs trained: every tensor moved from the step-0 weights far beyond rounding. Adam moves
  // a weight by up to ~lr per step, Σ lr ≈ 0.03 over these 4 steps; the least-moving tensor
  // changes by ~3e-3 relative here, 1e-4 is 30× below that and 1000× above float32 rounding.
  // The lr-1e-30 run starts from the same initialisation: its step-1 loss is the one-process loss.
  const auto r0 = s.records("init");
  ASSERT_EQ(r0.size(), 1u);
  EXPECT_EQ(r0[0].loss, r1[0].loss);
  double least_moved = INFINITY;
  for (const auto& [k, v] : w2) {
    const double moved = test::rel_err(v, w0.at(k));
    least_moved = std::min(least_moved, moved);
    EXPECT_GT(moved, 1e-4) << k << " did not move";
  }
  std::cout << "least relative change of a tensor from step 0: " << least_moved << "\n";
}

// Issue 20's CPU part: a rank that dies stops the job with a clear message (launch stops the other
// rank, which would otherwise wait in its next all-reduce), and the job resumes from its last
// checkpoint on another number of processes. Rank 0 is killed while writing the step-4 checkpoint
// of a 2-rank run; 1 process accumulating 2 micro-batches resumes from step 2. Two ranks and two
// accumulated micro-batches are bit-identical (the test above), so the resumed run must repeat an
// uninterrupted 2-rank run bit for bit, losses and weights.
TEST(Pretrain, ADyingRankStopsTheJobWhichResumesOnAnotherNumberOfProcesses) {
  MCD_SKIP_WITHOUT_GPT2();
  TinyRun s(6, /*batch=*/4, /*accum=*/1);
  const Proc a = run("launch --nproc 2 --master-port 0 -- " + s.pretrain("a"));
  ASSERT_EQ(a.status, 0) << a.err;
  const auto t0 = std::chrono::steady_clock::now();
  const Proc b1 = run("launch --nproc 2 --master-port 0 -- " + s.pretrain("b", "--test-fault kill-in-checkpoint-at-step=4"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(b1.status, 0);
  EXPECT_NE(b1.err.find("failed"), std::string::npos) << b1.err;
  EXPECT_NE(b1.err.find("stopping the others"), std::string::npos) << b1.err;
  EXPECT_LT(secs, 120.0) << "the surviving rank should be stopped, not left waiting";
  EXPECT_TRUE(fs::exists(s.dir.file("b/checkpoints/step_00000002/trainer_state.json")));
  EXPECT_FALSE(fs::exists(s.dir.file("b/checkpoints/step_00000004")));
  const Proc b2 = run(s.pretrain("b", "--resume --set train.grad_accum=2"));
  ASSERT_EQ(b2.status, 0) << b2.err;
  EXPECT_NE(b2.err.find("resumed from"), std::string::npos) << b2.err;
  const auto ra = s.records("a"), rb = s.records("b");
  ASSERT_EQ(ra.size(), 6u);
  ASSERT_GE(rb.size(), 6u);  // steps 1–2 (and 3–4 of the killed run, if logged) then 3–6 resumed
  for (size_t i = 0; i < 6; ++i) {
    const auto& last = *std::find_if(rb.rbegin(), rb.rend(), [&](const auto& r) { return r.step == ra[i].step; });
    EXPECT_EQ(ra[i].loss, last.loss) << "step " << ra[i].step;
    EXPECT_EQ(ra[i].grad_norm, last.grad_norm) << "step " << ra[i].step;
  }
  const auto wa = io::load_safetensors(s.dir.file("a/final/model.safetensors"));
  const auto wb = io::load_safetensors(s.dir.file("b/final/model.safetensors"));
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [k, v] : wa) EXPECT_TRUE(torch::equal(v, wb.at(k))) << k;
}

// eval.corpus (e.g. WikiText-2 validation): the final model's loss over all of an outside corpus.
// It must be the loss `score --corpus` gives for the same model and windows (seq_len + 1 tokens):
// same tokenization, same windows, same batches; float32 on one thread, so equal to rounding
// (losses ~10 nats: 1e-5 is a few ulps of float32 accumulation, where a window or token off by
// one moves the mean by ~0.1). A missing corpus fails before training, naming it.
TEST(Pretrain, OutsideValidationCorpusIsScoredLikeTheScoreCommand) {
  MCD_SKIP_WITHOUT_GPT2();
  TinyRun s(3);
  {
    std::ofstream f(s.dir.file("outside.txt"));
    for (int i = 0; i < 30; ++i) f << "An outside sentence number " << i * 13 << " about rivers and mountains.\n";
  }
  const std::string corpus = " --set 'eval.corpus=[" + s.dir.file("outside.txt") + "]' --set eval.corpus_format=text";
  const Proc r = run(s.pretrain("o", corpus));
  ASSERT_EQ(r.status, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.last_line());
  const double loss = summary.at("corpus_val_loss").get<double>();
  EXPECT_TRUE(std::isfinite(loss) && loss > 0) << summary.dump();
  EXPECT_TRUE(std::isfinite(summary.at("unigram_corpus_val_loss").get<double>()));
  const Proc sc = run("score --model " + s.dir.file("o/final") + " --corpus " + s.dir.file("outside.txt") +
                      " --format text --seq-len 17 --batch 2 --device cpu");
  ASSERT_EQ(sc.status, 0) << sc.err;
  const auto scored = nlohmann::json::parse(sc.last_line());
  EXPECT_NEAR(loss, scored.at("loss").get<double>(), 1e-5);
  EXPECT_EQ(summary.at("corpus_val_tokens").get<int64_t>(), scored.at("tokens").get<int64_t>());
  const Proc missing = run(s.pretrain("m", " --set 'eval.corpus=[" + s.dir.file("nowhere") + "]'"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find("nowhere"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(s.dir.file("m/checkpoints")));
  const Proc bad = run(s.pretrain("b", corpus + " --set eval.corpus_format=html"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("corpus_format"), std::string::npos) << bad.err;
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
  // One thread (LibTorch's, and OpenBLAS's through ctest's OMP_NUM_THREADS=1), beside the other tests: on 2 cores
  // the suite ends sooner than with this run alone on both (docs/NOTES.md, CPU training).
  const Proc r = run("pretrain --quiet --config " + config + " --set 'data.paths=[" + paths + "]' --set data.cache_dir=" +
                     dir.file("cache") + " --set run.out_dir=" + dir.file("run"));
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
                     " --set run.out_dir=" + dir.file("run") + " --set run.log_interval=10",
                     "", /*threads=*/1);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto summary = nlohmann::json::parse(r.last_line());
  const double det = summary.at("sdm").at("deterministic_sparsity").get<double>();
  std::cout << "deterministic sparsity " << det << " (target 0.5), validation loss " << summary.at("val_loss") << "\n";
  // A single run, but deterministic: the batch sampler and the gate noise are counter-based
  // (seed, step) and the thread count is pinned to 1 (the CPU ops' per-thread partial sums then
  // do not depend on the machine's cores; ctest's OMP_NUM_THREADS=1 holds OpenBLAS to one too). It takes
  // ~120 s on one core (300 steps of a 50257-token LM head), beside the other tests. The tolerance is the controller's settling band, not noise: λ1 integrates det − t, so det
  // overshoots when the ramp ends (0.60 at step 150 on the reference machine) and settles back in
  // a damped oscillation (0.527 at 200, 0.494 at 300). 0.03 (31 of the 1024 channels) is 5× the
  // final error seen, well below the overshoot, so a controller that does not settle, pulls the
  // wrong way or uses the wrong signal fails; another CPU's rounding moves the trajectory but not
  // the settling.
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
