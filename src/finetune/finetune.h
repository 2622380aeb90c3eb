// One fine-tuning run (METHOD.md §4): a pretrained model folder, a task, a method
// (full | probe | lora | ia3 | sgh) and a seed in; the best epoch's scores, the parameter counts
// and the trained adapters (or model) out. Training runs in the shared loop (train/loop.h):
// AdamW, linear warm-up and linear decay to zero, bf16 autocast on CUDA, checkpoints every epoch
// and exact resume. The whole dev set is scored after every epoch and the best epoch by the task
// score is kept. The seed fixes head initialisation, adapter initialisation, dropout and data
// order, each from its own stream.
//
// Output folder: result.json (everything a report needs), metrics.jsonl (the loop's log),
// adapters/ (adapter methods: adapter_model.safetensors + adapter_config.json, head included),
// model/ (full fine-tuning: the classifier folder), merged/ (with merge: adapters folded in).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "finetune/task_data.h"
#include "model/classifier.h"
#include "peft/allocation.h"
#include "train/checkpointing.h"

namespace mcd::finetune {

struct FinetuneSettings {
  std::string model_dir;        // pretrained (or pruned / permuted) model folder
  TaskSource data;
  std::string importance_file;  // sgh: from `prune` or `importance`
  std::string out_dir;
  peft::PeftSettings peft;
  int64_t epochs = 3;
  int64_t max_steps = 0;        // > 0: stop after this many steps (a partial last epoch is scored too)
  int64_t batch_size = 32, eval_batch_size = 64, grad_accum = 1;
  int64_t max_length = 128;
  double lr = 0;                // 0: the method's default (default_lr)
  double weight_decay = 0.01, warmup_ratio = 0.06, grad_clip = 1.0;
  Pooling pooling = Pooling::kLastToken;
  uint64_t seed = 0;
  bool merge = false;           // also write merged/ (adapters folded) and check it
  bool bf16 = true;             // on CUDA
  // On CUDA: each step's forward and backward replayed as a CUDA graph per batch shape
  // (ops/step_graphs.h); the same numbers as eager steps, several times faster for small models.
  bool cuda_graphs = true;
  int64_t max_train_examples = 0, max_eval_examples = 0;  // 0: all (a subsample is recorded)
  torch::Device device = torch::kCPU;
  bool resume = false, quiet = false, keep_checkpoints = false;
  double max_minutes = 0;
  train::FaultInjection faults;  // tests only
};

// Peak learning rates: full 5e-5, probe 1e-3, lora and sgh 5e-4, ia3 3e-3.
double default_lr(peft::Method method);

// Runs (or resumes) the fine-tuning and returns what it wrote to <out_dir>/result.json.
nlohmann::json run_finetune(const FinetuneSettings& settings);

}  // namespace mcd::finetune
