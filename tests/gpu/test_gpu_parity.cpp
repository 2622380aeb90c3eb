// GPU checks (ctest label `gpu`; every case skips itself without a CUDA device): the HF fixture
// on the CUDA device (logits, loss, every gradient, greedy tokens) and CUDA vs CPU agreement of
// a random model, forward and backward, float32 and float64.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors_torch.h"
#include "model/checkpoint.h"
#include "model/generation.h"
#include "test_support.h"

namespace mcd {
namespace {

TEST(GpuParity, FixtureLogitsLossAndGradientsOnCuda) {
  MCD_SKIP_IF_NO_CUDA();
  MCD_SKIP_IF_NO_FIXTURE();
  auto ref = io::load_safetensors(test::fixture_dir() + "/reference.safetensors");
  LoadOptions lo;
  lo.device = torch::kCUDA;
  MambaLM model = load_pretrained(test::fixture_dir(), lo);
  const at::Tensor ids = ref.at("input_ids").to(torch::kCUDA);
  const at::Tensor logits = model->forward(ids);
  EXPECT_TRUE(logits.is_cuda());
  EXPECT_LT(test::rel_err(logits, ref.at("logits")), 1e-4);
  const at::Tensor loss = shifted_cross_entropy(logits, ids);
  EXPECT_LT(test::rel_err(loss.reshape({1}), ref.at("loss")), 1e-5);
  loss.backward();
  for (const auto& p : model->named_parameters())
    EXPECT_LT(test::rel_err(p.value().grad(), ref.at("grad." + p.key())), 1e-3) << p.key();
}

TEST(GpuParity, FixtureGreedyTokensOnCuda) {
  MCD_SKIP_IF_NO_CUDA();
  MCD_SKIP_IF_NO_FIXTURE();
  std::ifstream f(test::fixture_dir() + "/reference.json");
  const auto j = nlohmann::json::parse(f);
  LoadOptions lo;
  lo.device = torch::kCUDA;
  MambaLM model = load_pretrained(test::fixture_dir(), lo);
  GenerationOptions o;
  o.greedy = true;
  o.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
  EXPECT_EQ(generate(*model, j.at("prompt_ids").get<std::vector<int64_t>>(), o, torch::kCUDA),
            j.at("greedy_ids").get<std::vector<int64_t>>());
}

TEST(GpuParity, RandomModelCudaMatchesCpuInFloat64) {
  MCD_SKIP_IF_NO_CUDA();
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 101;
  c.n_layer = 3;
  c.d_inner_per_layer = {128, 37, 5};
  MambaLM cpu_model(c), gpu_model(c);
  init_reference(*cpu_model, 7);
  init_reference(*gpu_model, 7);
  cpu_model->to(at::kDouble);
  gpu_model->to(torch::kCUDA, at::kDouble);
  const at::Tensor ids = torch::randint(0, 101, {3, 129}, torch::kLong);
  const at::Tensor l_cpu = cpu_model->loss(ids), l_gpu = gpu_model->loss(ids.to(torch::kCUDA));
  EXPECT_LT(test::rel_err(l_gpu.reshape({1}), l_cpu.reshape({1})), 1e-12);
  l_cpu.backward();
  l_gpu.backward();
  auto gp = gpu_model->named_parameters();
  for (const auto& p : cpu_model->named_parameters())
    EXPECT_LT(test::rel_err(gp[p.key()].grad(), p.value().grad()), 1e-10) << p.key();
}

}  // namespace
}  // namespace mcd
