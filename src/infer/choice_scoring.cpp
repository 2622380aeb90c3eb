// Log-likelihood of continuations (see choice_scoring.h).
#include "infer/choice_scoring.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace mcd::infer {

std::vector<ChoiceScores> score_choices(MambaLMImpl& model, const std::vector<ChoiceRequest>& requests,
                                        int64_t batch, int64_t max_length) {
  MCD_CHECK(batch >= 1, "zeroshot: batch must be >= 1, got ", batch);
  MCD_CHECK(max_length >= 2, "zeroshot: max_length must be >= 2, got ", max_length);
  const ModelConfig& c = model.config();
  const int64_t real_vocab = c.real_vocab_size();
  // One sequence per (request, choice): its ids, where the choice starts, and its owner.
  struct Sequence {
    std::vector<int64_t> ids;
    int64_t choice_start = 0;
    size_t request = 0, choice = 0;
  };
  std::vector<Sequence> sequences;
  std::vector<ChoiceScores> out(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    const ChoiceRequest& q = requests[r];
    MCD_CHECK(!q.choices.empty(), "zeroshot: request ", r, " has no choice");
    std::vector<int64_t> context = q.context;
    if (context.empty()) {
      MCD_CHECK(c.eos_token_id >= 0, "zeroshot: request ", r,
                " has an empty context and the model's config names no EOS token to put before the choice");
      context = {c.eos_token_id};
    }
    for (size_t k = 0; k < q.choices.size(); ++k) {
      const auto& choice = q.choices[k];
      MCD_CHECK(!choice.empty(), "zeroshot: request ", r, " choice ", k, " has no token");
      MCD_CHECK(int64_t(choice.size()) <= max_length - 1, "zeroshot: request ", r, " choice ", k, " has ",
                choice.size(), " tokens; at most max_length - 1 = ", max_length - 1, " fit after one context token");
      const int64_t keep = std::min<int64_t>(int64_t(context.size()), max_length - int64_t(choice.size()));
      Sequence s;
      s.ids.assign(context.end() - keep, context.end());
      s.choice_start = keep;
      s.ids.insert(s.ids.end(), choice.begin(), choice.end());
      for (int64_t id : s.ids)
        MCD_CHECK(id >= 0 && id < c.vocab_size, "zeroshot: request ", r, " has token id ", id,
                  " outside the vocabulary (", c.vocab_size, ")");
      for (int64_t id : choice)  // scored over the real vocabulary: an embedding padding row has no probability
        MCD_CHECK(id < real_vocab, "zeroshot: request ", r, " choice ", k, " has token id ", id,
                  ", a padding row beyond the real vocabulary (", real_vocab, ")");
      s.request = r;
      s.choice = k;
      sequences.push_back(std::move(s));
    }
    out[r].log_likelihood.assign(q.choices.size(), 0.0);
    out[r].tokens.assign(q.choices.size(), 0);
    out[r].greedy.assign(q.choices.size(), false);
  }
  // Longest first, so a batch pads little.
  std::vector<size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sequences[a].ids.size() > sequences[b].ids.size(); });
  torch::NoGradGuard no_grad;
  model.eval();
  const torch::Device device = model.backbone->embeddings->weight.device();
  for (size_t start = 0; start < order.size(); start += size_t(batch)) {
    const size_t end = std::min(order.size(), start + size_t(batch));
    const int64_t B = int64_t(end - start), L = int64_t(sequences[order[start]].ids.size());
    at::Tensor ids = torch::zeros({B, L}, torch::kLong);  // right-padded with id 0
    auto ids_at = ids.accessor<int64_t, 2>();
    // Row b's choice positions: hidden state at position t predicts token t + 1.
    std::vector<int64_t> rows, targets;
    for (int64_t b = 0; b < B; ++b) {
      const Sequence& s = sequences[order[start + size_t(b)]];
      for (size_t t = 0; t < s.ids.size(); ++t) ids_at[b][int64_t(t)] = s.ids[t];
      for (int64_t t = s.choice_start; t < int64_t(s.ids.size()); ++t) {
        rows.push_back(b * L + t - 1);
        targets.push_back(s.ids[size_t(t)]);
      }
    }
    const at::Tensor hidden = model.backbone->forward(ids.to(device));  // (B, L, D)
    const at::Tensor picked = hidden.reshape({B * L, hidden.size(-1)})
                                  .index_select(0, torch::tensor(rows, torch::kLong).to(device));
    at::Tensor logits = model.logits_from_hidden(picked).narrow(-1, 0, real_vocab);  // (rows, real V)
    const at::Tensor target = torch::tensor(targets, torch::kLong).to(device);
    const at::Tensor log_p = logits.log_softmax(-1).gather(1, target.unsqueeze(1)).squeeze(1).to(torch::kCPU, at::kDouble);
    const at::Tensor is_argmax = (logits.argmax(-1) == target).to(torch::kCPU);
    const auto log_p_at = log_p.accessor<double, 1>();
    const auto argmax_at = is_argmax.accessor<bool, 1>();
    int64_t row = 0;
    for (int64_t b = 0; b < B; ++b) {
      const Sequence& s = sequences[order[start + size_t(b)]];
      ChoiceScores& o = out[s.request];
      bool greedy = true;
      double sum = 0;
      for (int64_t t = s.choice_start; t < int64_t(s.ids.size()); ++t, ++row) {
        sum += log_p_at[row];
        greedy = greedy && argmax_at[row];
      }
      o.log_likelihood[s.choice] = sum;
      o.tokens[s.choice] = int64_t(s.ids.size()) - s.choice_start;
      o.greedy[s.choice] = greedy;
    }
  }
  return out;
}

}  // namespace mcd::infer
