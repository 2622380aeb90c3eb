// The pre-training loop: token cache → deterministic batches → forward/backward (with gradient
// accumulation, bf16 autocast on CUDA) → data-parallel gradient averaging → clipping → AdamW with
// the warm-up/cosine schedule; validation loss at intervals; JSON-lines metrics and a progress
// line with ETA; atomic checkpoints and bit-identical resume. `mamba-codesign pretrain` runs it.
#pragma once

#include <nlohmann/json.hpp>

#include "train/train_config.h"

namespace mcd::train {

struct PretrainOptions {
  bool resume = false;   // continue from the newest checkpoint in run.out_dir, if there is one
  bool quiet = false;    // no progress line
};

// Runs the whole job; returns a summary (final step, train/val loss, tokens/s, …) that is also
// written to <out_dir>/summary.json. Throws mcd::Error on bad input or a non-finite loss.
nlohmann::json run_pretraining(const TrainConfig& config, const PretrainOptions& options);

}  // namespace mcd::train
