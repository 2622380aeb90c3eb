// Helpers for the pruning, importance and FLOP tests: small random gated (or gate-less) models
// built from the mamba-tiny preset, gate logits set by hand, and eval-mode logits to compare
// a masked model against its pruned copy.
#pragma once

#include <string>
#include <vector>

#include "config/model_config.h"
#include "model/mamba.h"
#include "model/channel_gate.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd::sdm::test_util {

// mamba-tiny (D 64, E 128, N 8, K 4, R 4, V 512) with `n_layer` layers and the given gates.
inline ModelConfig tiny_config(const std::string& gate_type, int64_t gate_block = 1, int64_t n_layer = 3) {
  ModelConfig c = model_preset("mamba-tiny");
  c.n_layer = n_layer;
  c.gate_type = gate_type;
  c.gate_block = gate_block;
  return c;
}

// Reference init, then D, conv bias and dt bias perturbed so every parameter matters, and gate
// logits uniform in [−6, 6]: some gates closed (z = 0), some fractional, some fully open.
inline MambaLM random_model(const ModelConfig& c, uint64_t seed) {
  MambaLM model(c);
  init_reference(*model, seed);
  torch::NoGradGuard no_grad;
  at::Generator gen = make_cpu_generator(seed + 101);
  for (auto& block : model->backbone->blocks) {
    auto& m = *block->mixer;
    m.D.copy_(torch::empty(m.D.sizes()).uniform_(0.5, 1.5, gen));
    m.conv1d->bias.add_(torch::empty(m.conv1d->bias.sizes()).uniform_(-0.2, 0.2, gen));
    m.A_log.add_(torch::empty(m.A_log.sizes()).uniform_(-0.3, 0.3, gen));
    block->norm->weight.copy_(torch::empty({c.d_model}).uniform_(0.5, 1.5, gen));
    if (m.gate) m.gate->log_alpha.copy_(torch::empty(m.gate->log_alpha.sizes()).uniform_(-6.0, 6.0, gen));
  }
  model->eval();
  return model;
}

inline void set_alpha(MambaLMImpl& model, int64_t layer, const at::Tensor& alpha) {
  torch::NoGradGuard no_grad;
  model.backbone->blocks.at(layer)->mixer->gate->log_alpha.copy_(alpha);
}

inline at::Tensor tokens(int64_t batch, int64_t len, int64_t vocab, uint64_t seed) {
  at::Generator gen = make_cpu_generator(seed);
  return torch::randint(vocab, {batch, len}, gen, torch::kLong);
}

inline at::Tensor logits(MambaLMImpl& model, const at::Tensor& ids) {
  torch::NoGradGuard no_grad;
  model.eval();
  return model.forward(ids);
}

inline int64_t numel_sum(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace mcd::sdm::test_util
