// HuggingFace-format model folders: `config.json` (HF keys, plus `intermediate_sizes` for
// pruned models) and `model.safetensors` (HF tensor names; the tied head is not stored) — or, as HF
// writes large checkpoints, the shards `model.safetensors.index.json` names (read, never written).
// Both files are written atomically; loading checks every name, shape and dtype.
#pragma once

#include <string>

#include "model/mamba.h"

namespace mcd {

struct LoadOptions {
  torch::Device device = torch::kCPU;
  at::ScalarType dtype = at::kFloat;  // parameters are converted to this
};

// Loads <dir>/config.json and the folder's tensors (io::SafetensorsCheckpoint: model.safetensors or
// its index's shards). Errors name the file and the tensor.
MambaLM load_pretrained(const std::string& dir, const LoadOptions& options = {});

// Copies the tensors of model folder `dir` (io::SafetensorsCheckpoint), named as HF names them, into
// `module`'s parameters (named_parameters()). Every parameter must be present with the right shape;
// unknown tensors are errors, except `lm_head.weight` when the head is tied (it must then equal the
// embedding). `may_be_missing(name)` lists parameters that keep their current values when absent (SDM
// gates added to a dense checkpoint).
void load_state(torch::nn::Module& module, const std::string& dir,
                const std::function<bool(const std::string&)>& may_be_missing = nullptr);

// Writes <dir>/config.json and <dir>/model.safetensors (float32 unless `dtype` says otherwise),
// creating <dir> if needed.
void save_pretrained(MambaLMImpl& model, const std::string& dir, at::ScalarType dtype = at::kFloat);

// Writes <dir>/config.json in mamba-ssm's keys (ModelConfig::to_mamba_ssm_json, which refuses what it
// cannot express) and <dir>/pytorch_model.bin as mamba-ssm's save_pretrained does (torch.save of the
// state dict: backbone.embedding.weight, the head stored too, sharing the embedding's storage when tied),
// so that `MambaLMHeadModel.from_pretrained(dir)` loads it. Float32 unless `dtype` says otherwise.
void save_mamba_ssm(MambaLMImpl& model, const std::string& dir, at::ScalarType dtype = at::kFloat);

}  // namespace mcd
