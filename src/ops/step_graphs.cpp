// CUDA graphs of a training step (see step_graphs.h).
#include "ops/step_graphs.h"

#include <map>

#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace mcd::ops {

bool StepGraphs::available(const torch::Device& device) {
#ifdef MCD_WITH_CUDA
  return device.is_cuda() && cuda_available();
#else
  (void)device;
  return false;
#endif
}

#ifdef MCD_WITH_CUDA
struct StepGraphs::Impl {
  struct Entry {
    bool warmed = false;  // ran eagerly once
    std::unique_ptr<at::cuda::CUDAGraph> graph;
  };
  std::vector<at::Tensor> params;
  int64_t max_graphs;
  c10::cuda::CUDAStream stream;
  c10::cuda::CUDAStreamGuard guard;
  decltype(at::cuda::graph_pool_handle()) pool;
  at::Tensor loss;  // every graph copies its loss here (made outside the pool)
  std::map<std::string, Entry> entries;
  int64_t captured = 0, replays = 0;

  Impl(const torch::Device& device, std::vector<at::Tensor> p, int64_t max)
      : params(std::move(p)),
        max_graphs(max),
        stream(c10::cuda::getStreamFromPool(false, device.index())),
        guard(sync_then(stream)),
        pool(at::cuda::graph_pool_handle()) {}

  // The side stream starts after everything queued so far on the device (the model's upload, the
  // optimizer state, the staged inputs of the caller's default stream).
  static c10::cuda::CUDAStream sync_then(c10::cuda::CUDAStream s) {
    torch::cuda::synchronize(s.device_index());
    return s;
  }

  std::vector<at::Tensor> gradients() const {
    std::vector<at::Tensor> g;
    for (const auto& p : params)
      if (p.grad().defined()) g.push_back(p.grad());
    return g;
  }
};

StepGraphs::StepGraphs(const torch::Device& device, std::vector<at::Tensor> params, int64_t max_graphs) {
  MCD_CHECK(available(device), "CUDA graphs need a CUDA build and a CUDA device, got ", device.str());
  MCD_CHECK(max_graphs >= 0, "max_graphs must be >= 0, got ", max_graphs);
  impl_ = std::make_unique<Impl>(device, std::move(params), max_graphs);
}

StepGraphs::~StepGraphs() {
  if (impl_) impl_->stream.synchronize();  // work after this object runs on the previous stream
}

void StepGraphs::zero_gradients() {
  const std::vector<at::Tensor> g = impl_->gradients();
  if (!g.empty()) at::_foreach_zero_(g);
}

at::Tensor StepGraphs::forward_backward(const std::string& key, const std::function<at::Tensor()>& loss_fn) {
  Impl& s = *impl_;
  Impl::Entry& e = s.entries[key];
  if (e.graph) {
    e.graph->replay();
    ++s.replays;
    return s.loss;
  }
  if (!e.warmed || s.captured >= s.max_graphs) {
    const at::Tensor loss = loss_fn();
    loss.backward();
    e.warmed = true;
    return loss.detach();
  }
  // Every gradient exists before the capture (a parameter the eager steps left without one gets
  // zeros), so the captured backward accumulates into tensors outside the graphs' pool.
  std::vector<const void*> before;
  for (auto& p : s.params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    before.push_back(p.grad().data_ptr());
  }
  if (!s.loss.defined()) s.loss = torch::zeros({}, s.params.front().options().dtype(at::kFloat));
  s.stream.synchronize();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  graph->capture_begin(s.pool);
  {
    const at::Tensor loss = loss_fn();
    loss.backward();
    s.loss.copy_(loss.detach());
  }
  graph->capture_end();
  for (size_t i = 0; i < s.params.size(); ++i)
    MCD_CHECK(s.params[i].grad().data_ptr() == before[i],
              "CUDA graph capture: the backward replaced gradient tensor ", i, " instead of accumulating into it");
  e.graph = std::move(graph);
  ++s.captured;
  e.graph->replay();
  ++s.replays;
  return s.loss;
}

int64_t StepGraphs::graphs() const { return impl_->captured; }
int64_t StepGraphs::replays() const { return impl_->replays; }

#else
struct StepGraphs::Impl {};
StepGraphs::StepGraphs(const torch::Device& device, std::vector<at::Tensor>, int64_t) {
  fail(cat("CUDA graphs need a CUDA build (this one has no CUDA); device ", device.str()));
}
StepGraphs::~StepGraphs() = default;
void StepGraphs::zero_gradients() {}
at::Tensor StepGraphs::forward_backward(const std::string&, const std::function<at::Tensor()>&) {
  fail("CUDA graphs need a CUDA build");
}
int64_t StepGraphs::graphs() const { return 0; }
int64_t StepGraphs::replays() const { return 0; }
#endif

}  // namespace mcd::ops
