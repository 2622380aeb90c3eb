// Generation on the step mode (see generation.h).
#include "model/generation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace mcd {

void validate(const GenerationOptions& o) {
  MCD_CHECK(o.max_new_tokens >= 0, "max_new_tokens must be >= 0, got ", o.max_new_tokens);
  MCD_CHECK(o.top_k >= 0, "top_k must be >= 0, got ", o.top_k);
  MCD_CHECK(o.greedy || o.temperature > 0, "temperature must be positive, got ", o.temperature);
  MCD_CHECK(o.top_p > 0 && o.top_p <= 1, "top_p must be in (0, 1], got ", o.top_p);
  MCD_CHECK(o.min_p >= 0 && o.min_p <= 1, "min_p must be in [0, 1], got ", o.min_p);
  MCD_CHECK(o.repetition_penalty > 0, "repetition_penalty must be positive, got ", o.repetition_penalty);
}

GenerationOptions parse_sampling(const std::string& spec, const std::string& option) {
  GenerationOptions o;
  MCD_CHECK(!spec.empty(), option, ": empty (give greedy or KEY=VALUE items)");
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string item = spec.substr(start, comma - start);
    start = comma + 1;
    if (item == "greedy") {
      o.greedy = true;
      continue;
    }
    const size_t eq = item.find('=');
    MCD_CHECK(eq != std::string::npos, option, ": '", item, "' is neither greedy nor KEY=VALUE");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    static const char* const kKeys[] = {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed"};
    MCD_CHECK(std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys), option, ": unknown key '", key,
              "' in '", item, "' (valid: greedy, temperature, top_k, top_p, min_p, repetition_penalty, seed)");
    const bool integral = key == "top_k" || key == "seed";
    size_t used = 0;
    double v = 0;
    uint64_t whole = 0;
    try {
      if (integral && !value.empty() && value[0] != '-') whole = std::stoull(value, &used);
      else if (!integral) v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (integral) {
      MCD_CHECK(!value.empty() && used == value.size(), option, ": '", item, "' needs a whole number >= 0");
    } else {
      MCD_CHECK(!value.empty() && used == value.size() && std::isfinite(v), option, ": '", item,
                "' has no finite number after '='");
    }
    if (key == "temperature") o.temperature = v;
    else if (key == "top_p") o.top_p = v;
    else if (key == "min_p") o.min_p = v;
    else if (key == "repetition_penalty") o.repetition_penalty = v;
    else if (key == "top_k") o.top_k = int64_t(std::min<uint64_t>(whole, uint64_t(std::numeric_limits<int64_t>::max())));
    else o.seed = whole;
  }
  validate(o);
  return o;
}

at::Tensor sample_next(const at::Tensor& logits_in, const GenerationOptions& o, at::Generator& gen) {
  // (B, V) on its device, in float32 (float64 logits stay float64)
  const at::Tensor logits = logits_in.scalar_type() == at::kDouble ? logits_in : logits_in.to(at::kFloat);
  if (o.greedy) return logits.argmax(-1);
  validate(o);
  at::Tensor scores = logits / o.temperature;
  const double neg_inf = -std::numeric_limits<double>::infinity();
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
  if (o.min_p > 0) {
    // Relative to the most likely token, which always stays (its probability is the maximum).
    const at::Tensor probs = scores.softmax(-1);
    scores = scores.masked_fill(probs < std::get<0>(probs.max(-1, /*keepdim=*/true)) * o.min_p, neg_inf);
  }
  // One draw per row from softmax(scores): argmax of p / E with E ~ Exp(1) — the very ops at::multinomial runs for
  // one sample without replacement (so the same draws for a seed), without its validity checks, whose .item()
  // would make the host wait for the device at every token.
  const at::Tensor probs = scores.softmax(-1);
  return probs.div(torch::empty_like(probs).exponential_(1, gen)).argmax(-1);
}

at::Tensor apply_repetition_penalty(const at::Tensor& logits, const at::Tensor& seen, double penalty) {
  return torch::where(seen, torch::where(logits < 0, logits * penalty, logits / penalty), logits);
}

TokenSampler::TokenSampler(const GenerationOptions& options, int64_t batch, const ModelConfig& config,
                           torch::Device device)
    : options_(options), vocab_(config.real_vocab_size()), gen_(make_generator(options.seed, device)) {
  validate(options);
  // As wide as the embedding: a prompt may hold the padding rows' ids (never sampled, never penalised).
  if (options.repetition_penalty != 1.0)
    seen_ = torch::zeros({batch, config.vocab_size}, torch::dtype(torch::kBool).device(device));
}

void TokenSampler::observe(const at::Tensor& tokens) {
  if (seen_.defined()) seen_.scatter_(1, tokens.dim() == 1 ? tokens.unsqueeze(1) : tokens, true);
}

at::Tensor TokenSampler::next(const DecodeOutput& out) {
  const bool penalty = seen_.defined();
  if (options_.greedy && !penalty && out.argmax.defined()) return out.argmax;
  at::Tensor logits = out.logits.narrow(-1, 0, vocab_);  // the padding rows are never produced
  if (logits.scalar_type() != at::kDouble) logits = logits.to(at::kFloat);
  if (penalty) logits = apply_repetition_penalty(logits, seen_.narrow(1, 0, vocab_), options_.repetition_penalty);
  return sample_next(logits, options_, gen_);
}

int64_t eos_token(const GenerationOptions& o, const ModelConfig& c) {
  return o.eos_token_id >= 0 ? o.eos_token_id : c.eos_token_id;
}

void check_prompts(const ModelConfig& c, const std::vector<std::vector<int64_t>>& prompts) {
  MCD_CHECK(!prompts.empty(), "generate: no prompts");
  for (size_t r = 0; r < prompts.size(); ++r) {
    MCD_CHECK(!prompts[r].empty(), "generate: prompt ", r, " is empty");
    for (int64_t id : prompts[r])
      MCD_CHECK(id >= 0 && id < c.vocab_size, "generate: prompt ", r, " has token id ", id,
                " outside the vocabulary (", c.vocab_size, ")");
  }
}

namespace {
// What every row prefills at once: each checked prompt's first tokens up to the shortest prompt's
// length, (B, shortest) int64 on the CPU.
at::Tensor prompts_prefix(const std::vector<std::vector<int64_t>>& prompts) {
  size_t shortest = prompts[0].size();
  for (const auto& p : prompts) shortest = std::min(shortest, p.size());
  std::vector<int64_t> flat;
  flat.reserve(prompts.size() * shortest);
  for (const auto& p : prompts) flat.insert(flat.end(), p.begin(), p.begin() + int64_t(shortest));
  return torch::tensor(flat, torch::kLong).view({int64_t(prompts.size()), int64_t(shortest)});
}
}  // namespace

std::vector<std::vector<int64_t>> generate_batch(const ModelConfig& c, torch::Device device, const DecodeSteps& decoder,
                                                 const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& o, const TokenCallback& on_token) {
  torch::NoGradGuard no_grad;
  validate(o);
  check_prompts(c, prompts);
  const at::Tensor prefix = prompts_prefix(prompts);  // (B, shortest)
  const int64_t B = prefix.size(0);
  const size_t shortest = size_t(prefix.size(1));
  size_t longest = 0, end = 0;  // end: one past the last position any row needs
  for (const auto& p : prompts) {
    longest = std::max(longest, p.size());
    end = std::max(end, p.size() + size_t(o.max_new_tokens));
  }
  std::vector<std::vector<int64_t>> out = prompts;
  if (o.max_new_tokens == 0) return out;
  const int64_t eos = eos_token(o, c);
  const bool stop = o.stop_at_eos && eos >= 0;

  // Per position from `shortest` while some row still reads its prompt: each row's prompt token
  // (else 0) and whether it has one; built on the host once, read by the device step by step.
  const int64_t positions = int64_t(end - shortest), forced_positions = int64_t(longest - shortest);
  at::Tensor forced = torch::zeros({forced_positions, B}, torch::kLong);
  at::Tensor reading = torch::zeros({forced_positions, B}, torch::kBool);
  auto forced_at = forced.accessor<int64_t, 2>();
  auto reading_at = reading.accessor<bool, 2>();
  for (int64_t r = 0; r < B; ++r)
    for (size_t p = shortest; p < prompts[size_t(r)].size(); ++p) {
      forced_at[int64_t(p - shortest)][r] = prompts[size_t(r)][p];
      reading_at[int64_t(p - shortest)][r] = true;
    }
  forced = forced.to(device);
  reading = reading.to(device);

  TokenSampler sampler(o, B, c, device);
  const at::Tensor prefix_on_device = prefix.to(device);
  sampler.observe(prefix_on_device);
  DecodeOutput next = decoder.prefill(prefix_on_device);
  // Whether a row has produced EOS; read by the host every few tokens on a GPU (each read waits for
  // the device), every token on the CPU. Stopping later only wastes steps: the rows end at their EOS.
  at::Tensor finished = torch::zeros({B}, torch::dtype(torch::kBool).device(device));
  const int64_t check_every = device.is_cpu() ? 1 : 8;
  std::vector<at::Tensor> tokens;  // the token at each position from `shortest`, (B) on the device
  std::vector<int64_t> told(size_t(B), 0);  // streaming: tokens handed to on_token per row, -1 once it ended
  for (int64_t i = 0; i < positions; ++i) {
    at::Tensor token = sampler.next(next);
    if (i < forced_positions) token = torch::where(reading[i], forced[i], token);
    else if (token.is_same(next.argmax)) token = token.clone();  // the decoder's buffer: its next step overwrites it
    tokens.push_back(token);
    if (on_token) {
      const at::Tensor host = token.cpu();
      const auto host_at = host.accessor<int64_t, 1>();
      for (int64_t r = 0; r < B; ++r) {
        const size_t position = shortest + size_t(i);
        if (told[size_t(r)] < 0 || position < prompts[size_t(r)].size()) continue;  // ended, or still its prompt
        const int64_t id = host_at[r];
        const bool last = ++told[size_t(r)] == o.max_new_tokens || (stop && id == eos);
        on_token(r, id, last);
        if (last) told[size_t(r)] = -1;
      }
    }
    if (i + 1 == positions) break;
    if (stop) {
      const at::Tensor produced = token == eos;
      finished.logical_or_(i < forced_positions ? produced.logical_and(reading[i].logical_not()) : produced);
      if ((i + 1) % check_every == 0) {
        // Done: every row past its budget or finished.
        const at::Tensor done = finished.cpu();
        const auto done_at = done.accessor<bool, 1>();
        bool all_done = true;
        for (int64_t r = 0; r < B && all_done; ++r) {
          const size_t row_end = prompts[size_t(r)].size() + size_t(o.max_new_tokens);
          all_done = done_at[r] || shortest + size_t(i) + 1 >= row_end;
        }
        if (all_done) break;
      }
    }
    sampler.observe(token);
    next = decoder.step(token);
  }
  const at::Tensor all = torch::stack(tokens, 1).cpu();  // (B, decided): one copy to the host at the end
  const auto all_at = all.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const int64_t first = int64_t(prompts[size_t(r)].size() - shortest);  // its first generated position
    for (int64_t k = 0; k < o.max_new_tokens && first + k < all.size(1); ++k) {
      const int64_t id = all_at[r][first + k];
      out[size_t(r)].push_back(id);
      if (stop && id == eos) break;
    }
  }
  return out;
}

std::vector<std::vector<int64_t>> generate_batch(MambaLMImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& o, const TokenCallback& on_token) {
  const torch::Device device = model.backbone->embeddings->weight.device();
  InferenceCache cache = model.new_cache(int64_t(prompts.size()));
  const DecodeSteps eager{[&](const at::Tensor& prefix) { return DecodeOutput{model.prefill(prefix, cache), {}}; },
                          [&](const at::Tensor& token) { return DecodeOutput{model.step(token, cache), {}}; }};
  return generate_batch(model.config(), device, eager, prompts, o, on_token);
}

at::Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  at::Tensor out = torch::full({int64_t(rows.size()), int64_t(longest)}, pad, torch::kLong);
  for (size_t r = 0; r < rows.size(); ++r)
    std::copy(rows[r].begin(), rows[r].end(), out[int64_t(r)].data_ptr<int64_t>());
  return out;
}

std::vector<std::vector<int64_t>> prompt_rows(const at::Tensor& prompts) {
  MCD_CHECK(prompts.dim() == 2 && prompts.size(1) >= 1, "generate: prompts must be (B, L>=1), got ", prompts.sizes());
  const at::Tensor p = prompts.to(torch::kCPU, at::kLong).contiguous();
  std::vector<std::vector<int64_t>> rows;
  for (int64_t r = 0; r < p.size(0); ++r)
    rows.emplace_back(p[r].data_ptr<int64_t>(), p[r].data_ptr<int64_t>() + p.size(1));
  return rows;
}

at::Tensor generate(MambaLMImpl& model, const at::Tensor& prompts, const GenerationOptions& o) {
  return pad_rows(generate_batch(model, prompt_rows(prompts), o), eos_token(o, model.config()));
}

std::vector<int64_t> generate(MambaLMImpl& model, const std::vector<int64_t>& prompt,
                              const GenerationOptions& options, torch::Device device) {
  (void)device;  // the model's device decides; kept for callers that name it
  return generate_batch(model, {prompt}, options)[0];
}

}  // namespace mcd
