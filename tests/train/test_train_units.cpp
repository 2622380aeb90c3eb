// Trainer building blocks: the strict training YAML with --set overrides, the learning-rate
// schedule, weight-decay groups, the optimizer state round trip, and the distributed
// environment's validation.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "model/mamba.h"
#include "test_support.h"
#include "train/distributed.h"
#include "train/optimizer.h"
#include "train/train_config.h"
#include "util/error.h"

namespace mcd::train {
namespace {

using test::error_of;

TEST(TrainConfig, ShippedConfigsParseAndOverridesApply) {
  const std::string path = test::source_dir() + "/configs/train/small-enwiki-cpu.yaml";
  const TrainConfig c = load_train_config(path, {"train.lr=0.5", "run.out_dir=/tmp/x", "eval.windows=3"});
  EXPECT_EQ(c.train.lr, 0.5);
  EXPECT_EQ(c.run.out_dir, "/tmp/x");
  EXPECT_EQ(c.eval.windows, 3);
  EXPECT_EQ(c.model_config().d_model, 128);
  EXPECT_EQ(c.data.paths.size(), 10u);
  // Every shipped training config parses.
  for (const char* name : {"small-enwiki-cpu", "sdm-small-enwiki-cpu", "mamba130m-enwiki-gpu"}) {
    const TrainConfig t = load_train_config(test::source_dir() + "/configs/train/" + name + ".yaml");
    EXPECT_GT(t.train.steps, 0) << name;
  }
  const TrainConfig sdm = load_train_config(test::source_dir() + "/configs/train/sdm-small-enwiki-cpu.yaml");
  EXPECT_TRUE(sdm.sdm.enabled);
  EXPECT_EQ(sdm.sdm.control.lambda_signal, "deterministic");  // pre-training's default
  EXPECT_FALSE(sdm.model_config().gate_type.empty());
}

// Values that would train nonsense (NaN from β = 1 or τ = 0, gradients zeroed by a clip of 0 or
// reversed by a negative one, …) are refused at load time with file, key and value named.
TEST(TrainConfig, OutOfRangeValuesAreRefusedWithFileKeyAndValue) {
  test::TempDir dir;
  const std::string path = dir.file("t.yaml");
  std::ofstream(path) << "model: {preset: mamba-tiny}\ndata: {paths: [x]}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train.grad_clip=-1", "[train]: grad_clip=-1 must be > 0, or 0 for no clipping"},
      {"train.beta1=1", "[train]: beta1=1 must be in [0, 1)"},
      {"train.beta2=-0.5", "[train]: beta2=-0.5 must be in [0, 1)"},
      {"train.eps=0", "[train]: eps=0 must be > 0"},
      {"train.lr=-0.001", "[train]: lr=-0.001 must be > 0"},
      {"train.weight_decay=-0.1", "[train]: weight_decay=-0.1 must be >= 0"},
      {"train.warmup_steps=-1", "[train]: warmup_steps=-1 must be >= 0"},
      {"sdm.tau0=0", "[sdm]: tau0=0 must be > 0"},
      {"sdm.tau1=-1", "[sdm]: tau1=-1 must be > 0"},
      {"sdm.lambda_lr=-0.1", "[sdm]: lambda_lr=-0.1 must be > 0"},
      {"sdm.gate_lr=0", "[sdm]: gate_lr=0 must be > 0"},
      {"sdm.penalty_weight=-2", "[sdm]: penalty_weight=-2 must be >= 0"},
      {"sdm.warmup_fraction=1.5", "[sdm]: warmup_fraction=1.5 must be in [0, 1]"},
      {"sdm.lambda_signal=typo", "[sdm]: lambda_signal=typo must be deterministic or expected"},
      {"sdm.gate_type=bernoulli", "[sdm]: gate_type: unknown gate type 'bernoulli'"},
      {"run.device=tpu", "[run]: device=tpu must be auto, cpu, cuda or cuda:N"},
      {"run.log_interval=0", "[run]: log_interval=0 must be >= 1"},
      {"eval.interval=-5", "[eval]: interval=-5 must be >= 0"},
      {"data.format=csv", "[data]: format=csv must be auto, wikitext, wikiextractor or text"},
  };
  for (const auto& c : cases) {
    const std::string& set = c.first;  // named, not bound: C++17 lets no lambda capture a structured binding
    const std::string& want = c.second;
    const std::string e = error_of([&] { load_train_config(path, {set}); });
    EXPECT_NE(e.find(path + " " + want), std::string::npos) << set << " gave: " << e;
  }
  // The edges that are valid: no clipping, β = 0, cuda:N.
  const TrainConfig ok = load_train_config(path, {"train.grad_clip=0", "train.beta1=0", "run.device=cuda:3"});
  EXPECT_EQ(ok.train.grad_clip, 0.0);
  EXPECT_EQ(ok.run.device, "cuda:3");
}

// train.cuda_graphs (a step's forward and backward as one CUDA graph) is refused where a graph step
// cannot be: several micro-batches, or gates being learned (their noise and regulariser run outside
// the step); the file and both values are named. Off by default.
TEST(TrainConfig, CudaGraphStepsNeedOneMicroBatchAndNoLearnedGates) {
  test::TempDir dir;
  const std::string path = dir.file("t.yaml");
  std::ofstream(path) << "model: {preset: mamba-tiny}\ndata: {paths: [x]}\n";
  EXPECT_FALSE(load_train_config(path).train.cuda_graphs);
  EXPECT_TRUE(load_train_config(path, {"train.cuda_graphs=true"}).train.cuda_graphs);
  std::string e = error_of([&] { load_train_config(path, {"train.cuda_graphs=true", "train.grad_accum=2"}); });
  EXPECT_NE(e.find(path + " [train]: cuda_graphs needs grad_accum 1 and sdm.enabled false"), std::string::npos) << e;
  EXPECT_NE(e.find("got grad_accum 2 and sdm.enabled false"), std::string::npos) << e;
  e = error_of([&] { load_train_config(path, {"train.cuda_graphs=true", "sdm.enabled=true"}); });
  EXPECT_NE(e.find("got grad_accum 1 and sdm.enabled true"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { load_train_config(path, {"train.cuda_graphs=maybe"}); }).find("cuda_graphs"),
            std::string::npos);
}

// The ops section: checked when the file is read, applied on top of the process's options (only the
// keys it sets).
TEST(TrainConfig, OpsSectionSetsOnlyItsKeys) {
  test::TempDir dir;
  const std::string path = dir.file("t.yaml");
  std::ofstream(path) << "model: {preset: mamba-tiny}\ndata: {paths: [x]}\nops: {scan_plan: low_memory}\n";
  const TrainConfig c = load_train_config(path, {"ops.fused_mixer=false"});
  ops::OpsOptions base;
  base.backend = ops::Backend::kComposite;  // as if the CLI's --ops composite had set it
  const ops::OpsOptions o = c.ops.apply(base);
  EXPECT_EQ(o.scan_plan, ops::ScanPlan::kLowMemory);
  EXPECT_FALSE(o.fused_mixer);
  EXPECT_EQ(o.backend, ops::Backend::kComposite);
  EXPECT_FALSE(o.mixer_saves_conv_output);
  std::string e = error_of([&] { load_train_config(path, {"ops.scan_plan=tiny"}); });
  EXPECT_NE(e.find(path + " [ops]: unknown scan plan 'tiny'"), std::string::npos) << e;
  e = error_of([&] { load_train_config(path, {"ops.variant=12"}); });
  EXPECT_NE(e.find("unknown key 'variant'"), std::string::npos) << e;
}

// An already gated init_from keeps its gates: sdm gate keys that disagree with them are an error,
// not silently ignored.
TEST(TrainConfig, GatedInitFromRefusesDisagreeingGateSettings) {
  test::TempDir dir;
  ModelConfig gated = model_preset("mamba-tiny");
  gated.gate_type = "hard_concrete";
  gated.gate_block = 2;
  std::ofstream(dir.file("config.json")) << gated.to_hf_json().dump();
  const std::string path = dir.file("t.yaml");
  std::ofstream(path) << "model: {init_from: " << dir.path << "}\ndata: {paths: [x]}\nsdm: {enabled: true}\n";
  EXPECT_EQ(load_train_config(path).model_config().gate_block, 2);
  EXPECT_EQ(load_train_config(path, {"sdm.gate_block=2"}).model_config().gate_block, 2);
  const std::string e = error_of([&] { load_train_config(path, {"sdm.gate_block=4"}).model_config(); });
  EXPECT_NE(e.find("gate_block=4 but model.init_from " + dir.path + " already has gates with gate_block=2"),
            std::string::npos)
      << e;
}

TEST(TrainConfig, ErrorsNameKeyAndFile) {
  test::TempDir dir;
  const std::string path = dir.file("t.yaml");
  std::ofstream(path) << "model: {preset: mamba-tiny}\ndata: {paths: [x]}\ntrain: {stepz: 3}\n";
  std::string e = error_of([&] { load_train_config(path); });
  EXPECT_NE(e.find("unknown key 'stepz'"), std::string::npos) << e;
  EXPECT_NE(e.find(path), std::string::npos) << e;
  std::ofstream(path) << "model: {preset: mamba-tiny}\ndata: {paths: [x]}\ntrain: {steps: many}\n";
  e = error_of([&] { load_train_config(path); });
  EXPECT_NE(e.find("key 'steps' must be an integer"), std::string::npos) << e;
  std::ofstream(path) << "model: {preset: mamba-tiny}\ndata: {paths: [x]}\n";
  e = error_of([&] { load_train_config(path, {"train.precision=fp8"}); });
  EXPECT_NE(e.find("precision=fp8 must be fp32 or bf16"), std::string::npos) << e;
  e = error_of([&] { load_train_config(path, {"lr=3"}); });
  EXPECT_NE(e.find("section.key"), std::string::npos) << e;
  e = error_of([&] { load_train_config(path, {"trian.lr=3"}); });
  EXPECT_NE(e.find("unknown key 'trian'"), std::string::npos) << e;
  std::ofstream(path) << "model: {preset: mamba-tiny, init_from: x}\ndata: {paths: [x]}\n";
  e = error_of([&] { load_train_config(path); });
  EXPECT_NE(e.find("exactly one of preset, config, init_from"), std::string::npos) << e;
}

TEST(LrSchedule, WarmupCosineFloor) {
  EXPECT_DOUBLE_EQ(lr_at(0, 100, 10, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, 100, 10, 1.0, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(10, 100, 10, 1.0, 0.1), 1.0);
  EXPECT_NEAR(lr_at(55, 100, 10, 1.0, 0.1), 0.55, 1e-12);  // half way down the cosine
  EXPECT_NEAR(lr_at(100, 100, 10, 1.0, 0.1), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(500, 100, 10, 1.0, 0.1), 0.1, 1e-12);
  for (int64_t s = 11; s < 100; ++s) EXPECT_LE(lr_at(s, 100, 10, 1.0, 0.1), lr_at(s - 1, 100, 10, 1.0, 0.1));
}

TEST(LrSchedule, WarmupLinearToZero) {
  // Fine-tuning's schedule: the same warm-up, then a straight line from the peak to peak·min_ratio.
  const auto linear = Schedule::kLinear;
  EXPECT_DOUBLE_EQ(lr_at(4, 100, 10, 2.0, 0.0, linear), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(10, 100, 10, 2.0, 0.0, linear), 2.0);
  EXPECT_NEAR(lr_at(55, 100, 10, 2.0, 0.0, linear), 1.0, 1e-12);  // half way down the line
  EXPECT_NEAR(lr_at(82, 100, 10, 2.0, 0.0, linear), 0.4, 1e-12);
  EXPECT_NEAR(lr_at(100, 100, 10, 2.0, 0.0, linear), 0.0, 1e-12);
  EXPECT_NEAR(lr_at(55, 100, 10, 2.0, 0.5, linear), 1.5, 1e-12);  // the floor is respected
  EXPECT_EQ(parse_schedule("linear"), linear);
  EXPECT_NE(error_of([] { parse_schedule("step"); }).find("unknown learning-rate schedule 'step'"), std::string::npos);
}

TEST(Optimizer, WeightDecayGroups) {
  MambaLM m(model_preset("mamba-tiny"));
  std::set<std::string> decayed;
  for (const auto& p : m->named_parameters())
    if (uses_weight_decay(p.key(), p.value())) decayed.insert(p.key());
  EXPECT_TRUE(decayed.count("backbone.layers.0.mixer.in_proj.weight"));
  EXPECT_TRUE(decayed.count("backbone.layers.1.mixer.out_proj.weight"));
  EXPECT_TRUE(decayed.count("backbone.embeddings.weight"));
  EXPECT_FALSE(decayed.count("backbone.layers.0.mixer.A_log"));
  EXPECT_FALSE(decayed.count("backbone.layers.0.mixer.D"));
  EXPECT_FALSE(decayed.count("backbone.layers.0.norm.weight"));
  EXPECT_FALSE(decayed.count("backbone.layers.0.mixer.dt_proj.bias"));
  EXPECT_FALSE(decayed.count("backbone.norm_f.weight"));
  auto opt = make_adamw(*m, OptimizerSettings{});
  ASSERT_EQ(opt->param_groups().size(), 2u);
  EXPECT_EQ(static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[1].options()).weight_decay(), 0.0);
}

TEST(Optimizer, StateRoundTripContinuesIdentically) {
  auto make = [] {
    MambaLM m(model_preset("mamba-tiny"));
    init_reference(*m, 3);
    return m;
  };
  const at::Tensor ids = torch::randint(0, 512, {2, 9}, torch::kLong);
  MambaLM a = make(), b = make();
  auto oa = make_adamw(*a, OptimizerSettings{}), ob = make_adamw(*b, OptimizerSettings{});
  auto step = [&](MambaLM& m, torch::optim::AdamW& o) {
    o.zero_grad();
    m->loss(ids).backward();
    o.step();
  };
  step(a, *oa);
  step(a, *oa);
  // b: one step, then a fresh optimizer restored from a's state after… its own first step.
  step(b, *ob);
  auto tensors = adamw_state_tensors(*b, *ob);
  std::map<std::string, at::Tensor> named(tensors.begin(), tensors.end());
  auto fresh = make_adamw(*b, OptimizerSettings{});
  load_adamw_state(*b, *fresh, named, "memory");
  step(b, *fresh);
  auto pa = a->named_parameters();
  for (const auto& p : b->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pa[p.key()])) << p.key();
  named.begin()->second = torch::zeros({3});
  EXPECT_THROW(load_adamw_state(*b, *fresh, named, "memory"), Error);
}

// MASTER_PORT is a TCP port: values outside 1..65535 are refused by name instead of being
// truncated to 16 bits (70000 used to become 4464).
TEST(DistEnv, MasterPortMustBeATcpPort) {
  struct Restore {
    std::string saved;
    bool had;
    Restore() : had(std::getenv("MASTER_PORT") != nullptr) {
      if (had) saved = std::getenv("MASTER_PORT");
    }
    ~Restore() {
      if (had) ::setenv("MASTER_PORT", saved.c_str(), 1);
      else ::unsetenv("MASTER_PORT");
    }
  } restore;
  for (const char* bad : {"0", "65536", "70000", "-1", "4294967296", "99999999999999999999", "12ab", " "}) {
    ::setenv("MASTER_PORT", bad, 1);
    const std::string e = error_of([] { DistEnv::from_environment(); });
    EXPECT_NE(e.find("MASTER_PORT"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("1..65535"), std::string::npos) << bad << ": " << e;
  }
  ::setenv("MASTER_PORT", "65535", 1);
  EXPECT_EQ(DistEnv::from_environment().master_port, 65535);
  ::setenv("MASTER_PORT", "1", 1);
  EXPECT_EQ(DistEnv::from_environment().master_port, 1);
  ::unsetenv("MASTER_PORT");
  EXPECT_EQ(DistEnv::from_environment().master_port, 29500);
}

}  // namespace
}  // namespace mcd::train
