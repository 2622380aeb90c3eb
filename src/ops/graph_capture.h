// Whether the calling thread's current CUDA stream is capturing a CUDA graph (ops/step_graphs.h,
// infer/graph_decoder.h). Host-side checks that read device values back (.item(), a copy to the
// host) must not run then: a capture may not synchronise, and a replay would not run them anyway.
// Those inputs are checked on the host before they are staged into the graph's buffers.
#pragma once

namespace mcd::ops {

// False in builds without CUDA and when CUDA is not initialised on this thread's device.
bool capturing_cuda_graph();

// While an object of this class lives on a thread, the caller vouches that it checked the model
// inputs it passes on that thread on the host (token ids in range, lengths in [1, L]): the model
// then skips reading them back from the device, a wait for the device in every step otherwise.
class InputsCheckedOnHost {
 public:
  InputsCheckedOnHost();
  ~InputsCheckedOnHost();
  InputsCheckedOnHost(const InputsCheckedOnHost&) = delete;
  InputsCheckedOnHost& operator=(const InputsCheckedOnHost&) = delete;

 private:
  bool saved_;
};

// Whether a model on a CUDA device may skip its device read-back checks now: during a capture or
// inside InputsCheckedOnHost.
bool skip_device_input_checks();

}  // namespace mcd::ops
