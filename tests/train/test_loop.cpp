// The shared training loop (train/loop.h) with a toy objective that is not a language model: a
// linear regression whose batches are drawn from (seed, step). It must train, write its metrics,
// checkpoints and final weights through the objective, and resume bit-identically after a failed
// step — the contract the fine-tuning objective will rely on.
#include <gtest/gtest.h>

#include <fstream>

#include "io/safetensors_torch.h"
#include "ops/options.h"
#include "test_support.h"
#include "train/loop.h"
#include "util/cpu_threads.h"
#include "util/fs.h"

namespace mcd::train {
namespace {

class ToyRegression : public Objective {
 public:
  ToyRegression() : net_(torch::nn::Linear(4, 1)) {
    torch::NoGradGuard no_grad;
    net_->weight.zero_();
    net_->bias.zero_();
  }
  torch::nn::Module& module() override { return *net_; }
  void save_weights(const std::string& folder) override {
    fs::make_dirs(folder);
    io::save_safetensors(fs::join(folder, "toy.safetensors"), {{"w", net_->weight}, {"b", net_->bias}});
  }
  void load_weights(const std::string& folder) override {
    const auto t = io::load_safetensors(fs::join(folder, "toy.safetensors"));
    torch::NoGradGuard no_grad;
    net_->weight.copy_(t.at("w"));
    net_->bias.copy_(t.at("b"));
  }
  void begin_step(const StepContext& ctx) override {
    at::Generator gen = make_cpu_generator(1000 + uint64_t(ctx.step));
    x_ = torch::randn({8, 4}, gen);
    y_ = x_.matmul(torch::tensor({1.0f, -2.0f, 0.5f, 3.0f})).unsqueeze(1) + 0.25;  // the truth to learn
    ++begun;
  }
  at::Tensor micro_batch_loss(const StepContext& ctx, int64_t micro) override {
    const int64_t rows = 8 / ctx.micro_batches;
    const at::Tensor x = x_.narrow(0, micro * rows, rows), y = y_.narrow(0, micro * rows, rows);
    return (net_->forward(x) - y).pow(2).mean();
  }
  nlohmann::json evaluate(Communicator&) override {
    begin_step(StepContext{});
    torch::NoGradGuard no_grad;
    return {{"val_loss", (net_->forward(x_) - y_).pow(2).mean().item<double>()}};
  }
  double units_per_step() const override { return 8; }
  const char* unit_name() const override { return "ex"; }
  int begun = 0;

 private:
  torch::nn::Linear net_;
  at::Tensor x_, y_;
};

LoopSettings toy_settings(const std::string& out) {
  LoopSettings s;
  s.steps = 40;
  s.grad_accum = 2;
  s.warmup_steps = 2;
  s.lr = 0.1;
  s.optimizer.lr = 0.1;
  s.optimizer.weight_decay = 0.0;
  s.eval_interval = 0;
  s.checkpoint_interval = 10;
  s.log_interval = 1;
  s.out_dir = out;
  return s;
}

std::vector<nlohmann::json> metrics(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::ifstream f(fs::join(out, "metrics.jsonl"));
  std::string line;
  while (std::getline(f, line)) v.push_back(nlohmann::json::parse(line));
  return v;
}

TEST(TrainingLoop, TrainsAnObjectiveThatIsNotAnLm) {
  at::set_num_threads(1);
  // A BLAS pool of 2 where the process has one (Debian's OpenBLAS), so that the summary's record of it
  // is seen to be read, not assumed (ctest's OMP_NUM_THREADS=1 would give 1); put back at the end.
  const int blas_before = blas_threads();
  const bool blas_pool = set_blas_threads(2);
  test::TempDir dir;
  Communicator comm(DistEnv{}, "gloo");
  ToyRegression toy;
  const nlohmann::json summary = run_training_loop(toy, comm, torch::kCPU, toy_settings(dir.file("run")), {false, true, {}});
  EXPECT_EQ(toy.begun, 40 + 1);  // 40 steps and the final evaluation
  const auto m = metrics(dir.file("run"));
  ASSERT_EQ(m.size(), 41u);  // one line per step, one validation line
  // Trained: 40 AdamW steps take the loss down by well over 5× (measured ~10×); a loop that did
  // not step, or stepped uphill, would not get below the first loss.
  EXPECT_LT(m[39].at("loss").get<double>(), 0.2 * m[0].at("loss").get<double>());
  EXPECT_LT(summary.at("val_loss").get<double>(), 0.2 * m[0].at("loss").get<double>());
  EXPECT_TRUE(fs::exists(dir.file("run/final/toy.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step_00000040/toy.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("run/summary.json")));
  // The ops options in force, every key (the defaults here).
  ASSERT_TRUE(summary.contains("ops"));
  EXPECT_EQ(summary["ops"].size(), ops::ops_option_keys().size());
  EXPECT_EQ(summary["ops"].at("scan_plan"), "auto");
  EXPECT_EQ(summary["ops"].at("in_proj_saves_input"), "true");
  // The CPU pools it ran on: LibTorch's as set above, the BLAS pool's where there is one.
  EXPECT_EQ(summary.at("cpu_threads").at("torch"), 1);
  if (blas_pool) {
    EXPECT_EQ(summary["cpu_threads"].at("blas"), 2);
    set_blas_threads(blas_before);
  } else {
    EXPECT_TRUE(summary["cpu_threads"].at("blas").is_null());
  }
}

TEST(TrainingLoop, FailedStepThenResumeIsBitIdentical) {
  at::set_num_threads(1);
  test::TempDir dir;
  Communicator comm(DistEnv{}, "gloo");
  ToyRegression a;
  run_training_loop(a, comm, torch::kCPU, toy_settings(dir.file("a")), {false, true, {}});
  // b: the loss of step 25 reads NaN; the run stops after the step-20 checkpoint, then resumes.
  TrainOptions faulty{false, true, {}};
  faulty.faults.nan_loss_at_step = 25;
  ToyRegression b1;
  const std::string e =
      test::error_of([&] { run_training_loop(b1, comm, torch::kCPU, toy_settings(dir.file("b")), faulty); });
  EXPECT_NE(e.find("training loss is nan at step 25"), std::string::npos) << e;
  ToyRegression b2;
  run_training_loop(b2, comm, torch::kCPU, toy_settings(dir.file("b")), {true, true, {}});
  EXPECT_EQ(b2.begun, 20 + 1);  // steps 20…39 and the final evaluation
  const auto wa = io::load_safetensors(dir.file("a/final/toy.safetensors"));
  const auto wb = io::load_safetensors(dir.file("b/final/toy.safetensors"));
  for (const auto& [k, v] : wa) EXPECT_TRUE(torch::equal(v, wb.at(k))) << k;
  // The metrics read as one run.
  const auto ma = metrics(dir.file("a")), mb = metrics(dir.file("b"));
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i].value("loss", 0.0), mb[i].value("loss", 0.0)) << i;
}

}  // namespace
}  // namespace mcd::train
