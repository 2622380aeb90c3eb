// CUDA graphs of a training step (see step_graphs.h).
#include "ops/step_graphs.h"

#include <map>

#include "ops/step_gradients.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
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
// The side stream and the memory pool, shared by the StepGraphs made with `share_memory_with`. The
// guard keeps the stream current until the last owner goes.
struct StepGraphs::Shared {
  c10::cuda::CUDAStream stream;
  c10::cuda::CUDAStreamGuard guard;
  decltype(at::cuda::graph_pool_handle()) pool;

  explicit Shared(const torch::Device& device)
      : stream(c10::cuda::getStreamFromPool(false, device.index())),
        guard(sync_then(stream)),
        pool(at::cuda::graph_pool_handle()) {}
  ~Shared() {
    // Work after this object runs on the previous stream. A destructor must not throw: an error
    // here (a capture abandoned by an exception already on its way) is reported by that exception.
    try {
      stream.synchronize();
    } catch (const std::exception&) {
    }
  }

  // The side stream starts after everything queued so far on the device (the model's upload, the
  // optimizer state, the staged inputs of the caller's default stream).
  static c10::cuda::CUDAStream sync_then(c10::cuda::CUDAStream s) {
    torch::cuda::synchronize(s.device_index());
    return s;
  }
};

struct StepGraphs::Impl {
  struct Entry {
    bool warmed = false;  // ran eagerly once
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    std::vector<bool> written;  // the parameters whose gradients its replay writes
  };
  StepGradients grads;
  int64_t max_graphs;
  std::shared_ptr<Shared> shared;
  at::Tensor loss;  // every graph copies its loss here (made outside the pool)
  std::map<std::string, Entry> entries;
  int64_t captured = 0, replays = 0;

  Impl(std::vector<at::Tensor> p, int64_t max, std::shared_ptr<Shared> sh)
      : grads(std::move(p)), max_graphs(max), shared(std::move(sh)) {}
  ~Impl() {
    // The buffers' memory belongs to the graphs' pool; a gradient read after this object is gone
    // must not depend on it. (A destructor must not throw: see Shared.)
    try {
      grads.release();
    } catch (const std::exception&) {
    }
  }

  void replay(Entry& e) {
    grads.before_replay();
    e.graph->replay();
    grads.finish_replay(e.written);
    ++replays;
  }
};

namespace {
// Ends a capture that an exception interrupted, so that the stream can run (and be waited for)
// again and the allocator stops routing to the graphs' pool; the exception on its way says why.
void abandon_capture(at::cuda::CUDAGraph& graph, c10::cuda::CUDAStream stream) {
  try {
    graph.capture_end();
  } catch (const std::exception&) {
  }
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t g = nullptr;
    if (cudaStreamEndCapture(stream.stream(), &g) == cudaSuccess && g != nullptr) cudaGraphDestroy(g);
  }
  (void)cudaGetLastError();  // the capture's (non-sticky) error is not the next call's
}
}  // namespace

StepGraphs::StepGraphs(const torch::Device& device, std::vector<at::Tensor> params, int64_t max_graphs,
                       const StepGraphs* share_memory_with) {
  MCD_CHECK(available(device), "CUDA graphs need a CUDA build and a CUDA device, got ", device.str());
  MCD_CHECK(max_graphs >= 0, "max_graphs must be >= 0, got ", max_graphs);
  std::shared_ptr<Shared> shared = share_memory_with ? share_memory_with->impl_->shared : nullptr;
  MCD_CHECK(!shared || shared->stream.device_index() == (device.index() < 0 ? 0 : device.index()),
            "CUDA graphs can share memory only on one device");
  if (!shared) shared = std::make_shared<Shared>(device);
  std::vector<at::Tensor> trained;
  for (auto& p : params)
    if (p.requires_grad()) trained.push_back(std::move(p));
  MCD_CHECK(!trained.empty(), "CUDA graphs of a training step need a parameter that requires a gradient");
  impl_ = std::make_unique<Impl>(std::move(trained), max_graphs, std::move(shared));
}

StepGraphs::~StepGraphs() = default;  // the last owner of the shared stream waits for it

void StepGraphs::begin_step() { impl_->grads.begin_step(); }

at::Tensor StepGraphs::forward_backward(const std::string& key, const std::function<at::Tensor()>& loss_fn) {
  Impl& s = *impl_;
  Impl::Entry& e = s.entries[key];
  if (e.graph) {
    s.replay(e);
    return s.loss;
  }
  if (!e.warmed || s.captured >= s.max_graphs) {
    s.grads.before_eager();
    const at::Tensor loss = loss_fn();
    loss.backward();
    s.grads.finish_eager();
    e.warmed = true;
    return loss.detach();
  }
  if (!s.loss.defined()) s.loss = torch::zeros({}, s.grads.params().front().options().dtype(at::kFloat));
  s.grads.before_replay();  // a fresh step's old gradients go before the capture needs the memory
  s.shared->stream.synchronize();
  // The eager steps' cached blocks are of no use to the graph, whose allocations come from its own
  // pool: give them back first (several models' graphs did not fit beside them, 370M on an H100).
  c10::cuda::CUDACachingAllocator::emptyCache();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  graph->capture_begin(s.shared->pool);
  try {
    const at::Tensor loss = loss_fn();
    // Values, not accumulation: the replays rewrite these tensors (ops/step_gradients.h).
    const std::vector<at::Tensor> g = torch::autograd::grad({loss}, s.grads.params(), {}, /*retain_graph=*/false,
                                                            /*create_graph=*/false, /*allow_unused=*/true);
    e.written = s.grads.adopt(g);
    s.loss.copy_(loss.detach());
  } catch (const std::exception& e) {
    abandon_capture(*graph, s.shared->stream);
    fail(cat("CUDA graph capture of the training step '", key, "' failed: ", e.what()));
  }
  graph->capture_end();
  e.graph = std::move(graph);
  ++s.captured;
  s.replay(e);
  return s.loss;
}

int64_t StepGraphs::graphs() const { return impl_->captured; }
int64_t StepGraphs::replays() const { return impl_->replays; }

#else
struct StepGraphs::Shared {};
struct StepGraphs::Impl {};
StepGraphs::StepGraphs(const torch::Device& device, std::vector<at::Tensor>, int64_t, const StepGraphs*) {
  fail(cat("CUDA graphs need a CUDA build (this one has no CUDA); device ", device.str()));
}
StepGraphs::~StepGraphs() = default;
void StepGraphs::begin_step() {}
at::Tensor StepGraphs::forward_backward(const std::string&, const std::function<at::Tensor()>&) {
  fail("CUDA graphs need a CUDA build");
}
int64_t StepGraphs::graphs() const { return 0; }
int64_t StepGraphs::replays() const { return 0; }
#endif

}  // namespace mcd::ops
