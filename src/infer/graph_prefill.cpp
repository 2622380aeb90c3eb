// CUDA-graph prefill (see graph_prefill.h).
#include "infer/graph_prefill.h"

#include "infer/graph_decoder.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "infer/side_stream_capture.h"
#endif

namespace mcd::infer {

#ifdef MCD_WITH_CUDA
struct GraphPrefill::Impl {
  MambaLMImpl& model;
  int64_t batch, length;
  InferenceCache cache;
  at::Tensor ids, logits;  // the graph's input and output buffers
  at::cuda::CUDAGraph graph;
  Impl(MambaLMImpl& m, int64_t b, int64_t l) : model(m), batch(b), length(l), cache(m.new_cache(b)) {}
};

GraphPrefill::GraphPrefill(MambaLMImpl& model, int64_t batch, int64_t length) {
  MCD_CHECK(graph_decoding_available(), "graph prefill needs a CUDA build and a CUDA device");
  MCD_CHECK(batch >= 1 && length >= 1, "graph prefill: batch and length must be >= 1, got ", batch, " and ", length);
  const torch::Device device = model.parameters().front().device();
  MCD_CHECK(device.is_cuda(), "graph prefill: the model must be on a CUDA device, it is on ", device.str());
  model.eval();
  impl_ = std::make_unique<Impl>(model, batch, length);
  Impl& s = *impl_;
  s.ids = torch::zeros({batch, length}, torch::dtype(torch::kLong).device(device));
  torch::NoGradGuard no_grad;
  // The warm-up prefill runs on a scratch cache (side_stream_capture.h). The prefill starts from
  // zero states and writes the final ones into the cache's buffers, so a replay needs no reset; only
  // the host's token count (seqlen) is set after each replay.
  capture_after_warmup(
      s.graph, device,
      [&] {
        InferenceCache scratch = model.new_cache(batch);
        (void)model.prefill(s.ids, scratch);
      },
      [&] { s.logits = model.prefill(s.ids, s.cache); });
  s.cache.seqlen = 0;
}

// As GraphDecoder's: a replay in flight still uses the graph's pool, which destruction releases.
GraphPrefill::~GraphPrefill() {
  if (impl_) torch::cuda::synchronize(impl_->ids.device().index());
}

const at::Tensor& GraphPrefill::run(const at::Tensor& ids) {
  Impl& s = *impl_;
  MCD_CHECK(ids.dim() == 2 && ids.size(0) == s.batch && ids.size(1) == s.length, "graph prefill: ids must be (",
            s.batch, ", ", s.length, "), got ", ids.sizes());
  const at::Tensor host = ids.to(torch::kCPU, torch::kLong);
  const int64_t vocab = s.model.config().vocab_size;
  const auto [mn, mx] = at::aminmax(host);
  MCD_CHECK(mn.item<int64_t>() >= 0 && mx.item<int64_t>() < vocab, "graph prefill: token ids must be in [0, ", vocab,
            "), got [", mn.item<int64_t>(), ", ", mx.item<int64_t>(), "]");
  s.ids.copy_(host);
  return replay();
}

const at::Tensor& GraphPrefill::replay() {
  Impl& s = *impl_;
  s.graph.replay();
  s.cache.seqlen = s.length;
  return s.logits;
}

const InferenceCache& GraphPrefill::cache() const { return impl_->cache; }

#else
struct GraphPrefill::Impl {};
GraphPrefill::GraphPrefill(MambaLMImpl&, int64_t, int64_t) {
  fail("graph prefill needs a CUDA build (this one has no CUDA)");
}
GraphPrefill::~GraphPrefill() = default;
const at::Tensor& GraphPrefill::run(const at::Tensor&) { fail("graph prefill needs a CUDA build"); }
const at::Tensor& GraphPrefill::replay() { fail("graph prefill needs a CUDA build"); }
const InferenceCache& GraphPrefill::cache() const { fail("graph prefill needs a CUDA build"); }
#endif

}  // namespace mcd::infer
