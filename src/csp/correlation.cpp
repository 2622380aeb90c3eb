// Streamed Pearson correlation (see correlation.h).
#include "csp/correlation.h"

#include "util/error.h"

namespace mcd::csp {

CorrelationAccumulator::CorrelationAccumulator(int64_t channels, torch::Device device) : channels_(channels) {
  MCD_CHECK(channels > 0, "CSP calibration: a layer needs at least one channel, got ", channels);
  const auto options = torch::TensorOptions().dtype(at::kDouble).device(device);
  sum_ = torch::zeros({channels}, options);
  outer_ = torch::zeros({channels, channels}, options);
}

void CorrelationAccumulator::add(const at::Tensor& u) {
  MCD_CHECK(u.dim() == 3 && u.size(1) == channels_, "CSP calibration: u must be (B, ", channels_,
            ", L), got ", u.sizes());
  MCD_CHECK(at::isFloatingType(u.scalar_type()), "CSP calibration: u must be floating point, got ",
            u.scalar_type());
  torch::NoGradGuard no_grad;
  // (B, E, L) → (B·L, E) observations, converted to float64 before any product.
  const at::Tensor x = u.detach().to(sum_.device(), at::kDouble).transpose(1, 2).reshape({-1, channels_});
  sum_.add_(x.sum(0));
  outer_.addmm_(x.t(), x);
  count_ += x.size(0);
}

at::Tensor CorrelationAccumulator::correlation() const {
  MCD_CHECK(count_ >= 2, "CSP calibration: a correlation needs at least 2 observations, got ", count_);
  const double n = double(count_);
  const at::Tensor sum = sum_.cpu(), outer = outer_.cpu();
  // Covariance up to the common factor 1/n: Σxy − Σx·Σy/n.
  const at::Tensor cov = outer - torch::outer(sum, sum) / n;
  at::Tensor var = cov.diagonal().clone();
  // Rounding can leave a constant channel's Σx² − (Σx)²/n slightly above zero: treat variances
  // below 1e-12 of the largest as zero (float64 rounding of the sums is ~1e-16 relative).
  const double var_max = var.max().item<double>();
  const at::Tensor constant = var <= std::max(0.0, var_max) * 1e-12;
  var = torch::where(constant, torch::ones_like(var), var);
  const at::Tensor inv_sd = var.rsqrt();
  at::Tensor corr = (cov * inv_sd.unsqueeze(0) * inv_sd.unsqueeze(1)).clamp(-1.0, 1.0);
  const at::Tensor either_constant = constant.unsqueeze(0) | constant.unsqueeze(1);
  corr = torch::where(either_constant, torch::zeros_like(corr), corr);
  corr.diagonal().fill_(1.0);
  return corr;
}

Calibration calibrate(MambaLMImpl& model, const at::Tensor& input_ids, const CalibrationOptions& options) {
  MCD_CHECK(input_ids.dim() == 2 && input_ids.size(0) >= 1 && input_ids.size(1) >= 1,
            "CSP calibration: input_ids must be (sequences, length), got ", input_ids.sizes());
  MCD_CHECK(input_ids.scalar_type() == at::kLong, "CSP calibration: input_ids must be int64, got ",
            input_ids.scalar_type());
  MCD_CHECK(options.batch_size >= 1, "CSP calibration: batch size must be >= 1, got ", options.batch_size);
  const int64_t vocab = model.config().vocab_size;
  const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
  MCD_CHECK(lo >= 0 && hi < vocab, "CSP calibration: token ids must be in [0, ", vocab,
            ") for this model's vocabulary, got [", lo, ", ", hi, "]");

  const torch::Device device = model.parameters().front().device();
  const ModelConfig& config = model.config();
  std::vector<CorrelationAccumulator> acc;
  for (int64_t l = 0; l < config.n_layer; ++l) acc.emplace_back(config.inner_width(l), device);

  // Clears the observers however this function ends.
  struct ObserverGuard {
    MambaBackboneImpl& backbone;
    ~ObserverGuard() { backbone.set_u_observer({}); }
  } guard{*model.backbone};
  model.backbone->set_u_observer([&acc](int64_t layer, const at::Tensor& u) { acc[size_t(layer)].add(u); });

  // Gates held open: logits saved, set far above the threshold (hard-concrete z clamps to 1,
  // Gumbel's eval gate is 1{α > 0}), and restored however this function ends.
  struct GateOpener {
    std::vector<std::pair<at::Tensor, at::Tensor>> saved;  // (logits, their values)
    ~GateOpener() {
      torch::NoGradGuard no_grad;
      for (auto& [logits, values] : saved) logits.copy_(values);
    }
  } opener;
  if (options.open_gates) {
    torch::NoGradGuard no_grad;
    for (const ChannelGate& gate : model.backbone->gates()) {
      opener.saved.emplace_back(gate->log_alpha, gate->log_alpha.detach().clone());
      gate->log_alpha.fill_(30.0);
    }
  }
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t sequences = input_ids.size(0);
  for (int64_t start = 0; start < sequences; start += options.batch_size) {
    const int64_t end = std::min(sequences, start + options.batch_size);
    model.backbone->forward(input_ids.slice(0, start, end).to(device));
    if (options.progress) options.progress(end, sequences);
  }
  if (was_training) model.train();

  Calibration out;
  out.sequences = sequences;
  out.seq_len = input_ids.size(1);
  for (const auto& a : acc) out.correlation.push_back(a.correlation());
  return out;
}

}  // namespace mcd::csp
