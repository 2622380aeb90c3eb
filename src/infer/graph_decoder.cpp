// CUDA-graph decoding (see graph_decoder.h).
#include "infer/graph_decoder.h"

#include <algorithm>

#include "model/generation.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "infer/side_stream_capture.h"
#endif

namespace mcd::infer {

bool graph_decoding_available() {
#ifdef MCD_WITH_CUDA
  return cuda_available();
#else
  return false;
#endif
}

#ifdef MCD_WITH_CUDA
struct GraphDecoder::Impl {
  MambaLMImpl& model;
  InferenceCache cache;
  // Fixed buffers the graph reads and writes: the step reads `token` and writes the next one there.
  at::Tensor token, logits, head_workspace;
  at::cuda::CUDAGraph graph;
  int64_t real_vocab;
  Impl(MambaLMImpl& m, int64_t batch) : model(m), cache(m.new_cache(batch)), real_vocab(m.config().real_vocab_size()) {}
};

GraphDecoder::GraphDecoder(MambaLMImpl& model, int64_t batch) {
  MCD_CHECK(graph_decoding_available(), "graph decoding needs a CUDA build and a CUDA device");
  MCD_CHECK(batch >= 1, "graph decoding: batch must be >= 1, got ", batch);
  const torch::Device device = model.parameters().front().device();
  MCD_CHECK(device.is_cuda(), "graph decoding: the model must be on a CUDA device, it is on ", device.str());
  model.eval();
  impl_ = std::make_unique<Impl>(model, batch);
  Impl& s = *impl_;
  const int64_t vocab = model.head_weight().size(0);
  s.token = torch::zeros({batch}, torch::dtype(torch::kLong).device(device));
  s.logits = torch::empty({batch, vocab}, torch::dtype(torch::kFloat).device(device));
  s.head_workspace = torch::zeros({batch + 1}, torch::dtype(torch::kLong).device(device));
  torch::NoGradGuard no_grad;
  // The warm-up step runs on a scratch cache (side_stream_capture.h).
  capture_after_warmup(
      s.graph, device,
      [&] {
        InferenceCache scratch = model.new_cache(batch);
        at::Tensor scratch_token = s.token.clone();
        model.step_greedy_into(scratch_token, scratch, s.logits, scratch_token, s.head_workspace);
      },
      // Greedy over the real vocabulary (the embedding's padding rows are never produced, as generate
      // masks them); the LM head and the argmax are one kernel on CUDA (MambaLMImpl::step_greedy_into).
      [&] { model.step_greedy_into(s.token, s.cache, s.logits, s.token, s.head_workspace); });
  s.cache.reset();
}

// A replay may still run: its buffers live in the graph's memory pool, which the graph hands back to
// the caching allocator on destruction, for reuse on the capture stream without waiting for the
// replay's stream. Wait for the device first (a test that built the next decoder right away found
// its token buffer overwritten by the previous decoder's last replay).
GraphDecoder::~GraphDecoder() {
  if (impl_) torch::cuda::synchronize(impl_->token.device().index());
}

at::Tensor GraphDecoder::prefill(const at::Tensor& prompt) {
  Impl& s = *impl_;
  MCD_CHECK(prompt.dim() == 2 && prompt.size(0) == s.token.size(0) && prompt.size(1) >= 1,
            "graph decoding: the prompt must be (", s.token.size(0), ", L >= 1), got ", prompt.sizes());
  torch::NoGradGuard no_grad;
  s.cache.reset();
  const at::Tensor last = s.model.prefill(prompt.to(s.token.device(), torch::kLong), s.cache);
  s.logits.copy_(last);  // what sampling reads (generate_graph_batch)
  s.token.copy_(last.narrow(-1, 0, s.real_vocab).argmax(-1));
  return s.token;
}

at::Tensor GraphDecoder::step() {
  impl_->graph.replay();
  return impl_->token;
}

at::Tensor GraphDecoder::step(const at::Tensor& tokens) {
  Impl& s = *impl_;
  MCD_CHECK(tokens.dim() == 1 && tokens.size(0) == s.token.size(0), "graph decoding: step tokens must be (",
            s.token.size(0), "), got ", tokens.sizes());
  s.token.copy_(tokens);
  s.graph.replay();
  return s.token;
}

const at::Tensor& GraphDecoder::logits() const { return impl_->logits; }
int64_t GraphDecoder::batch() const { return impl_->token.size(0); }
const InferenceCache& GraphDecoder::cache() const { return impl_->cache; }

#else
struct GraphDecoder::Impl {};
GraphDecoder::GraphDecoder(MambaLMImpl&, int64_t) {
  fail("graph decoding needs a CUDA build (this one has no CUDA)");
}
GraphDecoder::~GraphDecoder() = default;
at::Tensor GraphDecoder::prefill(const at::Tensor&) { fail("graph decoding needs a CUDA build"); }
at::Tensor GraphDecoder::step() { fail("graph decoding needs a CUDA build"); }
at::Tensor GraphDecoder::step(const at::Tensor&) { fail("graph decoding needs a CUDA build"); }
const at::Tensor& GraphDecoder::logits() const { fail("graph decoding needs a CUDA build"); }
int64_t GraphDecoder::batch() const { return 0; }
const InferenceCache& GraphDecoder::cache() const { fail("graph decoding needs a CUDA build"); }
#endif

std::vector<std::vector<int64_t>> generate_graph_batch(MambaLMImpl& model,
                                                       const std::vector<std::vector<int64_t>>& prompts,
                                                       const GenerationOptions& options, const TokenCallback& on_token) {
  validate(options);
  check_prompts(model.config(), prompts);  // before the capture
  if (options.max_new_tokens == 0) return prompts;  // nothing to step
  GraphDecoder decoder(model, int64_t(prompts.size()));
  // The token buffer the graph's argmax writes is overwritten by the next replay; the loop copies
  // what it keeps before stepping.
  const DecodeSteps graph{[&](const at::Tensor& prefix) {
                            const at::Tensor argmax = decoder.prefill(prefix);
                            return DecodeOutput{decoder.logits(), argmax};
                          },
                          [&](const at::Tensor& token) {
                            const at::Tensor argmax = decoder.step(token);
                            return DecodeOutput{decoder.logits(), argmax};
                          }};
  return generate_batch(model.config(), decoder.logits().device(), graph, prompts, options, on_token);
}

at::Tensor generate_graph(MambaLMImpl& model, const at::Tensor& prompts, const GenerationOptions& options) {
  return pad_rows(generate_graph_batch(model, prompt_rows(prompts), options), eos_token(options, model.config()));
}

}  // namespace mcd::infer
