// Where a graphed training step's gradients live (ops/step_graphs.h), kept apart from the CUDA
// graphs so that its rules run, and are tested, on any device.
//
// Why: a captured backward that accumulates into gradients made before the capture costs, per
// parameter and step, a zeroing pass and an add (read two, write one) on top of the kernel that
// forms the gradient: ~0.8 ms of a 130M step on an H100 (the trace's 242 extra elementwise
// kernels, one per parameter). Instead the capture asks autograd for the gradients as values
// (autograd::grad, no accumulation) and keeps those tensors, which every replay rewrites in place,
// as the parameters' gradients: nothing is zeroed, added or copied.
//
// Rules:
//   - begin_step() drops every gradient (as LibTorch's zero_grad with set_to_none: no kernel); the
//     step's first replay then makes the output buffers the gradients (a parameter it does not
//     reach has none), and an eager backward creates them as usual;
//   - without begin_step() a step adds to the gradients (micro-batch accumulation);
//   - every output buffer has its parameter's shape and strides and no memory of another (a
//     gradient that fails this, e.g. an expanded or shared tensor, is copied into a buffer of its
//     own), since clipping scales gradients in place;
//   - several captures (one per input-shape key) write the same buffers: the first capture that
//     reaches a parameter provides its buffer, later ones copy into it;
//   - a gradient that is an output buffer is copied out before anything could overwrite it while
//     it must hold its value (an accumulating replay, an accumulating eager backward, release()).
#pragma once

#include <vector>

#include "util/torch_compat.h"

namespace mcd::ops {

class StepGradients {
 public:
  explicit StepGradients(std::vector<at::Tensor> params);  // each must require grad

  const std::vector<at::Tensor>& params() const { return params_; }
  const std::vector<at::Tensor>& outputs() const { return outputs_; }  // undefined where none yet

  // Inside a capture: takes one step's gradients (one per parameter, undefined where the step does
  // not reach it) as the outputs the replays write. Returns which parameters this capture writes.
  std::vector<bool> adopt(const std::vector<at::Tensor>& grads);

  void begin_step();
  bool fresh() const { return fresh_; }  // since begin_step, nothing has written a gradient

  // Before a capture or a replay: a fresh step drops every gradient (the replay's replace them, and
  // their memory is free for the capture); an accumulating one gives a gradient that is an output
  // buffer its own copy.
  void before_replay();
  // After a replay that wrote `written` (adopt's answer): fresh, each written parameter's gradient
  // is its output buffer; accumulating, the buffer is added to the gradient.
  void finish_replay(const std::vector<bool>& written);
  // Around an eager backward (which accumulates into the gradients itself): before it, a gradient
  // that is an output buffer gets its own copy.
  void before_eager();
  void finish_eager() { fresh_ = false; }
  // Gradients that are output buffers become copies (before the buffers' memory goes away).
  void release();

 private:
  bool is_output(size_t i) const;
  void copy_out_of_buffers();  // each gradient that is an output buffer becomes a copy of its own
  std::vector<at::Tensor> params_;
  std::vector<at::Tensor> outputs_;
  bool fresh_ = false;  // before any begin_step a step adds to whatever gradients exist
};

}  // namespace mcd::ops
