// Training checkpoints: <out_dir>/checkpoints/step_<N>/ holds the model (HF format: config.json +
// model.safetensors), optimizer.safetensors and trainer_state.json. A checkpoint is written into
// a temporary folder (each file fsynced) and renamed into place, then `latest` is updated
// atomically, so a crash at any moment leaves the previous checkpoint usable. Keeps the last k.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "util/torch_compat.h"

namespace mcd::train {

// Test-only fault injection (TrainOptions::faults; the CLI's hidden `--test-fault`): each fault
// reproduces a real failure at a chosen step so the tests can check what survives it.
struct FaultInjection {
  int64_t nan_loss_at_step = -1;            // that step's loss reads NaN, as a diverging run's would
  int64_t kill_in_checkpoint_at_step = -1;  // SIGKILL halfway through writing that checkpoint
};

// Writes / reads the trained weights of a checkpoint folder (the objective's: an LM in HF format,
// a classifier with its head and adapters, …).
using SaveWeights = std::function<void(const std::string& folder)>;
using LoadWeights = std::function<void(const std::string& folder)>;

struct CheckpointContents {
  std::vector<std::pair<std::string, at::Tensor>> optimizer;  // named state tensors
  nlohmann::json trainer_state;                               // must hold "step"
};

// Writes checkpoint `step` and prunes all but the newest `keep_last`. Returns its folder.
std::string write_checkpoint(const SaveWeights& save_weights, const CheckpointContents& contents,
                             const std::string& out_dir, int64_t step, int64_t keep_last,
                             const FaultInjection& faults = {});

// The newest complete checkpoint folder under <out_dir>/checkpoints, if any. Leftover temporary
// folders of interrupted writes are removed.
std::optional<std::string> find_latest_checkpoint(const std::string& out_dir);

struct LoadedCheckpoint {
  std::map<std::string, at::Tensor> optimizer;
  nlohmann::json trainer_state;
};
// Loads the weights (in place, through load_weights) and returns the rest. Errors name the file.
LoadedCheckpoint read_checkpoint(const LoadWeights& load_weights, const std::string& folder);

}  // namespace mcd::train
