// Sequence classification / regression on the Mamba backbone (METHOD.md §4): hidden states
// pooled at the last non-pad token (causality makes right padding irrelevant there) or by a
// masked mean, then a linear head. num_labels = 1 is regression (STS-B, MSE).
#pragma once

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/mamba.h"

namespace mcd {

enum class Pooling { kLastToken, kMean };
Pooling parse_pooling(const std::string& name);  // "last" | "mean"

class MambaClassifierImpl : public torch::nn::Module {
 public:
  MambaClassifierImpl(const ModelConfig& config, int64_t num_labels, Pooling pooling = Pooling::kLastToken);
  // Shares (does not copy) a pretrained backbone.
  MambaClassifierImpl(MambaBackbone backbone, int64_t num_labels, Pooling pooling = Pooling::kLastToken);

  // input_ids: (B, L) right-padded; lengths: (B) int64, the number of real tokens per row (≥ 1).
  // Returns (B, num_labels) float32.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& lengths);
  // Pooled features (B, D) before the head.
  at::Tensor pool(const at::Tensor& hidden, const at::Tensor& lengths) const;

  MambaBackbone backbone{nullptr};
  torch::nn::Linear classifier{nullptr};  // (num_labels, D), bias
  Pooling pooling;
};
TORCH_MODULE(MambaClassifier);

const char* pooling_name(Pooling pooling);  // "last" | "mean"

// A fine-tuned classifier as a model folder: config.json (the backbone's HF keys plus
// "num_labels", "pooling" and `extra` under "mcd_classifier", e.g. task and label names) and
// model.safetensors (backbone.* and classifier.*). Atomic like save_pretrained.
void save_classifier(MambaClassifierImpl& model, const std::string& dir, const nlohmann::json& extra = {},
                     at::ScalarType dtype = at::kFloat);
// Loads what save_classifier wrote; `extra` (if given) receives the "mcd_classifier" object.
MambaClassifier load_classifier(const std::string& dir, const LoadOptions& options = {},
                                nlohmann::json* extra = nullptr);

}  // namespace mcd
