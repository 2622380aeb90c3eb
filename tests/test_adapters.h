// Projection adapters for the seam tests (model/projection_adapter.h): an IA³-like row scaling of
// in_proj, whose scale is channel-indexed (entries c and E + c), and a rank-2 additive change of
// out_proj computed on activations as LoRA does, whose A factor is channel-indexed (column c).
#pragma once

#include "model/mamba.h"
#include "util/torch_compat.h"

namespace mcd::test {

struct RowScaleImpl : ProjectionAdapterImpl {
  explicit RowScaleImpl(const at::Tensor& init) { scale = register_parameter("scale", init); }
  at::Tensor effective_weight(const at::Tensor& w) override { return w * scale.to(w.scalar_type()).unsqueeze(1); }
  at::Tensor effective_bias(const at::Tensor& b) override { return b.defined() ? b * scale.to(b.scalar_type()) : b; }
  std::vector<ChannelSlot> channel_slots() override { return {{"scale", scale, 0, 2, 1}}; }
  at::Tensor scale;  // (2E)
};

struct LowRankImpl : ProjectionAdapterImpl {
  LowRankImpl(const at::Tensor& a, const at::Tensor& b) {
    A = register_parameter("A", a);
    B = register_parameter("B", b);
  }
  at::Tensor effective_weight(const at::Tensor& w) override { return w + torch::mm(B, A).to(w.scalar_type()); }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) override {
    return torch::nn::functional::linear(x, w, bias) + torch::matmul(torch::matmul(x, A.t()), B.t());
  }
  std::vector<ChannelSlot> channel_slots() override { return {{"A", A, 1, 1, 1}}; }
  at::Tensor A, B;  // (r, E), (D, r)
};

// Both adapters on every mixer, with values drawn from `seed` (float64, moved with the model).
inline void attach_test_adapters(MambaLMImpl& m, uint64_t seed, at::ScalarType dtype = at::kDouble) {
  at::Generator gen = make_cpu_generator(seed);
  const auto device = m.backbone->embeddings->weight.device();
  for (auto& block : m.backbone->blocks) {
    auto& mx = *block->mixer;
    const int64_t E = mx.d_inner, D = mx.d_model;
    auto draw = [&](std::vector<int64_t> shape, double lo, double hi) {
      return torch::empty(shape, at::kDouble).uniform_(lo, hi, gen).to(device, dtype);
    };
    mx.set_adapter(Projection::kIn, std::make_shared<RowScaleImpl>(draw({2 * E}, 0.5, 1.5)));
    mx.set_adapter(Projection::kOut, std::make_shared<LowRankImpl>(draw({2, E}, -0.1, 0.1), draw({D, 2}, -0.1, 0.1)));
  }
}

// Folds every adapter into its projection (weight and bias) and removes it.
inline void merge_test_adapters(MambaLMImpl& m) {
  torch::NoGradGuard no_grad;
  for (auto& block : m.backbone->blocks) {
    auto& mx = *block->mixer;
    for (Projection p : {Projection::kIn, Projection::kOut}) {
      const ProjectionAdapter a = mx.adapter(p);
      if (!a) continue;
      auto& lin = p == Projection::kIn ? mx.in_proj : mx.out_proj;
      const at::Tensor w = a->effective_weight(lin->weight).detach().clone();
      lin->weight.copy_(w);
      if (lin->options.bias()) lin->bias.copy_(a->effective_bias(lin->bias).detach().clone());
      mx.set_adapter(p, nullptr);
    }
  }
}

}  // namespace mcd::test
