// Model behaviour beyond the fixture: step mode vs full forward, float64 gradients of the whole
// model against the composite, preset parameter counts, the reference init, per-layer widths,
// checkpoint round trips and their errors, generation options and the classification head.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/safetensors_checkpoint.h"
#include "io/safetensors_torch.h"
#include "model/checkpoint.h"
#include "model/classifier.h"
#include "model/generation.h"
#include "ops/backend.h"
#include "ops/options.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

ModelConfig tiny_config() {
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 97;  // not a multiple of anything
  return c;
}

MambaLM tiny_model(uint64_t seed = 0, ModelConfig c = tiny_config()) {
  MambaLM m(c);
  init_reference(*m, seed);
  return m;
}

TEST(Model, PresetParameterCounts) {
  EXPECT_EQ(model_preset("mamba-130m").num_parameters(), 129135360);
  EXPECT_EQ(model_preset("mamba-370m").num_parameters(), 371516416);
  const ModelConfig gpt2 = model_preset("mamba-130m-gpt2");
  EXPECT_EQ(gpt2.vocab_size, 50264);
  EXPECT_EQ(gpt2.real_vocab_size(), 50257);
  // The analytic count equals the modules' own count.
  MambaLM m(model_preset("mamba-130m"));
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  EXPECT_EQ(n, 129135360);
}

TEST(Model, StepModeMatchesFullForward) {
  MambaLM m = tiny_model(1);
  torch::NoGradGuard no_grad;
  const at::Tensor ids = torch::randint(0, 97, {3, 11}, torch::kLong);
  const at::Tensor full = m->forward(ids);  // (B, L, V)
  // Prefill 4 tokens, then step the rest.
  InferenceCache cache = m->new_cache(3);
  std::vector<at::Tensor> got{m->prefill(ids.narrow(1, 0, 4), cache)};
  for (int64_t t = 4; t < 11; ++t) got.push_back(m->step(ids.select(1, t), cache));
  EXPECT_LT(test::rel_err(torch::stack(got, 1), full.narrow(1, 3, 8)), 1e-5);
  // Step from an empty cache, all the way.
  InferenceCache fresh = m->new_cache(3);
  std::vector<at::Tensor> all;
  for (int64_t t = 0; t < 11; ++t) all.push_back(m->step(ids.select(1, t), fresh));
  EXPECT_LT(test::rel_err(torch::stack(all, 1), full), 1e-5);
}

// Passes without gradients keep the scan's fp32 parameters (A = −exp(A_log), D, Δ's bias) from one
// call to the next; every change of those parameters — in place (copy_, mul_: the version counter)
// or a new storage (set_data, to()) — must be seen. Reference: the same forward with gradients enabled,
// which always derives them afresh. Threads pinned: both passes then sum in the same order.
TEST(Model, ScanParametersKeptWithoutGradientsFollowEveryChange) {
  at::set_num_threads(1);
  MambaLM m = tiny_model(3);
  const at::Tensor ids = torch::randint(0, 97, {2, 9}, torch::kLong);
  auto without_grad = [&] {
    torch::NoGradGuard no_grad;
    return m->forward(ids);
  };
  auto with_grad = [&] { return m->forward(ids).detach(); };
  const at::Tensor first = without_grad();
  EXPECT_TRUE(torch::equal(without_grad(), first));  // kept: the same values again
  EXPECT_TRUE(torch::equal(with_grad(), first));
  auto& mixer = m->backbone->blocks[0]->mixer;
  {
    torch::NoGradGuard no_grad;
    mixer->A_log.mul_(1.7);  // in place
  }
  const at::Tensor after_a = without_grad();
  EXPECT_FALSE(torch::equal(after_a, first));
  EXPECT_TRUE(torch::equal(after_a, with_grad()));
  {
    torch::NoGradGuard no_grad;
    mixer->D.copy_(torch::randn_like(mixer->D));
    mixer->dt_proj->bias.add_(0.3);
  }
  EXPECT_TRUE(torch::equal(without_grad(), with_grad()));
  {
    torch::NoGradGuard no_grad;
    mixer->A_log.set_data(mixer->A_log.detach() * 1.3);  // a new storage, the version counter unchanged
  }
  EXPECT_TRUE(torch::equal(without_grad(), with_grad()));
  m->to(at::kDouble);  // new storages again (Module::to), and back
  m->to(at::kFloat);
  EXPECT_TRUE(torch::equal(without_grad(), with_grad()));
}

// The current ops options with another backend (for ScopedOpsOptions).
ops::OpsOptions with_backend(ops::Backend b) {
  ops::OpsOptions o = ops::ops_options();
  o.backend = b;
  return o;
}

TEST(Model, Float64GradientsMatchCompositeEndToEnd) {
  MambaLM a = tiny_model(2), b = tiny_model(2);
  a->to(at::kDouble);
  b->to(at::kDouble);
  const at::Tensor ids = torch::randint(0, 97, {2, 9}, torch::kLong);
  {
    const ops::ScopedOpsOptions scope(with_backend(ops::Backend::kReference));
    a->loss(ids).backward();
  }
  {
    const ops::ScopedOpsOptions scope(with_backend(ops::Backend::kComposite));
    b->loss(ids).backward();
  }
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_LT(test::rel_err(p.value().grad(), pb[p.key()].grad()), 1e-10) << p.key();
}

TEST(Model, ReferenceInitialisation) {
  ModelConfig c = model_preset("mamba-130m");
  c.n_layer = 2;
  MambaLM m = tiny_model(3, c);
  auto& mixer = *m->backbone->blocks[0]->mixer;
  EXPECT_NEAR(m->backbone->embeddings->weight.std().item<double>(), 0.02, 0.001);
  EXPECT_TRUE(torch::allclose(mixer.A_log.select(0, 5), torch::log(torch::arange(1, 17, torch::kFloat))));
  EXPECT_TRUE(torch::equal(mixer.D, torch::ones({1536})));
  const at::Tensor dt = torch::nn::functional::softplus(mixer.dt_proj->bias);
  EXPECT_GE(dt.min().item<double>(), 1e-3 * 0.999);
  EXPECT_LE(dt.max().item<double>(), 0.1 * 1.001);
  const double bound = 1.0 / std::sqrt(48.0);
  EXPECT_LE(mixer.dt_proj->weight.abs().max().item<double>(), bound);
  EXPECT_GT(mixer.dt_proj->weight.abs().max().item<double>(), 0.9 * bound);
  const double out_bound = 1.0 / std::sqrt(1536.0) / std::sqrt(2.0);
  EXPECT_LE(mixer.out_proj->weight.abs().max().item<double>(), out_bound);
  // Deterministic given the seed, different for another seed.
  MambaLM again = tiny_model(3, c), other = tiny_model(4, c);
  EXPECT_TRUE(torch::equal(again->backbone->blocks[1]->mixer->in_proj->weight,
                           m->backbone->blocks[1]->mixer->in_proj->weight));
  EXPECT_FALSE(torch::equal(other->backbone->blocks[1]->mixer->in_proj->weight,
                            m->backbone->blocks[1]->mixer->in_proj->weight));
}

TEST(Model, PerLayerInnerWidthsRunAndRoundTrip) {
  ModelConfig c = tiny_config();
  c.n_layer = 3;
  c.d_inner_per_layer = {128, 7, 1};
  MambaLM m = tiny_model(5, c);
  EXPECT_EQ(m->backbone->blocks[1]->mixer->in_proj->weight.size(0), 14);
  const at::Tensor ids = torch::randint(0, 97, {2, 6}, torch::kLong);
  m->loss(ids).backward();
  test::TempDir dir;
  save_pretrained(*m, dir.path);
  MambaLM back = load_pretrained(dir.path);
  EXPECT_EQ(back->config().d_inner_per_layer, c.d_inner_per_layer);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(back->forward(ids), m->forward(ids)));
}

TEST(Checkpoint, SaveLoadRoundTripIsExact) {
  MambaLM m = tiny_model(6);
  test::TempDir dir;
  save_pretrained(*m, dir.path);
  MambaLM back = load_pretrained(dir.path);
  auto pb = back->named_parameters();
  for (const auto& p : m->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  EXPECT_EQ(back->config().to_hf_json(), m->config().to_hf_json());
  EXPECT_FALSE(io::SafetensorsFile::open(dir.file("model.safetensors")).find("lm_head.weight"));
}

TEST(Checkpoint, UntiedHeadRoundTrip) {
  ModelConfig c = tiny_config();
  c.tie_embeddings = false;
  MambaLM m = tiny_model(7, c);
  test::TempDir dir;
  save_pretrained(*m, dir.path);
  MambaLM back = load_pretrained(dir.path);
  EXPECT_TRUE(torch::equal(back->lm_head->weight, m->lm_head->weight));
}

void expect_error_containing(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, BadFoldersGiveErrorsNamingTheProblem) {
  MambaLM m = tiny_model(8);
  test::TempDir dir;
  const std::string d = dir.path;
  expect_error_containing([&] { load_pretrained(d + "/nope"); }, "does not exist");
  save_pretrained(*m, d);
  // A tensor missing.
  auto tensors = io::load_safetensors(dir.file("model.safetensors"));
  auto write = [&](const std::map<std::string, at::Tensor>& t) {
    std::vector<std::pair<std::string, at::Tensor>> v(t.begin(), t.end());
    io::save_safetensors(dir.file("model.safetensors"), v);
  };
  auto missing = tensors;
  missing.erase("backbone.layers.1.mixer.D");
  write(missing);
  expect_error_containing([&] { load_pretrained(d); }, "'backbone.layers.1.mixer.D' is missing");
  // A wrong shape.
  auto wrong = tensors;
  wrong["backbone.layers.0.mixer.A_log"] = torch::zeros({128, 9});
  write(wrong);
  expect_error_containing([&] { load_pretrained(d); }, "backbone.layers.0.mixer.A_log' has shape");
  // An unexpected tensor.
  auto extra = tensors;
  extra["backbone.layers.7.mixer.D"] = torch::zeros({3});
  write(extra);
  expect_error_containing([&] { load_pretrained(d); }, "unexpected tensor 'backbone.layers.7.mixer.D'");
  // A truncated file.
  write(tensors);
  fs::resize_file(dir.file("model.safetensors"), fs::file_size(dir.file("model.safetensors")) - 100);
  expect_error_containing([&] { load_pretrained(d); }, "model.safetensors");
  // A config with a wrong type.
  std::ofstream(dir.file("config.json")) << R"({"hidden_size": "64", "num_hidden_layers": 2, "vocab_size": 97})";
  expect_error_containing([&] { load_pretrained(d); }, "'hidden_size' has the wrong type");
}

// Hugging Face's sharded layout (model.safetensors.index.json + shards, as large checkpoints such as
// state-spaces/mamba-2.8b-hf come): the same model as from one file, and every disagreement between the
// index and the shards refused, naming the file and the tensor.
TEST(Checkpoint, ShardedFolderLoadsLikeOneFileAndRefusesAnIndexThatDisagrees) {
  ModelConfig c = tiny_config();
  c.tie_embeddings = false;  // lm_head.weight is a stored tensor too
  MambaLM m = tiny_model(9, c);
  test::TempDir dir;
  save_pretrained(*m, dir.path);
  const auto tensors = io::load_safetensors(dir.file("model.safetensors"));
  fs::remove_file(dir.file("model.safetensors"));
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  // Alternate tensors between the shards; `map` is what the index says, `held` what each shard holds.
  std::map<std::string, std::string> map;
  std::map<std::string, std::vector<std::pair<std::string, at::Tensor>>> held;
  bool first = true;
  for (const auto& [name, t] : tensors) {
    map[name] = first ? shard1 : shard2;
    held[map[name]].emplace_back(name, t);
    first = !first;
  }
  auto write = [&](const std::map<std::string, std::string>& index_map,
                   const std::map<std::string, std::vector<std::pair<std::string, at::Tensor>>>& shards) {
    for (const auto& [file, v] : shards) io::save_safetensors(dir.file(file), v);
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", index_map}};
    std::ofstream(dir.file("model.safetensors.index.json")) << index.dump(2);
  };
  write(map, held);
  MambaLM back = load_pretrained(dir.path);
  auto pb = back->named_parameters();
  for (const auto& p : m->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  EXPECT_EQ(io::SafetensorsCheckpoint::open_folder(dir.path).num_files(), 2u);

  // The index maps a tensor to a shard that lacks it.
  auto ghost = map;
  ghost["backbone.layers.0.mixer.ghost"] = shard1;
  write(ghost, held);
  expect_error_containing([&] { load_pretrained(dir.path); }, "maps tensor 'backbone.layers.0.mixer.ghost' to '");
  // A shard holds a tensor the index does not assign to it.
  auto unlisted = map;
  unlisted.erase(held[shard2].front().first);
  write(unlisted, held);
  expect_error_containing([&] { load_pretrained(dir.path); },
                          "holds tensor '" + held[shard2].front().first + "', which");
  // A shard named by the index is absent.
  write(map, held);
  fs::remove_file(dir.file(shard2));
  expect_error_containing([&] { load_pretrained(dir.path); }, shard2);
  // A shard path that leaves the folder.
  auto escape = map;
  escape[held[shard1].front().first] = "../" + shard1;
  write(escape, held);
  expect_error_containing([&] { load_pretrained(dir.path); }, "is not a file name in the folder");
  // A parameter in no shard: the index is named as the checkpoint.
  auto fewer = held;
  const std::string dropped = fewer[shard1].back().first;
  fewer[shard1].pop_back();
  auto fewer_map = map;
  fewer_map.erase(dropped);
  write(fewer_map, fewer);
  expect_error_containing([&] { load_pretrained(dir.path); },
                          "model.safetensors.index.json: tensor '" + dropped + "' is missing");
  // Not JSON.
  std::ofstream(dir.file("model.safetensors.index.json")) << "{\"weight_map\": ";
  expect_error_containing([&] { load_pretrained(dir.path); }, "model.safetensors.index.json");
  // A folder whose only tensors are a pytorch_model.bin is read as a PyTorch checkpoint (this one is not).
  fs::remove_file(dir.file("model.safetensors.index.json"));
  std::ofstream(dir.file("pytorch_model.bin")) << "not read";
  expect_error_containing([&] { load_pretrained(dir.path); }, "pytorch_model.bin: not a PyTorch checkpoint");
}

TEST(Model, OutOfRangeTokenIdsAreRejected) {
  MambaLM m = tiny_model(9);
  expect_error_containing([&] { m->forward(torch::full({1, 3}, 97, torch::kLong)); }, "token ids must be in [0, 97)");
}

TEST(Generation, SamplingOptions) {
  MambaLM m = tiny_model(10);
  const std::vector<int64_t> prompt{1, 2, 3};
  GenerationOptions greedy;
  greedy.greedy = true;
  greedy.max_new_tokens = 8;
  greedy.stop_at_eos = false;
  const auto g = generate(*m, prompt, greedy, torch::kCPU);
  ASSERT_EQ(g.size(), 11u);
  GenerationOptions topk1 = greedy;
  topk1.greedy = false;
  topk1.top_k = 1;
  EXPECT_EQ(generate(*m, prompt, topk1, torch::kCPU), g);  // top-k 1 is greedy
  GenerationOptions sample = greedy;
  sample.greedy = false;
  sample.temperature = 1.5;
  sample.top_p = 0.9;
  sample.seed = 42;
  const auto s1 = generate(*m, prompt, sample, torch::kCPU);
  EXPECT_EQ(generate(*m, prompt, sample, torch::kCPU), s1);  // reproducible
  sample.seed = 43;
  const auto s3 = generate(*m, prompt, sample, torch::kCPU);
  EXPECT_NE(s3, s1);
}

TEST(Generation, TopPKeepsTheNucleusAndStopsAtEos) {
  const at::Tensor logits = torch::log(torch::tensor({{0.5f, 0.3f, 0.15f, 0.05f}}));
  GenerationOptions o;
  o.top_p = 0.7;  // nucleus = {0, 1}
  at::Generator gen = make_cpu_generator(0);
  std::set<int64_t> seen;
  for (int i = 0; i < 300; ++i) seen.insert(sample_next(logits, o, gen).item<int64_t>());
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1}));

  MambaLM m = tiny_model(11);
  GenerationOptions greedy;
  greedy.greedy = true;
  greedy.max_new_tokens = 6;
  greedy.stop_at_eos = false;
  const auto free_run = generate(*m, {5}, greedy, torch::kCPU);
  greedy.eos_token_id = free_run[2];  // the second generated token becomes EOS
  greedy.stop_at_eos = true;
  const auto stopped = generate(*m, {5}, greedy, torch::kCPU);
  EXPECT_EQ(stopped, std::vector<int64_t>(free_run.begin(), free_run.begin() + 3));
}

// Prompts of different lengths in one batch: each greedy row equals generating its prompt alone
// (float64, so the prefill-vs-step rounding of the teacher-forced tail cannot flip an argmax:
// their logits agree to ~1e-15 and a near-tie that close is not drawn by these seeds). A row that
// reaches EOS stops there while the others go on; an empty prompt or a bad id is refused.
TEST(Generation, PromptsOfDifferentLengthsInOneBatch) {
  MambaLM m = tiny_model(12);
  m->to(at::kDouble);
  const std::vector<std::vector<int64_t>> prompts = {{5, 9, 2, 40, 7, 1}, {3}, {8, 8, 60}, {11, 4, 17, 2, 90, 33, 6, 5, 1}};
  GenerationOptions g;
  g.greedy = true;
  g.max_new_tokens = 7;
  g.stop_at_eos = false;
  const auto batch = generate_batch(*m, prompts, g);
  ASSERT_EQ(batch.size(), prompts.size());
  for (size_t r = 0; r < prompts.size(); ++r) {
    EXPECT_EQ(batch[r], generate(*m, prompts[r], g, torch::kCPU)) << "prompt " << r;
    EXPECT_EQ(batch[r].size(), prompts[r].size() + 7) << "prompt " << r;
  }
  // Row 1's third generated token as EOS: row 1 ends there, the others are unchanged unless they
  // meet that token too (then they end at it as well).
  g.eos_token_id = batch[1][1 + 2];
  g.stop_at_eos = true;
  const auto stopped = generate_batch(*m, prompts, g);
  for (size_t r = 0; r < prompts.size(); ++r) {
    std::vector<int64_t> expected = batch[r];
    const auto it = std::find(expected.begin() + int64_t(prompts[r].size()), expected.end(), g.eos_token_id);
    if (it != expected.end()) expected.erase(it + 1, expected.end());
    EXPECT_EQ(stopped[r], expected) << "prompt " << r;
  }
  EXPECT_LE(stopped[1].size(), 1u + 3u);
  g.max_new_tokens = 0;
  EXPECT_EQ(generate_batch(*m, prompts, g), prompts);
  g.max_new_tokens = 2;
  EXPECT_THROW(generate_batch(*m, {{1, 2}, {}}, g), Error);
  EXPECT_THROW(generate_batch(*m, {{1, 100000}}, g), Error);
}

TEST(Classifier, LastTokenPoolingIgnoresRightPadding) {
  ModelConfig c = tiny_config();
  torch::manual_seed(0);
  MambaClassifier clf(c, 3);
  init_reference(*clf->backbone, 12);
  at::Tensor ids = torch::randint(1, 97, {2, 8}, torch::kLong);
  const at::Tensor lengths = torch::tensor({5, 8}, torch::kLong);
  const at::Tensor out = clf->forward(ids, lengths);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3}));
  at::Tensor other = ids.clone();
  other.index_put_({0, torch::indexing::Slice(5, 8)}, 0);  // different padding
  EXPECT_TRUE(torch::allclose(clf->forward(other, lengths), out, 1e-6, 1e-6));
  // The pooled feature is the hidden state of the last real token.
  torch::NoGradGuard no_grad;
  const at::Tensor hidden = clf->backbone->forward(ids.narrow(0, 0, 1).narrow(1, 0, 5));
  EXPECT_LT(test::rel_err(clf->pool(clf->backbone->forward(ids), lengths)[0], hidden[0][4]), 1e-6);
}

TEST(Classifier, MeanPoolingAndRegressionHead) {
  ModelConfig c = tiny_config();
  MambaClassifier reg(c, 1, parse_pooling("mean"));
  init_reference(*reg->backbone, 13);
  const at::Tensor ids = torch::randint(1, 97, {2, 6}, torch::kLong);
  const at::Tensor lengths = torch::tensor({3, 6}, torch::kLong);
  const at::Tensor hidden = reg->backbone->forward(ids);
  EXPECT_LT(test::rel_err(reg->pool(hidden, lengths)[0], hidden[0].narrow(0, 0, 3).mean(0)), 1e-6);
  const at::Tensor y = reg->forward(ids, lengths);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 1}));
  torch::mse_loss(y.squeeze(1), torch::tensor({1.0f, 4.0f})).backward();
  EXPECT_TRUE(reg->classifier->weight.grad().defined());
  EXPECT_THROW(reg->forward(ids, torch::tensor({0, 6}, torch::kLong)), Error);
  EXPECT_THROW(parse_pooling("max"), Error);
}

}  // namespace
}  // namespace mcd
