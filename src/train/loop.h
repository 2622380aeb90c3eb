// The training loop every objective shares (LM pre-training now, classification fine-tuning
// next): data parallelism (c10d), autocast, gradient accumulation, clipping, the warm-up/cosine
// schedule, AdamW, the NaN guard, metrics (JSON lines) and the progress line, evaluation at
// intervals, atomic checkpoints and bit-identical resume, a wall-time limit. What is trained and
// on which data is the Objective's business; how it is stepped is the loop's.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "train/checkpointing.h"
#include "train/distributed.h"
#include "train/optimizer.h"

namespace mcd::train {

// Where the loop stands inside one optimizer step.
struct StepContext {
  int64_t step = 0;        // 0-based optimizer step
  int rank = 0, world = 1;
  int64_t micro_batches = 1;  // per rank
};

class Objective {
 public:
  virtual ~Objective() = default;
  // The trained module: its parameters (those with requires_grad) are optimised and averaged.
  virtual torch::nn::Module& module() = 0;
  virtual void save_weights(const std::string& folder) = 0;  // a checkpoint's or the final model
  virtual void load_weights(const std::string& folder) = 0;
  // Called once per step before the micro-batches (e.g. sample the step's batch, SDM noise and
  // its regulariser's backward).
  virtual void begin_step(const StepContext& ctx) = 0;
  // Mean loss of micro-batch `micro` of this rank's share of the step; the loop scales it by
  // 1/micro_batches and back-propagates.
  virtual at::Tensor micro_batch_loss(const StepContext& ctx, int64_t micro) = 0;
  // For CUDA-graph steps (LoopSettings::cuda_graphs, ops/step_graphs.h): copies micro-batch
  // `micro`'s inputs into device buffers that stay fixed for their shape, checks them on the host,
  // and returns a key naming that shape; micro_batch_loss then reads those buffers. Steps with
  // equal keys must run the same kernels on the same buffers, and their begin_step must not have
  // back-propagated anything (a replay's gradients replace what the step holds). "" (the
  // default): the step runs eagerly.
  virtual std::string stage_micro_batch(const StepContext& ctx, int64_t micro) { return ""; }
  virtual void end_step(const StepContext& ctx) {}  // after the optimizer step
  // Validation loss (and anything else) over all ranks; "val_loss" is required.
  virtual nlohmann::json evaluate(Communicator& comm) = 0;
  // The log line of an evaluation (default: validation loss and perplexity, for language models).
  virtual std::string describe_evaluation(const nlohmann::json& evaluation) const;
  virtual bool reports_perplexity() const { return true; }  // adds val_ppl to the metrics line
  virtual double units_per_step() const = 0;           // tokens (or examples) per optimizer step
  virtual const char* unit_name() const { return "tok"; }
  virtual nlohmann::json step_metrics(int64_t done) { return nlohmann::json::object(); }
  virtual std::string progress_suffix(int64_t done) { return ""; }
  virtual nlohmann::json state() const { return nlohmann::json::object(); }  // saved in checkpoints
  virtual void load_state(const nlohmann::json& state) {}
  virtual void finish(nlohmann::json& summary) {}  // add to the summary (rank 0, after the last step)
};

struct LoopSettings {
  int64_t steps = 100, grad_accum = 1, warmup_steps = 10;
  double lr = 1e-3, min_lr_ratio = 0.1;
  Schedule schedule = Schedule::kCosine;
  OptimizerSettings optimizer;
  double grad_clip = 1.0;       // 0: no clipping
  bool bf16 = false;            // CUDA autocast
  // CUDA graphs of the step's forward and backward (one process, grad_accum 1, an objective that
  // stages its inputs): for steps bound by kernel launches, e.g. fine-tuning a small model.
  bool cuda_graphs = false;
  int64_t eval_interval = 50, checkpoint_interval = 100, keep_last = 2, log_interval = 10;
  double max_minutes = 0;
  std::string out_dir = "runs/default";
  std::string source;           // the config file, for messages and checkpoints
  uint64_t seed = 0;
};

struct TrainOptions {
  bool resume = false;   // continue from the newest checkpoint in out_dir, if there is one
  bool quiet = false;    // no progress line
  FaultInjection faults; // tests only
};

// Runs the loop to the end (or the time limit); returns the summary the objective completed.
nlohmann::json run_training_loop(Objective& objective, Communicator& comm, const torch::Device& device,
                                 const LoopSettings& settings, const TrainOptions& options);

}  // namespace mcd::train
