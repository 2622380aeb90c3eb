// CUDA graphs of a training step's forward and backward. A fine-tuning step of a small model on a
// fast GPU is bound by the host: ~1000 kernel launches with autograd's bookkeeping take ~10 ms
// where the device needs ~2 ms, and every adapter's few extra kernels show up one for one in the
// step time. A graph replay launches the step's kernels in one call.
//
// One graph per input-shape key (the objective stages each step's inputs into fixed device
// buffers for its key, Objective::stage_micro_batch). A key's first step runs eagerly: it warms up
// the libraries (cuBLAS handles and workspaces of this stream and of autograd's device thread) and
// creates the gradients. Its second step is captured and replayed; later steps are replayed.
// Invariants that make a replay the same step as an eager one:
//   - everything runs on one side stream (capture cannot use the legacy default stream), held for
//     the object's lifetime;
//   - the captured backward forms the gradients as values (autograd::grad) and the replays
//     rewrite those very tensors, which then are the parameters' gradients: no zeroing pass and no
//     accumulating add per parameter (ops/step_gradients.h says the rules, including accumulation
//     over micro-batches and several keys writing one set of buffers);
//   - the only tensors of the graphs' memory pool that outlive a capture are those gradient
//     buffers, held for the object's lifetime (the loss is copied out to a buffer made before the
//     capture): a live block is never handed to another capture, so all graphs share one pool,
//     whatever their order;
//   - random draws (dropout) read the default CUDA generator's seed and offset at replay, so a
//     replay after the same seeding draws the same masks as an eager step.
// Steps that cannot be graphed run eagerly through the same object (more keys than max_graphs).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "util/torch_compat.h"

namespace mcd::ops {

class StepGraphs {
 public:
  // Whether graphs can run for a model on `device` (a CUDA build and a CUDA device).
  static bool available(const torch::Device& device);

  // `params`: the trained parameters (their gradients are the graphs' outputs); those that do not
  // require a gradient are left alone.
  // `share_memory_with`: another object whose side stream and memory pool this one uses (several
  // models' steps replayed one after another, as `profile` interleaves them: the graphs then hold
  // the largest step's activations, not their sum). Safe by the invariants above: replays on one
  // stream never overlap, and nothing in the pool outlives a replay.
  static constexpr int64_t kDefaultMaxGraphs = 16;
  StepGraphs(const torch::Device& device, std::vector<at::Tensor> params, int64_t max_graphs = kDefaultMaxGraphs,
             const StepGraphs* share_memory_with = nullptr);
  // Gradients that are the graphs' buffers become copies; the last owner of the side stream waits
  // for it, then restores the previous stream.
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // A new step: drops every gradient, as the optimizer's zero_grad with set_to_none would (no
  // kernel); the step's forward_backward then writes them. Without it, forward_backward adds to
  // them. An eager backward between the two (a regulariser's) adds as usual, unless the step then
  // replays a graph, whose gradients replace the step's (train/loop.h: such objectives run eagerly).
  void begin_step();

  // Forward and backward of one step whose inputs the objective staged for `key`: `loss_fn`
  // computes the loss (under whatever autocast it sets) from the staged buffers; this
  // back-propagates it into the parameters' gradients. Returns the loss, valid until the next call. An error while capturing
  // (out of memory, an operation a capture cannot hold) ends the capture and is rethrown with the key.
  at::Tensor forward_backward(const std::string& key, const std::function<at::Tensor()>& loss_fn);

  int64_t graphs() const;   // captured so far
  int64_t replays() const;  // steps that ran as a replay

 private:
  struct Shared;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcd::ops
