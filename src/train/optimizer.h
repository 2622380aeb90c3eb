// The optimizer side of pre-training: AdamW (LibTorch's) with two parameter groups — no weight
// decay on norms, biases, A_log, D and gates — the learning-rate schedule (linear warm-up, cosine
// decay to a floor), and saving/restoring the optimizer state by parameter name, so a resumed run
// continues bit-identically.
#pragma once

#include <memory>
#include <string>

#include "util/torch_compat.h"

namespace mcd::train {

struct OptimizerSettings {
  double lr = 1e-3, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double gate_lr = 0.1;  // SDM gate logits: their own constant learning rate
};

// Parameter groups: 0 = decayed, 1 = not decayed, 2 = SDM gate logits (present when the model
// has gates). The schedule (set_lr) drives groups 0 and 1; the gates keep gate_lr.
bool is_gate_parameter(const std::string& name);

// True for parameters that get weight decay (matrices of linear/conv/embedding layers).
bool uses_weight_decay(const std::string& name, const at::Tensor& param);

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const OptimizerSettings& s);

// One AdamW step: ops::adamw_step (ops/adamw_step.h), LibTorch's fused kernel where it applies.

// Gradient-norm clipping as LibTorch's clip_grad_norm_ (total 2-norm over every gradient; when
// above max_norm the gradients are scaled by max_norm / (norm + 1e-6)); max_norm = ∞ only measures.
// Returns the norm as a 0-dim tensor on the gradients' device: on CUDA (LibTorch ≥ 2) nothing
// waits for the device — foreach norms and one foreach scale — so the caller reads it when it logs.
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

// The decay after warm-up: cosine (pre-training) or linear (fine-tuning, as BERT-style recipes).
enum class Schedule { kCosine, kLinear };
Schedule parse_schedule(const std::string& name);  // "cosine" | "linear"

// lr at `step` (0-based): linear warm-up over warmup_steps to peak, then cosine (or linear) decay
// to peak·min_ratio at total_steps, constant after.
double lr_at(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak, double min_ratio,
             Schedule schedule = Schedule::kCosine);
void set_lr(torch::optim::Optimizer& opt, double lr);

// Optimizer state as named tensors ("exp_avg.<param>", "exp_avg_sq.<param>", "step.<param>")
// and back. Loading checks every name and shape and errors name the file.
std::vector<std::pair<std::string, at::Tensor>> adamw_state_tensors(torch::nn::Module& module,
                                                                    torch::optim::AdamW& opt);
void load_adamw_state(torch::nn::Module& module, torch::optim::AdamW& opt,
                      const std::map<std::string, at::Tensor>& tensors, const std::string& source);

}  // namespace mcd::train
