// Training checkpoints: <out_dir>/checkpoints/step_<N>/ holds the model (HF format: config.json +
// model.safetensors), optimizer.safetensors and trainer_state.json. A checkpoint is written into
// a temporary folder (each file fsynced) and renamed into place, then `latest` is updated
// atomically, so a crash at any moment leaves the previous checkpoint usable. Keeps the last k.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>

#include "model/mamba.h"

namespace mcd::train {

struct CheckpointContents {
  std::vector<std::pair<std::string, at::Tensor>> optimizer;  // named state tensors
  nlohmann::json trainer_state;                               // must hold "step"
};

// Writes checkpoint `step` and prunes all but the newest `keep_last`. Returns its folder.
std::string write_checkpoint(MambaLMImpl& model, const CheckpointContents& contents,
                             const std::string& out_dir, int64_t step, int64_t keep_last);

// The newest complete checkpoint folder under <out_dir>/checkpoints, if any. Leftover temporary
// folders of interrupted writes are removed.
std::optional<std::string> find_latest_checkpoint(const std::string& out_dir);

struct LoadedCheckpoint {
  std::map<std::string, at::Tensor> optimizer;
  nlohmann::json trainer_state;
};
// Loads the model parameters (in place) and returns the rest. Errors name the file.
LoadedCheckpoint read_checkpoint(MambaLMImpl& model, const std::string& folder);

}  // namespace mcd::train
