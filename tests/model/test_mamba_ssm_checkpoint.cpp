// Model folders as mamba-ssm writes them (config.json in MambaConfig's keys, pytorch_model.bin from
// torch.save(model.state_dict()), its embedding named backbone.embedding.weight and the tied head stored
// too) and Hugging Face folders that hold only pytorch_model.bin: each loads as the same model its
// safetensors twin is. The torch.save bytes come from tests/torch_save_writer.h.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/pytorch_checkpoint_torch.h"
#include "io/safetensors_torch.h"
#include "model/checkpoint.h"
#include "test_support.h"
#include "torch_save_writer.h"
#include "util/fs.h"

namespace mcd {
namespace {

// mamba-ssm's config.json for the HF fixture's model (hidden 64, 2 layers, vocab 512, state 8, rank 4).
nlohmann::json fixture_as_mamba_ssm_config() {
  return {{"d_model", 64},
          {"d_intermediate", 0},
          {"n_layer", 2},
          {"vocab_size", 509},  // padded to 512 by pad_vocab_size_multiple, as MambaLMHeadModel does
          {"ssm_cfg", {{"layer", "Mamba1"}, {"d_state", 8}, {"d_conv", 4}, {"expand", 2}, {"dt_rank", 4}}},
          {"attn_layer_idx", nlohmann::json::array()},
          {"attn_cfg", nlohmann::json::object()},
          {"rms_norm", true},
          {"residual_in_fp32", true},
          {"fused_add_norm", true},
          {"pad_vocab_size_multiple", 8},
          {"tie_embeddings", true}};
}

// The state dict mamba-ssm's MambaLMHeadModel would have: HF's tensors, the embedding renamed, and
// lm_head.weight the embedding itself (one storage), in module order.
std::vector<std::pair<std::string, at::Tensor>> as_mamba_ssm_state_dict(const std::map<std::string, at::Tensor>& hf) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  const at::Tensor embedding = hf.at("backbone.embeddings.weight");
  out.emplace_back("backbone.embedding.weight", embedding);
  for (const auto& [name, t] : hf)
    if (name != "backbone.embeddings.weight") out.emplace_back(name, t);
  out.emplace_back("lm_head.weight", embedding);
  return out;
}

void copy_bytes(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream(to, std::ios::binary) << in.rdbuf();
}

// The tiny preset with a vocabulary that is a multiple of 8 (so mamba-ssm's padding keeps it), randomly initialised.
MambaLM random_tiny_model(uint64_t seed) {
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 96;
  MambaLM model(c);
  init_reference(*model, seed);
  return model;
}

// Every parameter of `loaded` is `model`'s rounded to bfloat16.
void expect_bf16_rounding_of(MambaLMImpl& loaded, MambaLMImpl& model) {
  const auto reference = model.named_parameters();
  for (const auto& item : loaded.named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), reference[item.key()].detach().to(torch::kBFloat16).to(torch::kFloat)))
        << item.key();
}

void expect_same_parameters(MambaLMImpl& a, MambaLMImpl& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
}

TEST(MambaSsmCheckpoint, TheFixtureInMambaSsmsFormatIsTheSameModel) {
  MCD_SKIP_IF_NO_FIXTURE();
  test::TempDir dir;
  std::ofstream(dir.file("config.json")) << fixture_as_mamba_ssm_config().dump(4);
  test::torch_save_state_dict(dir.file("pytorch_model.bin"),
                              as_mamba_ssm_state_dict(io::load_safetensors(test::fixture_dir() + "/model.safetensors")));
  const ModelConfig c = ModelConfig::from_json_file(dir.file("config.json"));
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.real_vocab_size(), 509);
  EXPECT_EQ(c.resolved_dt_rank(), 4);
  MambaLM ours = load_pretrained(dir.path), reference = load_pretrained(test::fixture_dir());
  expect_same_parameters(*ours, *reference);
  // The command line reads it too: greedy ids as the fixture's reference.json records them.
  std::ifstream f(test::fixture_dir() + "/reference.json");
  const auto j = nlohmann::json::parse(f);
  std::string prompt, expected;
  for (auto id : j["prompt_ids"]) prompt += (prompt.empty() ? "" : ",") + std::to_string(id.get<int>());
  for (auto id : j["greedy_ids"]) expected += (expected.empty() ? "" : ",") + std::to_string(id.get<int>());
  const test::CliRun r = test::run_cli("generate --model " + dir.path + " --prompt-ids " + prompt +
                                       " --max-new-tokens " + std::to_string(j["max_new_tokens"].get<int>()) +
                                       " --greedy --device cpu");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.last_line(), expected);
}

// No fixture needed: a random model saved by us, rewritten as mamba-ssm's bf16 checkpoint, loads as the
// bf16-rounded model; a head that differs from the embedding is refused; HF's own names in
// pytorch_model.bin load too; safetensors wins where a folder has both.
TEST(MambaSsmCheckpoint, RandomModelInBf16AndTheRefusals) {
  MambaLM model = random_tiny_model(5);
  const ModelConfig& c = model->config();
  test::TempDir dir;
  save_pretrained(*model, dir.file("ours"));
  std::map<std::string, at::Tensor> hf;
  for (const auto& item : model->named_parameters()) hf[item.key()] = item.value().detach().to(torch::kBFloat16);
  nlohmann::json config = {{"d_model", c.d_model}, {"n_layer", c.n_layer}, {"vocab_size", 96},
                           {"ssm_cfg", {{"d_state", c.d_state}, {"d_conv", c.d_conv}, {"expand", c.expand},
                                        {"dt_rank", c.dt_rank > 0 ? nlohmann::json(c.dt_rank) : nlohmann::json("auto")}}},
                           {"rms_norm", true}, {"residual_in_fp32", true}, {"fused_add_norm", true},
                           {"pad_vocab_size_multiple", 8}};
  fs::make_dirs(dir.file("ssm"));
  std::ofstream(dir.file("ssm/config.json")) << config.dump();
  test::torch_save_state_dict(dir.file("ssm/pytorch_model.bin"), as_mamba_ssm_state_dict(hf));
  MambaLM loaded = load_pretrained(dir.file("ssm"));
  expect_bf16_rounding_of(*loaded, *model);

  // The stored head differs from the embedding: refused, naming the file.
  auto dict = as_mamba_ssm_state_dict(hf);
  dict.back().second = dict.back().second.clone() + 1;
  test::torch_save_state_dict(dir.file("ssm/pytorch_model.bin"), dict);
  test::expect_error([&] { load_pretrained(dir.file("ssm")); },
                     dir.file("ssm/pytorch_model.bin") + ": 'lm_head.weight' differs from the embedding");
  // A missing tensor is named.
  dict = as_mamba_ssm_state_dict(hf);
  dict.erase(dict.begin() + 1);
  const std::string dropped = as_mamba_ssm_state_dict(hf)[1].first;
  test::torch_save_state_dict(dir.file("ssm/pytorch_model.bin"), dict);
  test::expect_error([&] { load_pretrained(dir.file("ssm")); }, "tensor '" + dropped + "' is missing");

  // Hugging Face's config and names, in pytorch_model.bin only (older HF checkpoints).
  fs::make_dirs(dir.file("hf_bin"));
  copy_bytes(dir.file("ours/config.json"), dir.file("hf_bin/config.json"));
  std::vector<std::pair<std::string, at::Tensor>> fp32;
  for (const auto& item : model->named_parameters()) fp32.emplace_back(item.key(), item.value().detach());
  test::torch_save_state_dict(dir.file("hf_bin/pytorch_model.bin"), fp32);
  MambaLM from_bin = load_pretrained(dir.file("hf_bin"));
  expect_same_parameters(*from_bin, *model);
  // `convert` rewrites it as our safetensors folder, in bf16 on request.
  const test::CliRun converted = test::run_cli("convert --model " + dir.file("hf_bin") + " --out " +
                                               dir.file("converted") + " --dtype bfloat16");
  ASSERT_EQ(converted.status, 0) << converted.err;
  MambaLM from_converted = load_pretrained(dir.file("converted"));
  expect_bf16_rounding_of(*from_converted, *model);
  // ... but not a mamba-ssm folder without its tokenizer (the result would silently mean GPT-2), nor onto itself.
  const test::CliRun no_tokenizer = test::run_cli("convert --model " + dir.file("ssm") + " --out " + dir.file("c2"));
  EXPECT_NE(no_tokenizer.status, 0);
  EXPECT_NE(no_tokenizer.err.find("a mamba-ssm checkpoint, which ships no tokenizer"), std::string::npos) << no_tokenizer.err;
  const test::CliRun onto_itself = test::run_cli("convert --model " + dir.file("hf_bin") + " --out " + dir.file("hf_bin"));
  EXPECT_NE(onto_itself.status, 0);
  EXPECT_NE(onto_itself.err.find("--out must be another folder"), std::string::npos) << onto_itself.err;
  // Both formats in one folder: the safetensors file is read (here the bin holds another model).
  copy_bytes(dir.file("ours/model.safetensors"), dir.file("hf_bin/model.safetensors"));
  for (auto& [name, t] : fp32) t = t + 1;
  test::torch_save_state_dict(dir.file("hf_bin/pytorch_model.bin"), fp32);
  MambaLM preferred = load_pretrained(dir.file("hf_bin"));
  expect_same_parameters(*preferred, *model);
  // Neither format: the error lists what was looked for.
  fs::make_dirs(dir.file("empty"));
  copy_bytes(dir.file("ours/config.json"), dir.file("empty/config.json"));
  test::expect_error([&] { load_pretrained(dir.file("empty")); }, "holds no model tensors (looked for model.safetensors");
}

// save_mamba_ssm (convert --format mamba-ssm) writes what the loader reads back as the same model: mamba-ssm's
// keys and names, the tied head stored sharing the embedding's storage; what mamba-ssm cannot express is refused.
TEST(MambaSsmCheckpoint, WrittenInMambaSsmsFormatReadsBackAndRefusesWhatItCannotSay) {
  MambaLM model = random_tiny_model(8);
  const ModelConfig& c = model->config();
  test::TempDir dir;
  save_mamba_ssm(*model, dir.file("ssm"));
  const nlohmann::json config = nlohmann::json::parse(fs::read_file(dir.file("ssm/config.json")));
  EXPECT_TRUE(ModelConfig::is_mamba_ssm_json(config));
  EXPECT_EQ(config["ssm_cfg"]["layer"], "Mamba1");
  MambaLM back = load_pretrained(dir.file("ssm"));
  expect_same_parameters(*back, *model);
  const io::PytorchCheckpoint ck = io::PytorchCheckpoint::open_file(dir.file("ssm/pytorch_model.bin"));
  ASSERT_NE(ck.find("backbone.embedding.weight"), nullptr);
  ASSERT_NE(ck.find("lm_head.weight"), nullptr);
  EXPECT_EQ(ck.find("lm_head.weight")->tensor->storage_key, ck.find("backbone.embedding.weight")->tensor->storage_key);
  EXPECT_EQ(ck.find("backbone.embeddings.weight"), nullptr);
  // bf16: the stored tensors are bf16, and read back as the rounded model.
  save_mamba_ssm(*model, dir.file("bf16"), torch::kBFloat16);
  EXPECT_EQ(io::PytorchCheckpoint::open_file(dir.file("bf16/pytorch_model.bin")).entries()[0].tensor->dtype, io::DType::BF16);
  MambaLM rounded = load_pretrained(dir.file("bf16"));
  expect_bf16_rounding_of(*rounded, *model);
  // Refused: a folder whose model.safetensors would be read instead; a pruned width; SDM gates.
  save_pretrained(*model, dir.file("ours"));
  test::expect_error([&] { save_mamba_ssm(*model, dir.file("ours")); }, "holds model.safetensors, which loaders would read");
  MambaLM pruned(c.with_uniform_sparsity(0.5, 16));
  test::expect_error([&] { save_mamba_ssm(*pruned, dir.file("pruned")); }, "is not expand·d_model");
  ModelConfig gated = c;
  gated.gate_type = "hard_concrete";
  MambaLM gated_model(gated);
  test::expect_error([&] { save_mamba_ssm(*gated_model, dir.file("gated")); }, "SDM gates has no mamba-ssm form");
  EXPECT_FALSE(fs::exists(dir.file("pruned/pytorch_model.bin")) || fs::exists(dir.file("gated/pytorch_model.bin")));
}

}  // namespace
}  // namespace mcd
