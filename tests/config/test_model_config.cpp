// Model configuration: every preset file parses, our YAML is strict (unknown keys and wrong
// types are errors naming the key and file), and HF config.json files are read leniently.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

using test::error_of;

TEST(ModelConfig, EveryPresetFileParses) {
  const auto names = preset_names();
  EXPECT_GE(names.size(), 4u);
  for (const auto& n : names) EXPECT_NO_THROW(model_preset(n)) << n;
  const ModelConfig c = model_preset("mamba-130m");
  EXPECT_EQ(c.d_model, 768);
  EXPECT_EQ(c.resolved_dt_rank(), 48);
  EXPECT_EQ(c.inner_width(5), 1536);
}

TEST(ModelConfig, UnknownKeysAndWrongTypesNameKeyAndFile) {
  test::TempDir dir;
  const std::string path = dir.file("m.yaml");
  std::ofstream(path) << "d_model: 64\nn_layers: 2\n";
  std::string e = error_of([&] { ModelConfig::from_yaml_file(path); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'n_layers'"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  std::ofstream(path) << "d_model: sixty-four\n";
  e = error_of([&] { ModelConfig::from_yaml_file(path); });
  EXPECT_NE(e.find("key 'd_model' must be an integer"), std::string::npos) << e;
  std::ofstream(path) << "use_bias: maybe\n";
  e = error_of([&] { ModelConfig::from_yaml_file(path); });
  EXPECT_NE(e.find("key 'use_bias' must be true or false"), std::string::npos) << e;
  std::ofstream(path) << "d_inner_per_layer: [4, x]\nn_layer: 2\n";
  e = error_of([&] { ModelConfig::from_yaml_file(path); });
  EXPECT_NE(e.find("'d_inner_per_layer' must be a list of integers"), std::string::npos) << e;
  std::ofstream(path) << "d_inner_per_layer: [4, 5, 6]\nn_layer: 2\n";
  e = error_of([&] { ModelConfig::from_yaml_file(path); });
  EXPECT_NE(e.find("3 entries for 2 layers"), std::string::npos) << e;
  std::ofstream(path) << "d_model: [1\n";
  e = error_of([&] { ModelConfig::from_yaml_file(path); });
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
  e = error_of([&] { ModelConfig::from_yaml_file(dir.file("absent.yaml")); });
  EXPECT_NE(e.find("cannot open"), std::string::npos) << e;
  e = error_of([&] { model_preset("mamba-9b"); });
  EXPECT_NE(e.find("available: "), std::string::npos) << e;
}

// init --widths-from: a pruned model's per-layer widths as fractions of its E at another shape.
// Source: 4 layers of E 768 keeping 1, 1/2, 1/4 and 0.3 of it; target: 8 layers of E 1536, so
// target layers 2k and 2k+1 take source layer k; 0.3 · 1536 = 460.8 rounds to 464 (29 · 16).
TEST(ModelConfig, WidthFractionsCarryOverToAnotherShape) {
  ModelConfig source = model_preset("mamba-tiny");
  source.d_model = 384;
  source.n_layer = 4;
  source.d_inner_per_layer = {768, 384, 192, 230};
  ModelConfig target = model_preset("mamba-tiny");
  target.d_model = 768;
  target.n_layer = 8;
  const ModelConfig out = target.with_width_fractions_of(source, 16);
  EXPECT_EQ(out.d_inner_per_layer, (std::vector<int64_t>{1536, 1536, 768, 768, 384, 384, 464, 464}));
  EXPECT_EQ(out.d_model, 768);
  EXPECT_NO_THROW(out.validate("test"));
  // A dense source leaves the target dense (no per-layer list); tiny fractions stay one block wide.
  source.d_inner_per_layer.clear();
  EXPECT_TRUE(target.with_width_fractions_of(source, 16).d_inner_per_layer.empty());
  source.d_inner_per_layer = {768, 1, 768, 768};
  EXPECT_EQ(target.with_width_fractions_of(source, 16).d_inner_per_layer[2], 16);
  EXPECT_THROW(target.with_width_fractions_of(source, 0), Error);
}

// init --sparsity: every layer keeps (1 − s)·E rounded to the block; mamba-130m's E = 1536:
// 25 % → 1152, 50 % → 768, 75 % → 384 (all multiples of 16); 0.3 → 1075.2 → 1072 (67 · 16).
TEST(ModelConfig, UniformSparsityKeepsTheRoundedFractionOfEveryLayer) {
  const ModelConfig dense = model_preset("mamba-130m");
  for (auto [s, w] : std::vector<std::pair<double, int64_t>>{{0.25, 1152}, {0.5, 768}, {0.75, 384}, {0.3, 1072}}) {
    const ModelConfig out = dense.with_uniform_sparsity(s, 16);
    ASSERT_EQ(int64_t(out.d_inner_per_layer.size()), dense.n_layer) << s;
    for (int64_t l = 0; l < dense.n_layer; ++l) EXPECT_EQ(out.inner_width(l), w) << s;
    EXPECT_NO_THROW(out.validate("test"));
  }
  EXPECT_TRUE(dense.with_uniform_sparsity(0.0, 16).d_inner_per_layer.empty());
  EXPECT_EQ(dense.with_uniform_sparsity(0.999, 16).inner_width(0), 16);  // never below one block
  EXPECT_THROW(dense.with_uniform_sparsity(1.0, 16), Error);
  EXPECT_THROW(dense.with_uniform_sparsity(-0.1, 16), Error);
}

TEST(ModelConfig, VocabularyPadding) {
  test::TempDir dir;
  std::ofstream(dir.file("m.yaml")) << "vocab_size: 50257\npad_vocab_multiple: 8\n";
  const ModelConfig c = ModelConfig::from_yaml_file(dir.file("m.yaml"));
  EXPECT_EQ(c.vocab_size, 50264);
  EXPECT_EQ(c.real_vocab_size(), 50257);
  const ModelConfig back = ModelConfig::from_hf_json(c.to_hf_json(), "roundtrip");
  EXPECT_EQ(back.vocab_size, 50264);
  EXPECT_EQ(back.real_vocab_size(), 50257);
}

TEST(ModelConfig, ReadsTheHuggingFaceFixtureConfig) {
  MCD_SKIP_IF_NO_FIXTURE();
  const ModelConfig c = ModelConfig::from_json_file(test::fixture_dir() + "/config.json");
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.d_state, 8);
  EXPECT_EQ(c.inner_width(1), 128);
  EXPECT_EQ(c.resolved_dt_rank(), 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_TRUE(c.tie_embeddings);
}

TEST(ModelConfig, HfJsonTypeErrors) {
  nlohmann::json j = {{"hidden_size", 64}, {"num_hidden_layers", 2}, {"vocab_size", 10}};
  EXPECT_NO_THROW(ModelConfig::from_hf_json(j, "cfg"));
  j["state_size"] = 1.5;
  EXPECT_NE(error_of([&] { ModelConfig::from_hf_json(j, "cfg"); }).find("'state_size' has the wrong type"),
            std::string::npos);
  j.erase("state_size");
  j.erase("vocab_size");
  EXPECT_NE(error_of([&] { ModelConfig::from_hf_json(j, "cfg"); }).find("'vocab_size' is missing"),
            std::string::npos);
  j["vocab_size"] = 10;
  j["model_type"] = "mamba2";
  EXPECT_NE(error_of([&] { ModelConfig::from_hf_json(j, "cfg"); }).find("only 'mamba'"), std::string::npos);
  j["model_type"] = "mamba";
  j["hidden_act"] = "swish";  // HF's other name for SiLU
  EXPECT_NO_THROW(ModelConfig::from_hf_json(j, "cfg"));
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of([&] { ModelConfig::from_hf_json(j, "cfg"); }).find("hidden_act is 'gelu'"), std::string::npos);
}

// state-spaces/mamba-130m's config.json as mamba-ssm wrote it (MambaConfig), then mamba-ssm 2's longer
// form: both are the mamba-130m preset (the vocabulary padded to 50,280 as MambaLMHeadModel pads it).
TEST(ModelConfig, ReadsMambaSsmsOwnConfigAndRefusesWhatIsNotMamba1) {
  nlohmann::json j = nlohmann::json::parse(R"({"d_model": 768, "n_layer": 24, "vocab_size": 50277, "ssm_cfg": {},
      "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 8})");
  ASSERT_TRUE(ModelConfig::is_mamba_ssm_json(j));
  const ModelConfig preset = model_preset("mamba-130m");
  for (int form = 0; form < 2; ++form) {
    if (form == 1) {
      j["d_intermediate"] = 0;
      j["attn_layer_idx"] = nlohmann::json::array();
      j["attn_cfg"] = nlohmann::json::object();
      j["tie_embeddings"] = true;
      j["ssm_cfg"] = {{"layer", "Mamba1"}, {"d_state", 16}, {"dt_rank", "auto"}, {"use_fast_path", true}};
    }
    const ModelConfig c = ModelConfig::from_json(j, "config.json");
    EXPECT_EQ(c.d_model, 768);
    EXPECT_EQ(c.n_layer, 24);
    EXPECT_EQ(c.vocab_size, 50280);
    EXPECT_EQ(c.real_vocab_size(), 50277);  // the three padding rows are never produced nor sampled
    EXPECT_EQ(c.d_state, 16);
    // Written back as mamba-ssm's: the tokenizer's size and the multiple that pads it to the rows.
    const nlohmann::json back = c.to_mamba_ssm_json("out");
    EXPECT_EQ(back["vocab_size"], 50277);
    EXPECT_EQ(back["pad_vocab_size_multiple"], 8);
    EXPECT_EQ(ModelConfig::from_json(back, "out").real_vocab_size(), 50277);
    EXPECT_EQ(c.inner_width(0), 1536);
    EXPECT_EQ(c.resolved_dt_rank(), 48);
    EXPECT_TRUE(c.tie_embeddings && c.residual_in_fp32 && c.use_conv_bias && !c.use_bias);
    EXPECT_EQ(c.norm_eps, 1e-5);
    EXPECT_EQ(c.num_parameters(), preset.num_parameters());
  }
  const auto refused = [&](nlohmann::json bad, const std::string& fragment) {
    const std::string e = error_of([&] { ModelConfig::from_json(bad, "config.json"); });
    EXPECT_NE(e.find(fragment), std::string::npos) << e;
    EXPECT_NE(e.find("config.json"), std::string::npos) << e;
  };
  nlohmann::json bad = j;
  bad["ssm_cfg"]["layer"] = "Mamba2";
  refused(bad, "only Mamba1 is supported");
  bad = j;
  bad["ssm_cfg"]["headdim"] = 64;
  refused(bad, "unknown key 'headdim'");
  bad = j;
  bad["attn_layer_idx"] = {3};
  refused(bad, "a hybrid model");
  bad = j;
  bad["d_intermediate"] = 1024;
  refused(bad, "MLP blocks");
  bad = j;
  bad["rms_norm"] = false;
  refused(bad, "LayerNorm");
  bad = j;
  bad["bidirectional"] = true;
  refused(bad, "unknown mamba-ssm config key 'bidirectional'");
  // Rows that no multiple of 8..128 reaches from the tokenizer's size are written as they are (multiple 1).
  ModelConfig gpt2 = model_preset("mamba-130m");
  gpt2.vocab_size = 50280;
  gpt2.tokenizer_vocab_size = 50257;
  EXPECT_EQ(gpt2.to_mamba_ssm_json("out")["vocab_size"], 50280);
  EXPECT_EQ(gpt2.to_mamba_ssm_json("out")["pad_vocab_size_multiple"], 1);
  gpt2.vocab_size = 50304;
  EXPECT_EQ(gpt2.to_mamba_ssm_json("out")["pad_vocab_size_multiple"], 64);
  // Hugging Face's keys are not mamba-ssm's.
  EXPECT_FALSE(ModelConfig::is_mamba_ssm_json({{"hidden_size", 64}, {"d_model", 64}, {"n_layer", 2}}));
}

}  // namespace
}  // namespace mcd
