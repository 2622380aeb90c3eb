// Generation on the step mode (see generation.h).
#include "model/generation.h"

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
    if (c.real_vocab_size() < logits.size(-1))  // padding rows of the embedding: never produced
      logits.narrow(-1, c.real_vocab_size(), logits.size(-1) - c.real_vocab_size())
          .fill_(-std::numeric_limits<float>::infinity());
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

std::vector<int64_t> generate(MambaLMImpl& model, const std::vector<int64_t>& prompt,
                              const GenerationOptions& options, torch::Device device) {
  const at::Tensor ids = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(device);
  const at::Tensor out = generate(model, ids, options).squeeze(0).contiguous();
  return std::vector<int64_t>(out.data_ptr<int64_t>(), out.data_ptr<int64_t>() + out.numel());
}

}  // namespace mcd
