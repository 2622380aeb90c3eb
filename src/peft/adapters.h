// The two adapter kinds of SGH-PEFT (METHOD.md §4) as projection adapters (model/projection_adapter.h)
// on a mixer's in_proj (2E × D) or out_proj (D × E):
//   LoRA  W' = W + (α/r)·B·A, A (r × in) uniform(±1/√in), B (out × r) zeros, dropout on the
//         LoRA branch's input while training;
//   IA³   W' = diag(l)·W, b' = l ⊙ b, l (out) initialised to 1.
// On a gated (unpruned) model an adapter may be restricted to the kept channels: LoRA's update
// then reaches only in_proj's rows / out_proj's columns of kept channels, IA³'s scale only
// in_proj's rows of kept channels (METHOD §4 "masked updates"). The mask is a channel slot, so CSP's
// permutation moves it with the channels. On a physically pruned model every channel is kept.
#pragma once

#include <cstdint>

#include "model/projection_adapter.h"

namespace mcd::peft {

struct LoraOptions {
  int64_t rank = 16;
  double alpha = 32;     // the update is scaled by alpha / rank
  double dropout = 0.05; // on the LoRA branch's input, training mode only
};

class LoraAdapterImpl : public ProjectionAdapterImpl {
 public:
  // For `which` of a mixer with d_model D and inner width E. `keep` (E) bool/0-1, or undefined for
  // every channel. A is drawn from `gen`; B starts at zero so the adapted model starts as the base.
  LoraAdapterImpl(Projection which, int64_t d_model, int64_t d_inner, const LoraOptions& options,
                  at::Generator gen, const at::Tensor& keep = at::Tensor());
  at::Tensor forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) override;
  at::Tensor effective_weight(const at::Tensor& weight) override;
  bool weight_form_is_exact() const override;
  std::vector<ChannelSlot> channel_slots() override;

  at::Tensor delta_weight();  // (α/r)·(masked B)·(masked A), in float32/float64 like A
  Projection which;
  LoraOptions options;
  at::Tensor lora_A, lora_B;  // (r, in), (out, r)
  at::Tensor channel_mask;    // buffer: in_proj (2E) on B's rows, out_proj (E) on A's columns; undefined: all

 private:
  at::Tensor masked_A() const;
  at::Tensor masked_B() const;
};


class Ia3AdapterImpl : public ProjectionAdapterImpl {
 public:
  // `keep` as for LoRA; only in_proj's scale is channel-indexed (out_proj's output is D-indexed).
  Ia3AdapterImpl(Projection which, int64_t d_model, int64_t d_inner, const at::Tensor& keep = at::Tensor());
  at::Tensor effective_weight(const at::Tensor& weight) override;
  at::Tensor effective_bias(const at::Tensor& bias) override;
  std::vector<ChannelSlot> channel_slots() override;

  at::Tensor effective_scale() const;  // l where the channel is kept, 1 elsewhere
  Projection which;
  at::Tensor ia3_scale;     // (out)
  at::Tensor channel_mask;  // buffer (2E) for in_proj; undefined: all (always for out_proj)
};


// "lora" | "ia3" for an adapter made here, "" for any other.
std::string adapter_kind(const ProjectionAdapter& adapter);

// Folds `adapter` into the projection's weight (and bias), in place, without autograd.
void merge_into(const ProjectionAdapter& adapter, at::Tensor& weight, at::Tensor& bias);

}  // namespace mcd::peft
