// SGH-PEFT's adapters, allocation, merging and adapter files (peft/, METHOD.md §4).
#include <gtest/gtest.h>

#include <fstream>

#include "model/channel_surgery.h"
#include "model/classifier.h"
#include "peft/peft_model.h"
#include "sdm/prune_test_util.h"
#include "test_support.h"
#include "train/loop.h"

namespace mcd {
namespace {

using peft::LayerTreatment;
using peft::Method;
using sdm::test_util::random_model;
using sdm::test_util::tiny_config;

// A float64 classifier over a random (optionally gated) tiny backbone.
MambaClassifier make_classifier(const std::string& gate_type, uint64_t seed, int64_t labels = 3) {
  MambaLM lm = random_model(tiny_config(gate_type), seed);
  MambaClassifier c(lm->backbone, labels);
  c->to(at::kDouble);
  c->eval();
  return c;
}

at::Tensor inputs(int64_t B, int64_t L, uint64_t seed) {
  at::Generator gen = make_cpu_generator(seed);
  return torch::randint(0, 512, {B, L}, gen, at::kLong);
}

at::Tensor logits(MambaClassifierImpl& m, const at::Tensor& ids) {
  torch::NoGradGuard no_grad;
  const at::Tensor lengths = torch::full({ids.size(0)}, ids.size(1), at::kLong);
  return m.forward(ids, lengths);
}

// Every adapter tensor drawn at random (B ≠ 0, l ≠ 1), so merging has something to fold.
void randomise_adapters(MambaClassifierImpl& m, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = make_cpu_generator(seed);
  for (auto& p : m.named_parameters())
    if (p.key().find("_adapter.") != std::string::npos) {
      const double lo = p.key().find("ia3") != std::string::npos ? 0.5 : -0.2;
      const double hi = p.key().find("ia3") != std::string::npos ? 1.5 : 0.2;
      p.value().copy_(torch::empty(p.value().sizes(), at::kDouble).uniform_(lo, hi, gen));
    }
}

peft::LayerImportances importances(const std::vector<double>& values) {
  peft::LayerImportances imp;
  imp.source = "sdm_gates";
  imp.path = "test";
  imp.values = values;
  return imp;
}

TEST(Adapters, AttachedAdaptersStartAsTheBaseModel) {
  // B = 0 and l = 1 exactly: W + 0·A and 1·W are W bit for bit.
  for (Method method : {Method::kLora, Method::kIa3}) {
    MambaClassifier m = make_classifier("", 1);
    const at::Tensor ids = inputs(2, 9, 2);
    const at::Tensor before = logits(*m, ids);
    peft::PeftSettings s;
    peft::prepare(*m, peft::allocate(method, 3, s), s, 7);
    m->to(at::kDouble);
    EXPECT_TRUE(peft::has_adapters(*m->backbone));
    EXPECT_TRUE(at::equal(logits(*m, ids), before)) << peft::method_name(method);
  }
}

TEST(Adapters, LoraDropoutPathIsTheLowRankUpdateOnDroppedInputs) {
  // Training mode with dropout: out = xWᵀ + b + (α/r)·(drop(x)Aᵀ)Bᵀ. The same seed draws the same
  // mask, so the expectation is computed here from the mask itself (float64: exact up to the
  // reassociation of two products, ≤ 1e-12 relative).
  at::Generator gen = make_cpu_generator(3);
  peft::LoraOptions o;
  o.rank = 4;
  o.alpha = 8;
  o.dropout = 0.3;
  for (Projection p : {Projection::kIn, Projection::kOut}) {
    auto a = std::make_shared<peft::LoraAdapterImpl>(p, 6, 10, o, gen);
    a->to(at::kDouble);
    a->train();
    EXPECT_FALSE(a->weight_form_is_exact());
    torch::NoGradGuard no_grad;
    a->lora_B.copy_(torch::randn(a->lora_B.sizes(), gen, at::kDouble));
    const int64_t in = p == Projection::kIn ? 6 : 10, out = p == Projection::kIn ? 20 : 6;
    const at::Tensor x = torch::randn({3, 5, in}, gen, at::kDouble);
    const at::Tensor w = torch::randn({out, in}, gen, at::kDouble), b = torch::randn({out}, gen, at::kDouble);
    torch::manual_seed(11);
    const at::Tensor got = a->forward(x, w, b);
    torch::manual_seed(11);
    const at::Tensor mask = torch::nn::functional::dropout(torch::ones_like(x),
                                                          torch::nn::functional::DropoutFuncOptions().p(0.3).training(true));
    const at::Tensor want = torch::nn::functional::linear(x, w, b) +
                            torch::matmul(torch::matmul(x * mask, a->lora_A.t()), a->lora_B.t()) * 2.0;
    EXPECT_LT(test::rel_err(got, want), 1e-12);
    EXPECT_GT((mask == 0).sum().item<int64_t>(), 0);  // the mask did drop something
    a->eval();
    EXPECT_TRUE(a->weight_form_is_exact());
    EXPECT_LT(test::rel_err(a->forward(x, w, b), torch::nn::functional::linear(x, w + a->delta_weight(), b)), 1e-12);
  }
}

TEST(Adapters, LoraDropoutNodeGradientsMatchTheFormulaOnTheSameMask) {
  // The training form is one autograd node with a hand-written backward (adapters.cpp). Against
  // autograd through the formula xWᵀ + b + (α/r)·((x ⊙ mask)Aᵀ)Bᵀ on the same mask (same seed),
  // float64, every input requiring grad (W and b too, which LoRA fine-tuning freezes): the two
  // differ only by reassociated sums of ≤ 20 terms, ≤ 1e-12 relative.
  at::Generator gen = make_cpu_generator(5);
  peft::LoraOptions o;
  o.rank = 3;
  o.alpha = 6;
  o.dropout = 0.4;
  for (Projection p : {Projection::kIn, Projection::kOut}) {
    auto a = std::make_shared<peft::LoraAdapterImpl>(p, 7, 9, o, gen);
    a->to(at::kDouble);
    a->train();
    {
      torch::NoGradGuard no_grad;
      a->lora_B.copy_(torch::randn(a->lora_B.sizes(), gen, at::kDouble));
    }
    const int64_t in = p == Projection::kIn ? 7 : 9, out = p == Projection::kIn ? 18 : 7;
    const at::Tensor x = torch::randn({2, 5, in}, gen, at::kDouble).requires_grad_();
    const at::Tensor w = torch::randn({out, in}, gen, at::kDouble).requires_grad_();
    const at::Tensor b = torch::randn({out}, gen, at::kDouble).requires_grad_();
    const at::Tensor up = torch::randn({2, 5, out}, gen, at::kDouble);  // upstream gradient
    torch::manual_seed(17);
    const at::Tensor got = a->forward(x, w, b);
    const auto g = torch::autograd::grad({got}, {x, w, b, a->lora_A, a->lora_B}, {up});
    torch::manual_seed(17);
    const at::Tensor mask = torch::nn::functional::dropout(torch::ones_like(x),
                                                          torch::nn::functional::DropoutFuncOptions().p(0.4).training(true));
    const at::Tensor want = torch::nn::functional::linear(x, w, b) +
                            torch::matmul(torch::matmul(x * mask, a->lora_A.t()), a->lora_B.t()) * 2.0;
    const auto r = torch::autograd::grad({want}, {x, w, b, a->lora_A, a->lora_B}, {up});
    EXPECT_LT(test::rel_err(got, want), 1e-12);
    const char* names[] = {"x", "W", "b", "A", "B"};
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_LT(test::rel_err(g[i], r[i]), 1e-12) << names[i];
      EXPECT_GT(r[i].abs().max().item<double>(), 0) << names[i];
    }
    EXPECT_GT((mask == 0).sum().item<int64_t>(), 0);
  }
}

TEST(Adapters, MergedModelComputesTheSameLogits) {
  // LoRA on some layers and IA³ on the others (sgh), dense and gated: the merged copy (no
  // adapters) against the adapted model, float64. Merging forms W' in float64 once; the adapted
  // forward forms the same W' each call, so they agree to rounding (≤ 1e-12 relative).
  for (const std::string gate : {"", "hard_concrete"}) {
    MambaClassifier m = make_classifier(gate, 4);
    peft::PeftSettings s;
    s.lora.rank = 3;
    const auto imp = importances({0.2, 0.9, 0.5});
    peft::prepare(*m, peft::allocate(Method::kSgh, 3, s, &imp), s, 5);
    m->to(at::kDouble);
    m->eval();
    randomise_adapters(*m, 6);
    const at::Tensor ids = inputs(3, 11, 8);
    const at::Tensor adapted = logits(*m, ids);
    peft::merge_adapters(*m->backbone);
    EXPECT_FALSE(peft::has_adapters(*m->backbone));
    const at::Tensor merged = logits(*m, ids);
    EXPECT_LT(test::rel_err(merged, adapted), 1e-12) << gate;
    EXPECT_GT(adapted.abs().max().item<double>(), 0);
  }
}

TEST(Adapters, MergingChangesOnlyWhatTheAdaptersTouch) {
  // A reference merge written out by hand: in_proj W' = diag(l)·W (IA³) or W + s·B·A (LoRA).
  MambaClassifier m = make_classifier("", 9);
  const MambaLM base = random_model(tiny_config(""), 9);
  peft::PeftSettings s;
  s.lora.rank = 2;
  s.lora.alpha = 6;
  const auto imp = importances({0.9, 0.1, 0.1});  // layer 0 LoRA, layers 1-2 IA³ (75th pct = 0.5)
  const peft::Allocation a = peft::allocate(Method::kSgh, 3, s, &imp);
  ASSERT_EQ(a.layers[0].treatment, LayerTreatment::kLora);
  ASSERT_EQ(a.layers[1].treatment, LayerTreatment::kIa3);
  peft::prepare(*m, a, s, 10);
  m->to(at::kDouble);
  randomise_adapters(*m, 11);
  auto& mx0 = *m->backbone->blocks[0]->mixer;
  auto lora = std::dynamic_pointer_cast<peft::LoraAdapterImpl>(mx0.adapter(Projection::kIn));
  ASSERT_TRUE(lora);
  const at::Tensor want0 = base->backbone->blocks[0]->mixer->in_proj->weight.to(at::kDouble) +
                           torch::mm(lora->lora_B, lora->lora_A) * 3.0;
  auto& mx1 = *m->backbone->blocks[1]->mixer;
  auto ia3 = std::dynamic_pointer_cast<peft::Ia3AdapterImpl>(mx1.adapter(Projection::kOut));
  ASSERT_TRUE(ia3);
  const at::Tensor want1 =
      base->backbone->blocks[1]->mixer->out_proj->weight.to(at::kDouble) * ia3->ia3_scale.detach().unsqueeze(1);
  const at::Tensor x_proj_before = mx1.x_proj->weight.detach().clone();
  peft::merge_adapters(*m->backbone);
  EXPECT_LT(test::rel_err(mx0.in_proj->weight, want0), 1e-14);
  EXPECT_LT(test::rel_err(mx1.out_proj->weight, want1), 1e-14);
  EXPECT_TRUE(at::equal(mx1.x_proj->weight, x_proj_before));
}

TEST(Adapters, GatedModelUpdatesOnlyKeptChannels) {
  // METHOD §4 "masked updates": on an unpruned gated model, LoRA's ΔW has zero in_proj rows (x and
  // z) and zero out_proj columns for every channel whose deterministic gate is 0, and IA³ leaves
  // those rows at scale 1 — whatever values the adapter tensors hold.
  MambaClassifier m = make_classifier("hard_concrete", 12);
  peft::PeftSettings s;
  s.lora.rank = 2;
  const auto imp = importances({0.9, 0.1, 0.5});
  peft::prepare(*m, peft::allocate(Method::kSgh, 3, s, &imp), s, 13);
  m->to(at::kDouble);
  randomise_adapters(*m, 14);
  int64_t closed_total = 0;
  for (auto& block : m->backbone->blocks) {
    auto& mx = *block->mixer;
    const int64_t E = mx.d_inner;
    const at::Tensor open = mx.gate->expand(mx.gate->deterministic_gates()) > 0;  // (E)
    const at::Tensor closed = open.logical_not();
    closed_total += closed.sum().item<int64_t>();
    for (Projection p : {Projection::kIn, Projection::kOut}) {
      const ProjectionAdapter a = mx.adapter(p);
      ASSERT_TRUE(a);
      const at::Tensor w = (p == Projection::kIn ? mx.in_proj : mx.out_proj)->weight;
      const at::Tensor delta = a->effective_weight(w) - w;
      if (p == Projection::kIn) {
        const at::Tensor rows = torch::cat({closed, closed});  // x rows, then z rows
        EXPECT_EQ(delta.index({rows}).abs().max().item<double>(), 0.0);
        EXPECT_GT(delta.index({torch::cat({open, open})}).abs().max().item<double>(), 0.0);
      } else if (peft::adapter_kind(a) == "lora") {
        EXPECT_EQ(delta.index({torch::indexing::Slice(), closed}).abs().max().item<double>(), 0.0);
        EXPECT_GT(delta.index({torch::indexing::Slice(), open}).abs().max().item<double>(), 0.0);
      }
      (void)E;
    }
  }
  EXPECT_GT(closed_total, 0);  // the random gates closed some channels, so the check bit
}

TEST(Adapters, PermutingChannelsMovesAdaptersAndMasks) {
  // CSP after adapters: every adapter tensor indexed by channel (LoRA B rows / A columns, IA³
  // scales, masks) is a channel slot, so a permuted layer computes the same function.
  MambaClassifier m = make_classifier("hard_concrete", 15);
  peft::PeftSettings s;
  s.lora.rank = 2;
  const auto imp = importances({0.9, 0.1, 0.5});
  peft::prepare(*m, peft::allocate(Method::kSgh, 3, s, &imp), s, 16);
  m->to(at::kDouble);
  randomise_adapters(*m, 17);
  const at::Tensor ids = inputs(2, 10, 18);
  const at::Tensor before = logits(*m, ids);
  at::Generator gen = make_cpu_generator(19);
  for (auto& block : m->backbone->blocks) permute_channels(*block->mixer, torch::randperm(block->mixer->d_inner, gen));
  EXPECT_LT(test::rel_err(logits(*m, ids), before), 1e-12);
}

TEST(Allocation, PercentileRuleRanksAndFreezing) {
  // numpy's linear percentile of [0.1, 0.5, 0.7, 0.9]: 75th → 0.75, 50th → 0.6, 25th → 0.4.
  const auto imp = importances({0.1, 0.9, 0.5, 0.7});
  peft::PeftSettings s;
  peft::Allocation a = peft::allocate(Method::kSgh, 4, s, &imp);
  EXPECT_NEAR(a.lora_threshold, 0.75, 1e-12);
  EXPECT_EQ(a.count(LayerTreatment::kLora), 1);
  EXPECT_EQ(a.layers[1].treatment, LayerTreatment::kLora);
  EXPECT_EQ(a.layers[1].rank, 16);
  EXPECT_EQ(a.count(LayerTreatment::kIa3), 3);

  s.lora_percentile = 50;
  s.freeze_percentile = 25;
  s.scale_ranks = true;
  a = peft::allocate(Method::kSgh, 4, s, &imp);
  EXPECT_EQ(a.layers[0].treatment, LayerTreatment::kFrozen);  // 0.1 < 0.4
  EXPECT_EQ(a.layers[2].treatment, LayerTreatment::kIa3);     // 0.4 ≤ 0.5 < 0.6
  EXPECT_EQ(a.layers[1].treatment, LayerTreatment::kLora);
  EXPECT_EQ(a.layers[3].treatment, LayerTreatment::kLora);
  EXPECT_EQ(a.layers[1].rank, 18);  // round(16 · 0.9 / 0.8)
  EXPECT_EQ(a.layers[3].rank, 14);  // round(16 · 0.7 / 0.8)

  // The plan survives its JSON form.
  const peft::Allocation back = peft::allocation_from_json(peft::allocation_to_json(a), "test");
  ASSERT_EQ(back.layers.size(), 4u);
  for (size_t l = 0; l < 4; ++l) {
    EXPECT_EQ(back.layers[l].treatment, a.layers[l].treatment);
    EXPECT_EQ(back.layers[l].rank, a.layers[l].rank);
  }
  EXPECT_NE(peft::describe(a).find("layer   1  I=0.9000  lora r=18"), std::string::npos) << peft::describe(a);
}

TEST(Allocation, UniformMethodsAndErrors) {
  peft::PeftSettings s;
  EXPECT_EQ(peft::allocate(Method::kLora, 5, s).count(LayerTreatment::kLora), 5);
  EXPECT_EQ(peft::allocate(Method::kIa3, 5, s).count(LayerTreatment::kIa3), 5);
  EXPECT_EQ(peft::allocate(Method::kProbe, 5, s).count(LayerTreatment::kFrozen), 5);
  EXPECT_EQ(peft::allocate(Method::kFull, 5, s).count(LayerTreatment::kFull), 5);
  test::expect_error([&] { peft::allocate(Method::kSgh, 3, s); }, "needs layer importances");
  const auto imp = importances({0.5, 0.5});
  test::expect_error([&] { peft::allocate(Method::kSgh, 3, s, &imp); }, "has 2 layers but the model has 3");
  test::expect_error([] { peft::parse_method("qlora"); }, "unknown fine-tuning method 'qlora'");
}

TEST(Allocation, ReadsTheImportanceFileAndNamesItsErrors) {
  test::TempDir tmp;
  auto write = [&](const std::string& body) {
    std::ofstream(tmp.file("imp.json")) << body;
    return tmp.file("imp.json");
  };
  const std::string good =
      R"({"format": "mcd-sdm-importance", "version": 1, "source": "magnitude_proxy", "layers": [
      {"layer": 0, "width": 4, "kept": [0, 1, 2, 3], "mean_keep_prob": 0.25},
      {"layer": 1, "width": 4, "kept": [1], "mean_keep_prob": 0.75}]})";
  const auto imp = peft::read_layer_importances(write(good));
  EXPECT_EQ(imp.source, "magnitude_proxy");
  EXPECT_EQ(imp.values, (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(imp.kept[1], (std::vector<int64_t>{1}));
  std::string bad = good;
  bad.replace(bad.find("0.75"), 4, "1.75");
  test::expect_error([&] { peft::read_layer_importances(write(bad)); }, "layers[1]: mean_keep_prob 1.75 is not in [0, 1]");
  bad = good;
  bad.replace(bad.find("mcd-sdm-importance"), 18, "something-else-file");
  test::expect_error([&] { peft::read_layer_importances(write(bad)); }, "format is 'something-else-file'");
  test::expect_error([&] { peft::read_layer_importances(write("{")); }, "not valid JSON");
  test::expect_error([&] { peft::read_layer_importances(tmp.file("missing.json")); }, "cannot read importance file");
}

TEST(ParameterCounts, MatchTheFormulasOnPrunedWidths) {
  // LoRA: r·(D + 2E) on in_proj and r·(E + D) on out_proj; IA³: 2E and D. Per-layer widths of a
  // pruned model (E = 32, 48, 80) with D = 64.
  ModelConfig c = tiny_config("");
  c.d_inner_per_layer = {32, 48, 80};
  MambaLM lm(c);
  init_reference(*lm, 1);
  for (Method method : {Method::kLora, Method::kIa3, Method::kSgh, Method::kProbe, Method::kFull}) {
    MambaClassifier m(lm->backbone, 2);
    for (auto& p : m->parameters()) p.set_requires_grad(true);
    peft::PeftSettings s;
    s.lora.rank = 4;
    s.scale_ranks = true;
    const auto imp = importances({0.3, 0.9, 0.6});
    const peft::Allocation a = peft::allocate(method, 3, s, &imp);
    peft::prepare(*m, a, s, 2);
    const auto counts = peft::count_parameters(*m);
    EXPECT_EQ(counts.adapters, peft::expected_adapter_parameters(a, s, 64, {32, 48, 80})) << peft::method_name(method);
    EXPECT_EQ(counts.head, 64 * 2 + 2);
    if (method == Method::kFull) EXPECT_EQ(counts.trainable, counts.total);
    else EXPECT_EQ(counts.trainable, counts.adapters + counts.head) << peft::method_name(method);
    if (method == Method::kLora) EXPECT_EQ(counts.adapters, 4 * ((64 + 64) + (32 + 64) + (64 + 96) + (48 + 64) + (64 + 160) + (80 + 64)));
    if (method == Method::kIa3) EXPECT_EQ(counts.adapters, (64 + 64) + (96 + 64) + (160 + 64));
    for (auto& b : m->backbone->blocks) {  // the next method starts from a clean backbone
      b->mixer->set_adapter(Projection::kIn, nullptr);
      b->mixer->set_adapter(Projection::kOut, nullptr);
    }
  }
}

TEST(AdapterFiles, SaveAndLoadGiveTheSameClassifier) {
  test::TempDir tmp;
  MambaClassifier m = make_classifier("hard_concrete", 20, 2);
  m->to(at::kFloat);
  peft::PeftSettings s;
  s.lora.rank = 2;
  const auto imp = importances({0.9, 0.1, 0.5});
  const peft::Allocation a = peft::allocate(Method::kSgh, 3, s, &imp);
  peft::prepare(*m, a, s, 21);
  randomise_adapters(*m, 22);
  {
    torch::NoGradGuard no_grad;
    m->classifier->weight.normal_();
  }
  peft::save_adapters(*m, a, s, tmp.file("adapters"));
  MambaClassifier fresh(random_model(tiny_config("hard_concrete"), 20)->backbone, 2);
  fresh->eval();
  m->eval();
  peft::load_adapters(*fresh, tmp.file("adapters"));
  const at::Tensor ids = inputs(2, 7, 23);
  EXPECT_TRUE(at::equal(logits(*fresh, ids), logits(*m, ids)));

  // Another width, or another label count, is refused with the file named.
  ModelConfig narrow = tiny_config("hard_concrete");
  narrow.d_inner_per_layer = {64, 64, 64};
  MambaClassifier other(MambaLM(narrow)->backbone, 2);
  test::expect_error([&] { peft::load_adapters(*other, tmp.file("adapters")); }, "other layer widths");
  MambaClassifier three(random_model(tiny_config("hard_concrete"), 20)->backbone, 3);
  test::expect_error([&] { peft::load_adapters(*three, tmp.file("adapters")); }, "num_labels 2");
}

// A classification objective on random tokens for the frozen-parameter check below.
class RandomObjective : public train::Objective {
 public:
  explicit RandomObjective(MambaClassifier m) : m_(std::move(m)) {}
  torch::nn::Module& module() override { return *m_; }
  void save_weights(const std::string&) override {}
  void load_weights(const std::string&) override {}
  void begin_step(const train::StepContext& ctx) override { step_ = ctx.step; }
  at::Tensor micro_batch_loss(const train::StepContext&, int64_t) override {
    at::Generator gen = make_cpu_generator(100 + step_);
    const at::Tensor ids = torch::randint(0, 512, {4, 8}, gen, at::kLong);
    const at::Tensor labels = torch::randint(0, 2, {4}, gen, at::kLong);
    return torch::nn::functional::cross_entropy(m_->forward(ids, torch::full({4}, 8, at::kLong)), labels);
  }
  nlohmann::json evaluate(train::Communicator&) override { return {{"val_loss", 0.0}}; }
  double units_per_step() const override { return 4; }

 private:
  MambaClassifier m_;
  int64_t step_ = 0;
};

TEST(Training, FrozenParametersStayBitIdenticalAndAdaptersMove) {
  // Ten AdamW steps of the shared loop with weight decay 0.1 and LoRA dropout: every parameter
  // outside the adapters and the head must be bit-identical afterwards (weight decay would move
  // any that reached the optimizer), and every adapter and head tensor must have moved.
  for (Method method : {Method::kLora, Method::kIa3, Method::kSgh, Method::kProbe}) {
    test::TempDir tmp;
    MambaClassifier m(random_model(tiny_config(""), 30)->backbone, 2);
    peft::PeftSettings s;
    s.lora.rank = 2;
    const auto imp = importances({0.9, 0.1, 0.5});
    peft::prepare(*m, peft::allocate(method, 3, s, &imp), s, 31);
    std::map<std::string, at::Tensor> before;
    for (const auto& p : m->named_parameters()) before[p.key()] = p.value().detach().clone();
    RandomObjective objective(m);
    train::LoopSettings ls;
    ls.steps = 10;
    ls.warmup_steps = 0;
    ls.lr = 1e-2;
    ls.optimizer.weight_decay = 0.1;
    ls.eval_interval = 0;
    ls.checkpoint_interval = 0;
    ls.out_dir = tmp.file("run");
    train::TrainOptions to;
    to.quiet = true;
    train::Communicator comm(train::DistEnv{}, "gloo");
    train::run_training_loop(objective, comm, torch::kCPU, ls, to);
    int64_t moved = 0;
    for (const auto& p : m->named_parameters()) {
      const bool trained = p.key().find("_adapter.") != std::string::npos || p.key().rfind("classifier.", 0) == 0;
      if (trained) {
        // LoRA A of a layer whose B is still 0 gets no gradient at step 1 but does afterwards.
        EXPECT_FALSE(at::equal(p.value(), before[p.key()])) << peft::method_name(method) << " " << p.key();
        ++moved;
      } else {
        EXPECT_TRUE(at::equal(p.value(), before[p.key()])) << peft::method_name(method) << " " << p.key();
      }
    }
    EXPECT_GT(moved, 0);
  }
}

}  // namespace
}  // namespace mcd
