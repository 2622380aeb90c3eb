// The seam for parameter-efficient fine-tuning (peft/, METHOD.md §4): a trainable change to one of
// a mixer's two projections, in_proj (2E × D) or out_proj (D × E). Every path of the mixer
// honours it: the op-by-op, state-returning and step paths call forward(); the fused CUDA mixer,
// which consumes out_proj's weight inside one autograd node, gets effective_weight() and is taken
// only while weight_form_is_exact(). Merging for deployment folds effective_weight() into W.
#pragma once

#include <memory>
#include <vector>

#include "model/channel_slot.h"

namespace mcd {

enum class Projection { kIn, kOut };
const char* projection_name(Projection which);  // "in_proj" | "out_proj"

class ProjectionAdapterImpl : public torch::nn::Module {
 public:
  ~ProjectionAdapterImpl() override = default;
  // x (…, in) → (…, out) for the base weight (out, in) and bias (out) or undefined. The default is
  // the weight form; an adapter whose training-time output differs (LoRA dropout) overrides it.
  virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
  // W_eff (same shape as weight): the merged weight, e.g. W + (α/r)·B·A, or diag(l)·W.
  virtual at::Tensor effective_weight(const at::Tensor& weight) = 0;
  // b_eff for the base bias (undefined stays undefined unless the adapter adds one).
  virtual at::Tensor effective_bias(const at::Tensor& bias) { return bias; }
  // Whether forward() equals linear(x, effective_weight(W), effective_bias(b)) in the current mode.
  virtual bool weight_form_is_exact() const { return true; }
  // The adapter's tensors indexed by the mixer's inner channel (names relative to the adapter).
  virtual std::vector<ChannelSlot> channel_slots() { return {}; }
};
using ProjectionAdapter = std::shared_ptr<ProjectionAdapterImpl>;

}  // namespace mcd
