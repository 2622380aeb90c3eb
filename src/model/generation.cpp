// Generation on the step mode (see generation.h).
#include "model/generation.h"

#include <algorithm>
#include <limits>

#include "util/error.h"

namespace mcd {

at::Tensor sample_next(const at::Tensor& logits_in, const GenerationOptions& o, at::Generator& gen) {
  const at::Tensor logits = logits_in.to(torch::kCPU, at::kFloat);  // (B, V)
  if (o.greedy) return logits.argmax(-1);
  MCD_CHECK(o.temperature > 0, "temperature must be positive, got ", o.temperature);
  MCD_CHECK(o.top_p > 0 && o.top_p <= 1, "top_p must be in (0, 1], got ", o.top_p);
  at::Tensor scores = logits / o.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < scores.size(-1)) {
    const at::Tensor kth = std::get<0>(scores.topk(o.top_k, -1)).narrow(-1, o.top_k - 1, 1);
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose probability reaches top_p (the most
    // likely token is always kept).
    auto [sorted, order] = scores.sort(-1, /*descending=*/true);
    const at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    at::Tensor drop_sorted = (cumulative - sorted.softmax(-1)) >= o.top_p;
    const at::Tensor drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    scores = scores.masked_fill(drop, neg_inf);
  }
  return at::multinomial(scores.softmax(-1), 1, /*replacement=*/false, gen).squeeze(-1);
}

namespace {
// The embedding's padding rows (beyond the real vocabulary) are never produced.
void forbid_padding_tokens(at::Tensor& logits, const ModelConfig& c) {
  if (c.real_vocab_size() < logits.size(-1))
    logits.narrow(-1, c.real_vocab_size(), logits.size(-1) - c.real_vocab_size())
        .fill_(-std::numeric_limits<float>::infinity());
}
}  // namespace

at::Tensor prompts_prefix(const std::vector<std::vector<int64_t>>& prompts) {
  MCD_CHECK(!prompts.empty(), "generate: no prompts");
  size_t shortest = prompts[0].size();
  for (size_t r = 0; r < prompts.size(); ++r) {
    MCD_CHECK(!prompts[r].empty(), "generate: prompt ", r, " is empty");
    shortest = std::min(shortest, prompts[r].size());
  }
  std::vector<int64_t> flat;
  flat.reserve(prompts.size() * shortest);
  for (const auto& p : prompts) flat.insert(flat.end(), p.begin(), p.begin() + int64_t(shortest));
  return torch::tensor(flat, torch::kLong).view({int64_t(prompts.size()), int64_t(shortest)});
}

at::Tensor generate(MambaLMImpl& model, const at::Tensor& prompts, const GenerationOptions& o) {
  torch::NoGradGuard no_grad;
  MCD_CHECK(prompts.dim() == 2 && prompts.size(1) >= 1, "generate: prompts must be (B, L>=1), got ",
            prompts.sizes());
  MCD_CHECK(o.max_new_tokens >= 0, "max_new_tokens must be >= 0");
  const ModelConfig& c = model.config();
  const int64_t eos = o.eos_token_id >= 0 ? o.eos_token_id : c.eos_token_id;
  const torch::Device device = model.backbone->embeddings->weight.device();
  at::Generator gen = make_cpu_generator(o.seed);

  InferenceCache cache = model.new_cache(prompts.size(0));
  at::Tensor logits = model.prefill(prompts.to(device, at::kLong), cache);  // (B, V)
  std::vector<at::Tensor> out{prompts.to(torch::kCPU, at::kLong)};
  at::Tensor finished = torch::zeros({prompts.size(0)}, torch::kBool);
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    forbid_padding_tokens(logits, c);
    at::Tensor next = sample_next(logits, o, gen);  // (B) on CPU
    if (o.stop_at_eos) next = next.masked_fill(finished, eos);
    out.push_back(next.unsqueeze(1));
    if (o.stop_at_eos) {
      finished = finished | (next == eos);
      if (finished.all().item<bool>()) break;
    }
    if (i + 1 < o.max_new_tokens) logits = model.step(next.to(device), cache);
  }
  return at::cat(out, 1);
}

std::vector<std::vector<int64_t>> generate_batch(MambaLMImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& o) {
  torch::NoGradGuard no_grad;
  MCD_CHECK(o.max_new_tokens >= 0, "max_new_tokens must be >= 0");
  const ModelConfig& c = model.config();
  const at::Tensor prefix = prompts_prefix(prompts);  // (B, shortest)
  const int64_t B = prefix.size(0);
  const size_t shortest = size_t(prefix.size(1));
  for (size_t r = 0; r < prompts.size(); ++r)
    for (int64_t id : prompts[r])
      MCD_CHECK(id >= 0 && id < c.vocab_size, "generate: prompt ", r, " has token id ", id,
                " outside the vocabulary (", c.vocab_size, ")");
  std::vector<std::vector<int64_t>> out = prompts;
  if (o.max_new_tokens == 0) return out;
  const int64_t eos = o.eos_token_id >= 0 ? o.eos_token_id : c.eos_token_id;
  const torch::Device device = model.backbone->embeddings->weight.device();
  at::Generator gen = make_cpu_generator(o.seed);

  InferenceCache cache = model.new_cache(B);
  at::Tensor logits = model.prefill(prefix.to(device), cache);  // (B, V): the token at position `shortest`
  std::vector<int64_t> made(size_t(B), 0);
  std::vector<char> stopped(size_t(B), 0);
  for (size_t pos = shortest;; ++pos) {
    forbid_padding_tokens(logits, c);
    const at::Tensor sampled = sample_next(logits, o, gen);  // (B) on CPU
    at::Tensor next = torch::empty({B}, torch::kLong);
    bool all_done = true;
    for (int64_t r = 0; r < B; ++r) {
      const auto& prompt = prompts[size_t(r)];
      int64_t token = eos >= 0 ? eos : 0;  // a finished row keeps stepping on a filler; it is not kept
      if (pos < prompt.size()) {
        token = prompt[pos];  // still reading its prompt
      } else if (!stopped[size_t(r)] && made[size_t(r)] < o.max_new_tokens) {
        token = sampled[r].item<int64_t>();
        out[size_t(r)].push_back(token);
        ++made[size_t(r)];
        if (o.stop_at_eos && token == eos) stopped[size_t(r)] = 1;
      }
      next[r] = token;
      all_done = all_done && pos >= prompt.size() && (stopped[size_t(r)] || made[size_t(r)] >= o.max_new_tokens);
    }
    if (all_done) break;
    logits = model.step(next.to(device), cache);
  }
  return out;
}

std::vector<int64_t> generate(MambaLMImpl& model, const std::vector<int64_t>& prompt,
                              const GenerationOptions& options, torch::Device device) {
  const at::Tensor ids = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(device);
  const at::Tensor out = generate(model, ids, options).squeeze(0).contiguous();
  return std::vector<int64_t>(out.data_ptr<int64_t>(), out.data_ptr<int64_t>() + out.numel());
}

}  // namespace mcd
