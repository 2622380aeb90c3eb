// The model against HuggingFace transformers (../shared/fixtures/hf_mamba_tiny): logits, loss,
// hidden states, every parameter gradient and greedy tokens, on both CPU op backends.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "io/safetensors.h"
#include "io/safetensors_torch.h"
#include "model/checkpoint.h"
#include "model/generation.h"
#include "ops/backend.h"
#include "ops/options.h"
#include "test_support.h"

namespace mcd {
namespace {

std::map<std::string, at::Tensor> reference() {
  return io::load_safetensors(test::fixture_dir() + "/reference.safetensors");
}

class HfParity : public ::testing::TestWithParam<ops::Backend> {
 protected:
  void SetUp() override {
    ops::OpsOptions o = ops::ops_options();
    o.backend = GetParam();
    scope_.emplace(o);
  }
  void TearDown() override { scope_.reset(); }

 private:
  std::optional<ops::ScopedOpsOptions> scope_;
};

TEST_P(HfParity, LogitsLossAndHiddenStates) {
  MCD_SKIP_IF_NO_FIXTURE();
  auto ref = reference();
  MambaLM model = load_pretrained(test::fixture_dir());
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> residuals;
  const at::Tensor ids = ref.at("input_ids");
  const at::Tensor hidden = model->backbone->forward(ids, nullptr, &residuals);
  const at::Tensor logits = model->logits_from_hidden(hidden);
  EXPECT_LT(test::rel_err(logits, ref.at("logits")), 1e-4);
  EXPECT_LT(test::rel_err(shifted_cross_entropy(logits, ids).reshape({1}), ref.at("loss")), 1e-5);
  EXPECT_LT(test::rel_err(residuals.at(0), ref.at("hidden_states.0")), 1e-4);
  EXPECT_LT(test::rel_err(residuals.at(1), ref.at("hidden_states.1")), 1e-4);
  EXPECT_LT(test::rel_err(hidden, ref.at("hidden_states.2")), 1e-4);
}

TEST_P(HfParity, EveryParameterGradient) {
  MCD_SKIP_IF_NO_FIXTURE();
  auto ref = reference();
  MambaLM model = load_pretrained(test::fixture_dir());
  model->loss(ref.at("input_ids")).backward();
  int checked = 0;
  for (const auto& p : model->named_parameters()) {
    const auto it = ref.find("grad." + p.key());
    ASSERT_NE(it, ref.end()) << "fixture has no gradient for " << p.key();
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_LT(test::rel_err(p.value().grad(), it->second), 1e-3) << p.key();
    ++checked;
  }
  EXPECT_EQ(checked, 22);
}

TEST_P(HfParity, GreedyTokensAreIdentical) {
  MCD_SKIP_IF_NO_FIXTURE();
  std::ifstream f(test::fixture_dir() + "/reference.json");
  const auto j = nlohmann::json::parse(f);
  MambaLM model = load_pretrained(test::fixture_dir());
  GenerationOptions o;
  o.greedy = true;
  o.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
  const auto ids = generate(*model, j.at("prompt_ids").get<std::vector<int64_t>>(), o, torch::kCPU);
  EXPECT_EQ(ids, j.at("greedy_ids").get<std::vector<int64_t>>());
}

INSTANTIATE_TEST_SUITE_P(CpuBackends, HfParity,
                         ::testing::Values(ops::Backend::kReference, ops::Backend::kComposite),
                         [](const auto& info) { return std::string(ops::backend_name(info.param)); });

}  // namespace
}  // namespace mcd
