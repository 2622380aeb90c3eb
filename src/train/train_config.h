// Pre-training configuration: one strict YAML file (configs/train/*.yaml) with sections model,
// data, train, eval, checkpoint, run; `--set section.key=value` overrides any key before the
// file is checked. Every key is documented in docs/configs.md.
#pragma once

#include <string>
#include <vector>

#include "config/model_config.h"

namespace mcd::train {

struct TrainConfig {
  // model: exactly one of preset / config / init_from.
  std::string model_preset, model_config_file, init_from;
  // data
  std::string data_format = "auto";
  std::vector<std::string> data_paths;
  std::string cache_dir = ".cache/tokens/default";
  double val_fraction = 0.005;
  uint64_t split_seed = 0;
  int64_t max_documents = -1;
  // train
  int64_t seq_len = 256;       // L: tokens per training sequence (windows are L+1)
  int64_t batch_size = 8;      // global sequences per optimizer step (all ranks, all micro-batches)
  int64_t grad_accum = 1;      // micro-batches per optimizer step on each rank
  int64_t steps = 100;
  double lr = 1e-3, min_lr_ratio = 0.1;
  int64_t warmup_steps = 10;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, grad_clip = 1.0;
  std::string precision = "fp32";  // fp32 | bf16 (CUDA autocast, fp32 master weights)
  uint64_t seed = 0;
  // eval
  int64_t eval_interval = 50;   // steps; 0 = only at the end
  int64_t eval_windows = 32;    // validation windows of L+1 tokens per evaluation; 0 = all
  int64_t eval_batch_size = 8;
  // checkpoint
  int64_t checkpoint_interval = 100;  // steps; 0 = only at the end
  int64_t keep_last = 2;
  // sdm (METHOD.md §2): channel gates learned during pre-training
  bool sdm_enabled = false;
  std::string sdm_gate_type = "hard_concrete";
  int64_t sdm_gate_block = 1;
  double sdm_gate_init = 1.0;
  double sdm_gate_lr = 0.1;  // constant learning rate of the gate logits (no weight decay)
  double sdm_target = 0.5, sdm_warmup_fraction = 0.5, sdm_penalty_weight = 1.0, sdm_lambda_lr = 0.1,
         sdm_lambda2_init = 20.0;
  std::string sdm_control = "lagrangian", sdm_lambda_signal = "deterministic";
  double sdm_tau0 = 1.0, sdm_tau1 = 0.1;
  // run
  std::string out_dir = "runs/default";
  std::string device = "auto";
  int64_t threads = 0;
  int64_t log_interval = 10;
  double max_minutes = 0;  // stop (with a checkpoint) after this wall time; 0 = no limit

  ModelConfig model_config() const;  // resolves preset / config / init_from
  std::string source;                // the file it came from (for messages)
};

// Reads `path`, applies overrides ("section.key=value", value parsed as YAML), checks strictly.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace mcd::train
