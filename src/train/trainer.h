// LM pre-training (METHOD.md §1–2) as an objective of the shared training loop (loop.h): the token
// cache, deterministic windows of L+1 tokens per rank and micro-batch, the shifted LM loss, SDM
// gates with their sparsity controller, validation loss and the unigram baseline.
// `mamba-codesign pretrain` runs it.
#pragma once

#include <nlohmann/json.hpp>

#include "train/loop.h"
#include "train/train_config.h"

namespace mcd::train {

// Runs the whole job; returns a summary (final step, train/val loss, tokens/s, …) that is also
// written to <out_dir>/summary.json. Throws mcd::Error on bad input or a non-finite loss.
nlohmann::json run_pretraining(const TrainConfig& config, const TrainOptions& options);

}  // namespace mcd::train
