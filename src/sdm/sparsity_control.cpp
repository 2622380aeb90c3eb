// SDM sparsity control (see sparsity_control.h).
#include "sdm/sparsity_control.h"

#include <cmath>

#include "util/error.h"

namespace mcd::sdm {

SparsityController::SparsityController(std::vector<ChannelGate> gates, SparsitySettings s, int64_t total_steps)
    : gates_(std::move(gates)), s_(std::move(s)), total_steps_(std::max<int64_t>(1, total_steps)),
      lambda2_(s_.lambda2_init) {
  MCD_CHECK(!gates_.empty(), "SDM: the model has no channel gates (set model gate_type)");
  MCD_CHECK(s_.target >= 0 && s_.target < 1, "SDM: target sparsity must be in [0, 1), got ", s_.target);
  MCD_CHECK(s_.control == "lagrangian" || s_.control == "penalty", "SDM: control must be lagrangian or penalty, got '",
            s_.control, "'");
  MCD_CHECK(s_.lambda_signal == "expected" || s_.lambda_signal == "deterministic",
            "SDM: lambda_signal must be expected or deterministic, got '", s_.lambda_signal, "'");
  MCD_CHECK(s_.tau0 > 0 && s_.tau1 > 0, "SDM: Gumbel temperatures tau0, tau1 must be positive, got ", s_.tau0, ", ",
            s_.tau1);
}

double SparsityController::temperature_at(int64_t step) const {
  const double progress = std::min(1.0, double(step) / double(total_steps_));
  return s_.tau0 * std::pow(s_.tau1 / s_.tau0, progress);
}

void SparsityController::begin_step(uint64_t seed, int64_t step) {
  const double tau = temperature_at(step);
  resample_gates(gates_, seed, step);  // layer l draws (seed, step, l)
  for (auto& g : gates_) g->set_temperature(tau);
}

double SparsityController::target_at(int64_t step) const {
  const double ramp = s_.warmup_fraction * double(total_steps_);
  if (ramp <= 0) return s_.target;
  return s_.target * std::min(1.0, double(step) / ramp);
}

at::Tensor SparsityController::expected_sparsity() const {
  at::Tensor open;
  int64_t channels = 0;
  for (const auto& g : gates_) {
    const at::Tensor o = g->prob_open().sum() * double(g->block);
    open = open.defined() ? open + o : o;
    channels += g->channels;
  }
  return 1.0 - open / double(channels);
}

at::Tensor SparsityController::regularizer(int64_t step) {
  const at::Tensor s_hat = expected_sparsity();
  last_expected_ = s_hat.item<double>();
  if (s_.control == "penalty") return s_.penalty_weight * (1.0 - s_hat);
  const double t = target_at(step);
  return lambda1_ * (s_hat - t) + lambda2_ * (s_hat - t).pow(2);
}

void SparsityController::end_step(int64_t step) {
  if (s_.control != "lagrangian") return;
  const double gap = last_expected_ - target_at(step);
  const double signal = s_.lambda_signal == "deterministic" ? deterministic_sparsity() - target_at(step) : gap;
  lambda1_ += s_.lambda_lr * signal;  // ∂L/∂λ1 (with the expected signal)
  lambda2_ += s_.lambda_lr * gap * gap;
}

double SparsityController::deterministic_sparsity() const {
  double closed = 0, channels = 0;
  for (const auto& g : gates_) {
    closed += (g->deterministic_gates() <= 0).sum().item<double>() * double(g->block);
    channels += double(g->channels);
  }
  return closed / channels;
}

nlohmann::json SparsityController::state() const { return {{"lambda1", lambda1_}, {"lambda2", lambda2_}}; }

void SparsityController::load_state(const nlohmann::json& j) {
  lambda1_ = j.value("lambda1", 0.0);
  lambda2_ = j.value("lambda2", s_.lambda2_init);
}

nlohmann::json SparsityController::metrics(int64_t step) const {
  return {{"expected_sparsity", last_expected_}, {"target_sparsity", target_at(step)},
          {"deterministic_sparsity", deterministic_sparsity()}, {"lambda1", lambda1_}, {"lambda2", lambda2_}};
}

}  // namespace mcd::sdm
