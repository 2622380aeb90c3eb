// CSP calibration (METHOD.md §3): stream calibration tokens through a model and accumulate, per
// layer, the E×E Pearson correlation of u — the conv output (after SiLU and any SDM gate) that
// enters x_proj and the scan — from running float64 sums Σx and Σxxᵀ (one GEMM per batch), on the
// model's device. Works for dense, gated and pruned (per-layer width) models alike.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/mamba.h"

namespace mcd::csp {

// Σx (E) and Σxxᵀ (E×E) over the tokens seen, in float64 on `device`.
class CorrelationAccumulator {
 public:
  CorrelationAccumulator(int64_t channels, torch::Device device);

  // u: (B, E, L), any floating dtype; every (b, t) is one observation of the E channels.
  void add(const at::Tensor& u);
  // (E, E) float64 on the CPU. A channel whose variance is zero (e.g. closed by its SDM gate, so
  // u is exactly 0) is uncorrelated with every other channel (0) and 1 with itself.
  at::Tensor correlation() const;

  int64_t channels() const { return channels_; }
  int64_t count() const { return count_; }

 private:
  int64_t channels_, count_ = 0;
  at::Tensor sum_, outer_;
};

struct CalibrationOptions {
  int64_t batch_size = 8;  // sequences per forward pass
  // SDM-gated models: calibrate u as the trained gates leave it (default; a closed gate makes its
  // channel constant, hence uncorrelated), or with every gate held open (z = 1) for the duration,
  // so the order reflects the weights' correlations alone (the study's ablation, docs/csp.md).
  bool open_gates = false;
  // Called after each batch with (sequences done, sequences in all).
  std::function<void(int64_t, int64_t)> progress;
};

struct Calibration {
  std::vector<at::Tensor> correlation;  // per layer (E_l, E_l) float64, CPU
  int64_t sequences = 0, seq_len = 0;
  int64_t tokens() const { return sequences * seq_len; }
};

// input_ids: (S, L) int64 token ids (< the model's vocabulary). Runs only the backbone (no LM
// head), in eval mode without gradients; the model's u observers are cleared afterwards.
Calibration calibrate(MambaLMImpl& model, const at::Tensor& input_ids, const CalibrationOptions& options = {});

}  // namespace mcd::csp
