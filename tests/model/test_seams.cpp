// The model's seams for the co-design stages: channel slots cover every E-indexed tensor, channel
// surgery (permutation, gathering) keeps the function, projection adapters are honoured by every
// path (full sequence, prefill with state, step), the u observer sees what the scan sees, and the
// fixed-buffer step (step_into) equals step and keeps every buffer's storage.
// Comparisons run in float64 on the CPU reference ops: a renumbering of channels changes no sum's
// order inside a channel, and the sums over channels (x_proj, out_proj) are reordered, so outputs
// agree to float64 rounding: relative error ≤ ~E·2⁻⁵² ≈ 3e-14 per product; 1e-10 leaves room for
// the ~10 chained layers of products and is still 1e8 below any real error (a wrongly moved channel
// changes the output at O(1)).
#include <gtest/gtest.h>

#include <set>

#include "model/channel_surgery.h"
#include "model/mamba.h"
#include "test_adapters.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

constexpr double kF64Tol = 1e-10;

// mamba-tiny (D 64, E 128, N 8, R 4, K 4): D, E and R + 2N differ, so a tensor's channel axis is
// recognisable by its size alone.
ModelConfig seam_config(const std::string& gate_type = "", int64_t gate_block = 1) {
  ModelConfig c = model_preset("mamba-tiny");
  c.n_layer = 2;
  c.vocab_size = 97;
  c.use_bias = true;  // in_proj / out_proj biases: more slots to move
  c.gate_type = gate_type;
  c.gate_block = gate_block;
  return c;
}

// Reference init in float64, then every parameter perturbed so that each one matters.
MambaLM random_model(const ModelConfig& c, uint64_t seed) {
  MambaLM m(c);
  init_reference(*m, seed);
  m->to(at::kDouble);
  torch::NoGradGuard no_grad;
  at::Generator gen = make_cpu_generator(seed + 7);
  for (auto& p : m->named_parameters()) {
    if (p.key().find("gate.") != std::string::npos) {
      p.value().copy_(torch::empty(p.value().sizes(), at::kDouble).uniform_(-3.0, 3.0, gen));
    } else {
      p.value().add_(torch::empty(p.value().sizes(), at::kDouble).uniform_(-0.05, 0.05, gen));
    }
  }
  m->eval();
  return m;
}

at::Tensor ids(int64_t b, int64_t l, uint64_t seed = 3) {
  at::Generator gen = make_cpu_generator(seed);
  return torch::randint(97, {b, l}, gen, torch::kLong);
}

at::Tensor logits_of(MambaLMImpl& m, const at::Tensor& t) {
  torch::NoGradGuard no_grad;
  return m.forward(t);
}

// Prefill 5 tokens, then step the rest: (B, L − 4, V) logits of positions 4…L−1.
at::Tensor stepped_logits(MambaLMImpl& m, const at::Tensor& t) {
  InferenceCache cache = m.new_cache(t.size(0));
  std::vector<at::Tensor> out{m.prefill(t.narrow(1, 0, 5), cache)};
  for (int64_t i = 5; i < t.size(1); ++i) out.push_back(m.step(t.select(1, i), cache));
  return torch::stack(out, 1);
}

// A random permutation of [0, E) that moves whole blocks of `block` channels.
at::Tensor block_permutation(int64_t E, int64_t block, uint64_t seed) {
  at::Generator gen = make_cpu_generator(seed);
  const at::Tensor blocks = torch::randperm(E / block, gen, torch::kLong);
  return (blocks.unsqueeze(1) * block + torch::arange(block, torch::kLong).unsqueeze(0)).reshape({-1});
}

using test::attach_test_adapters;
using test::merge_test_adapters;

TEST(ChannelSlots, CoverEveryChannelIndexedParameter) {
  MambaLM m = random_model(seam_config("hard_concrete"), 1);
  attach_test_adapters(*m, 2);
  auto& mx = *m->backbone->blocks[0]->mixer;
  std::set<std::string> listed;
  for (const ChannelSlot& s : mx.channel_slots()) {
    EXPECT_TRUE(listed.insert(s.name).second) << "listed twice: " << s.name;
    EXPECT_EQ(s.tensor.size(s.dim), mx.d_inner * s.copies / s.group) << s.name;
  }
  // Every parameter with an axis of E (or 2E) entries is listed, and nothing else.
  const int64_t E = mx.d_inner;
  for (const auto& p : mx.named_parameters()) {
    bool channel_axis = false;
    for (int64_t d = 0; d < p.value().dim(); ++d) channel_axis |= p.value().size(d) == E || p.value().size(d) == 2 * E;
    EXPECT_EQ(channel_axis, listed.count(p.key()) == 1) << p.key();
  }
  EXPECT_EQ(listed.size(), 13u);  // 10 of the mixer (out_proj.bias is D-indexed), the gate, 2 adapters
}

TEST(ChannelSurgery, PermutationKeepsTheFunctionInEveryPath) {
  for (int64_t block : {1, 4}) {
    MambaLM m = random_model(seam_config("hard_concrete", block), 10 + block);
    attach_test_adapters(*m, 20);
    const at::Tensor t = ids(2, 13);
    const at::Tensor full = logits_of(*m, t), stepped = stepped_logits(*m, t);
    for (size_t l = 0; l < m->backbone->blocks.size(); ++l)
      permute_channels(*m->backbone->blocks[l]->mixer, block_permutation(128, block, 30 + l));
    const at::Tensor full_p = logits_of(*m, t);
    EXPECT_LT(test::rel_err(full_p, full), kF64Tol) << "block " << block;
    EXPECT_LT(test::rel_err(stepped_logits(*m, t), stepped), kF64Tol) << "block " << block;
    // The permutation really moved weights (a no-op would also pass the checks above).
    const at::Tensor w0 = m->backbone->blocks[0]->mixer->x_proj->weight;
    EXPECT_GT((w0 - random_model(seam_config("hard_concrete", block), 10 + block)
                        ->backbone->blocks[0]->mixer->x_proj->weight)
                  .abs()
                  .max()
                  .item<double>(),
              1e-3);
  }
}

TEST(ChannelSurgery, MovingOneSlotAloneChangesTheFunction) {
  // The surgery's premise: the slots are coupled, so permuting only one of them breaks the layer.
  MambaLM m = random_model(seam_config(), 4);
  const at::Tensor t = ids(1, 9);
  const at::Tensor before = logits_of(*m, t);
  {
    torch::NoGradGuard no_grad;
    auto& mx = *m->backbone->blocks[0]->mixer;
    mx.D.copy_(mx.D.index_select(0, block_permutation(128, 1, 5)));
  }
  EXPECT_GT(test::rel_err(logits_of(*m, t), before), 1e-6);
}

TEST(ChannelSurgery, GatherTakesTheSameChannelsFromEverySlot) {
  MambaLM m = random_model(seam_config("hard_concrete", 2), 6);
  auto& mx = *m->backbone->blocks[1]->mixer;
  const at::Tensor keep = torch::tensor(std::vector<int64_t>{2, 3, 10, 11, 126, 127}, torch::kLong);
  const auto g = gather_channels(mx, keep);
  EXPECT_TRUE(torch::equal(g.at("D"), mx.D.index_select(0, keep)));
  EXPECT_TRUE(torch::equal(g.at("in_proj.weight").narrow(0, 6, 6), mx.in_proj->weight.narrow(0, 128, 128).index_select(0, keep)));
  EXPECT_TRUE(torch::equal(g.at("out_proj.weight"), mx.out_proj->weight.index_select(1, keep)));
  EXPECT_TRUE(torch::equal(g.at("gate.log_alpha"),
                           mx.gate->log_alpha.index_select(0, torch::tensor(std::vector<int64_t>{1, 5, 63}))));
}

TEST(ChannelSurgery, BadIndicesAreRefusedWithTheReason) {
  MambaLM m = random_model(seam_config("hard_concrete", 4), 7);
  auto& mx = *m->backbone->blocks[0]->mixer;
  const at::Tensor not_perm = torch::zeros({128}, torch::kLong);
  EXPECT_NE(test::error_of([&] { permute_channels(mx, not_perm); }).find("must be a permutation of [0, 128)"),
            std::string::npos);
  // A permutation that splits gate blocks of 4.
  const at::Tensor split = torch::cat({torch::tensor(std::vector<int64_t>{1, 0}), torch::arange(2, 128, torch::kLong)});
  EXPECT_NE(test::error_of([&] { permute_channels(mx, split); }).find("keep each group of 4 adjacent channels"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { gather_channels(mx, torch::tensor(std::vector<int64_t>{0, 1, 2, 200})); })
                .find("must be in [0, 128)"),
            std::string::npos);
}

TEST(ProjectionAdapters, EveryPathEqualsTheMergedModel) {
  MambaLM m = random_model(seam_config(), 8);
  attach_test_adapters(*m, 9);
  const at::Tensor t = ids(2, 12);
  const at::Tensor full = logits_of(*m, t), stepped = stepped_logits(*m, t);
  MambaLM base = random_model(seam_config(), 8);
  EXPECT_GT(test::rel_err(logits_of(*base, t), full), 1e-3) << "the adapters must change the output";
  merge_test_adapters(*m);
  EXPECT_LT(test::rel_err(logits_of(*m, t), full), kF64Tol);
  EXPECT_LT(test::rel_err(stepped_logits(*m, t), stepped), kF64Tol);
  EXPECT_LT(test::rel_err(stepped, full.narrow(1, 4, 8)), kF64Tol);
}

TEST(ProjectionAdapters, GradientsReachTheAdapterParameters) {
  MambaLM m = random_model(seam_config(), 11);
  attach_test_adapters(*m, 12);
  m->train();
  m->loss(ids(2, 8)).backward();
  for (auto& block : m->backbone->blocks)
    for (Projection p : {Projection::kIn, Projection::kOut})
      for (const auto& param : block->mixer->adapter(p)->parameters()) {
        ASSERT_TRUE(param.grad().defined());
        EXPECT_GT(param.grad().abs().sum().item<double>(), 0.0);
      }
  // Registered under the mixer, so checkpoints and optimizers see them.
  EXPECT_EQ(m->named_parameters().contains("backbone.layers.0.mixer.out_proj_adapter.A"), true);
}

TEST(UObserver, SeesWhatTheScanSeesAndChangesNothing) {
  MambaLM m = random_model(seam_config("hard_concrete"), 13);
  const at::Tensor t = ids(2, 7);
  const at::Tensor before = logits_of(*m, t);
  std::vector<at::Tensor> seen(2);
  m->backbone->set_u_observer([&](int64_t l, const at::Tensor& u) { seen.at(size_t(l)) = u.detach().clone(); });
  EXPECT_LT(test::rel_err(logits_of(*m, t), before), 1e-15);
  ASSERT_TRUE(seen[0].defined() && seen[1].defined());
  EXPECT_EQ(seen[1].sizes(), (std::vector<int64_t>{2, 128, 7}));
  // Closed gates (deterministic z = 0) give exactly zero channels in what the observer sees.
  const at::Tensor z = m->backbone->blocks[1]->mixer->gate->forward().detach();
  const at::Tensor closed = (z == 0).nonzero().view(-1);
  ASSERT_GT(closed.numel(), 0) << "the random logits in [-3, 3] close some gates";
  EXPECT_EQ(seen[1].index_select(1, closed).abs().max().item<double>(), 0.0);
  m->backbone->set_u_observer(nullptr);
  seen[0] = at::Tensor();
  logits_of(*m, t);
  EXPECT_FALSE(seen[0].defined());
}

TEST(StepInto, EqualsStepAndKeepsEveryBuffer) {
  MambaLM m = random_model(seam_config("hard_concrete"), 14);
  const at::Tensor t = ids(3, 6);
  InferenceCache a = m->new_cache(3), b = m->new_cache(3);
  std::vector<const void*> ptrs;
  for (const auto& l : b.layers) {
    ptrs.push_back(l.conv.data_ptr());
    ptrs.push_back(l.ssm.data_ptr());
  }
  at::Tensor logits = torch::full({3, 97}, NAN, at::kDouble);
  const void* logits_ptr = logits.data_ptr();
  for (int64_t i = 0; i < 6; ++i) {
    const at::Tensor want = m->step(t.select(1, i), a);
    m->step_into(t.select(1, i), b, logits);
    EXPECT_TRUE(torch::equal(logits, want)) << "token " << i;
  }
  EXPECT_EQ(logits.data_ptr(), logits_ptr);
  size_t k = 0;
  for (const auto& l : b.layers) {
    EXPECT_EQ(l.conv.data_ptr(), ptrs[k++]);
    EXPECT_EQ(l.ssm.data_ptr(), ptrs[k++]);
  }
  EXPECT_EQ(b.seqlen, 6);
  b.reset();
  EXPECT_EQ(b.seqlen, 0);
  for (const auto& l : b.layers) EXPECT_EQ(l.ssm.abs().sum().item<double>(), 0.0);
  at::Tensor wrong = torch::zeros({3, 96}, at::kDouble);
  EXPECT_NE(test::error_of([&] { m->step_into(t.select(1, 0), b, wrong); }).find("logits must be (B=3, V=97)"),
            std::string::npos);
}

// The greedy step (what the CUDA-graph decoder captures) is step_into followed by the argmax over the
// real vocabulary, into one token buffer that is both the step's input and its output; float64, and
// a config whose vocabulary is padded (so the padding columns exist and must never be chosen).
TEST(StepGreedyInto, IsStepIntoThenTheArgmaxOverTheRealVocabulary) {
  ModelConfig c = seam_config("");
  c.vocab_size = 104;  // 97 ids from the tokenizer, 7 padding rows
  c.tokenizer_vocab_size = 97;
  MambaLM m = random_model(c, 15);
  ASSERT_EQ(c.real_vocab_size(), 97);
  // Padding rows of the tied embedding made large: their logits would win the argmax if it looked.
  { torch::NoGradGuard g; m->backbone->embeddings->weight.narrow(0, 97, 7).fill_(5.0); }
  const int64_t V = m->backbone->embeddings->weight.size(0);
  InferenceCache a = m->new_cache(3), b = m->new_cache(3);
  at::Tensor token = ids(3, 1).select(1, 0).clone(), want_logits = torch::empty({3, V}, at::kDouble);
  at::Tensor logits = torch::empty({3, V}, at::kDouble), workspace = torch::zeros({4}, at::kLong);
  at::Tensor want_token = token.clone();
  bool padding_would_win = false;  // the test means something only if an argmax over V picks padding
  for (int64_t i = 0; i < 5; ++i) {
    m->step_into(want_token, a, want_logits);
    want_token = want_logits.narrow(1, 0, 97).argmax(-1);
    padding_would_win |= want_logits.argmax(-1).ge(97).any().item<bool>();
    m->step_greedy_into(token, b, logits, token, workspace);
    EXPECT_TRUE(torch::equal(logits, want_logits)) << "step " << i;
    EXPECT_TRUE(torch::equal(token, want_token)) << "step " << i;
    EXPECT_LT(token.max().item<int64_t>(), 97);
  }
  EXPECT_TRUE(padding_would_win);
  at::Tensor bad_ws = torch::zeros({3}, at::kLong);
  EXPECT_NE(test::error_of([&] { m->step_greedy_into(token, b, logits, token, bad_ws); })
                .find("workspace (B + 1) int64"),
            std::string::npos);
}

TEST(Prefill, WritesIntoThePreallocatedCache) {
  // A decoder that captured a step in a CUDA graph reads the cache's tensors by address, so prefill
  // must fill those very buffers (found when graph decoding after prefill diverged on the GPU).
  MambaLM m = random_model(seam_config(), 15);
  const at::Tensor t = ids(2, 9);
  InferenceCache c = m->new_cache(2), fresh;
  std::vector<const void*> ptrs;
  for (const auto& l : c.layers) ptrs.push_back(l.conv.data_ptr()), ptrs.push_back(l.ssm.data_ptr());
  const at::Tensor want = m->prefill(t, fresh = m->new_cache(2));
  EXPECT_TRUE(torch::equal(m->prefill(t, c), want));
  size_t k = 0;
  for (size_t l = 0; l < c.layers.size(); ++l) {
    EXPECT_EQ(c.layers[l].conv.data_ptr(), ptrs[k++]) << "layer " << l;
    EXPECT_EQ(c.layers[l].ssm.data_ptr(), ptrs[k++]) << "layer " << l;
    EXPECT_TRUE(torch::equal(c.layers[l].ssm, fresh.layers[l].ssm));
    EXPECT_GT(c.layers[l].ssm.abs().sum().item<double>(), 0.0);
  }
}

}  // namespace
}  // namespace mcd
