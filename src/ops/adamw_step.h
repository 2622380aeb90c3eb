// One AdamW step with LibTorch's fused multi-tensor kernel where it applies: what pre-training runs
// (train/loop.cpp) and what `profile --train-batch` times (infer/profiler.cpp), so the profiled
// training step is the trained one. An op over a LibTorch optimizer's parameters and state, below
// both users.
#pragma once

#include "util/torch_compat.h"

namespace mcd::ops {

// One AdamW step of every group. With LibTorch ≥ 2 and every stepped parameter an fp32 CUDA
// tensor, LibTorch's fused multi-tensor kernel (`_fused_adamw_`, one launch series per group
// instead of ~10 kernels per parameter); otherwise opt.step(), the reference. Both read and write
// the same state (exp_avg, exp_avg_sq, step) in opt.state(), so checkpoints and resume do not
// care which ran; they differ only in rounding (tests/gpu: GpuTrain.FusedAdamWMatchesTheReference).
void adamw_step(torch::optim::AdamW& opt);
bool adamw_step_is_fused(const torch::optim::AdamW& opt);  // what adamw_step will do

}  // namespace mcd::ops
