// AdamW groups, schedule and state (de)serialisation (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>
#include <map>

#include "util/error.h"

namespace mcd::train {

bool uses_weight_decay(const std::string& name, const at::Tensor& param) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (param.dim() < 2) return false;  // norms, biases, D
  if (ends_with("A_log") || name.find("gate") != std::string::npos) return false;
  return true;
}

bool is_gate_parameter(const std::string& name) { return name.find(".gate.") != std::string::npos; }

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const OptimizerSettings& s) {
  std::vector<at::Tensor> decay, no_decay, gates;
  for (const auto& p : module.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    if (is_gate_parameter(p.key())) gates.push_back(p.value());
    else (uses_weight_decay(p.key(), p.value()) ? decay : no_decay).push_back(p.value());
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(s.lr).betas({s.beta1, s.beta2}).eps(s.eps).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(s.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  if (!gates.empty()) {
    auto gate_options = options(0.0);
    gate_options->lr(s.gate_lr);
    groups.emplace_back(gates, std::move(gate_options));
  }
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(s.lr));
}

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  MCD_CHECK(max_norm > 0, "gradient clipping: max_norm must be positive (infinity: no clipping), got ", max_norm);
#if TORCH_VERSION_MAJOR >= 2
  std::vector<at::Tensor> grads;
  bool cuda = true;
  for (const auto& p : params)
    if (p.grad().defined()) {
      grads.push_back(p.grad());
      cuda = cuda && p.grad().is_cuda() && p.grad().scalar_type() == at::kFloat && !p.grad().is_sparse() &&
             p.grad().device() == grads.front().device();
    }
  if (cuda && !grads.empty()) {
    torch::NoGradGuard no_grad;
    const at::Tensor total = at::linalg_vector_norm(at::stack(at::_foreach_norm(grads, 2)), 2);
    if (std::isfinite(max_norm)) {
      // min(1, max/(norm + 1e-6)): a factor of exactly 1 when no clipping is due, as the reference skips it.
      const at::Tensor coef = total.add(1e-6).reciprocal().mul(max_norm).clamp_max(1.0);
      at::_foreach_mul_(grads, coef);
    }
    return total;
  }
#endif
  return torch::tensor(torch::nn::utils::clip_grad_norm_(params, max_norm), at::kDouble);
}

Schedule parse_schedule(const std::string& name) {
  if (name == "cosine") return Schedule::kCosine;
  if (name == "linear") return Schedule::kLinear;
  fail(cat("unknown learning-rate schedule '", name, "' (valid: cosine, linear)"));
}

double lr_at(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak, double min_ratio,
             Schedule schedule) {
  if (warmup_steps > 0 && step < warmup_steps) return peak * double(step + 1) / double(warmup_steps);
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, double(step - warmup_steps) / double(decay_steps));
  const double floor = peak * min_ratio;
  if (schedule == Schedule::kLinear) return peak - (peak - floor) * progress;
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  auto& groups = opt.param_groups();
  for (size_t i = 0; i < groups.size() && i < 2; ++i)
    static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(lr);
}

std::vector<std::pair<std::string, at::Tensor>> adamw_state_tensors(torch::nn::Module& module,
                                                                    torch::optim::AdamW& opt) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto& state = opt.state();
  for (const auto& p : module.named_parameters()) {
    const auto it = state.find(optimizer_state_key(state, p.value()));
    if (it == state.end()) continue;  // not stepped yet (or frozen)
    auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back("exp_avg." + p.key(), s.exp_avg());
    out.emplace_back("exp_avg_sq." + p.key(), s.exp_avg_sq());
    out.emplace_back("step." + p.key(), torch::tensor({int64_t(s.step())}, torch::kLong));
  }
  return out;
}

void load_adamw_state(torch::nn::Module& module, torch::optim::AdamW& opt,
                      const std::map<std::string, at::Tensor>& tensors, const std::string& source) {
  auto& state = opt.state();
  state.clear();
  size_t used = 0;
  for (const auto& p : module.named_parameters()) {
    const auto avg = tensors.find("exp_avg." + p.key());
    if (avg == tensors.end()) continue;
    const auto sq = tensors.find("exp_avg_sq." + p.key());
    const auto step = tensors.find("step." + p.key());
    MCD_CHECK(sq != tensors.end() && step != tensors.end(), source, ": optimizer state of '", p.key(),
              "' is incomplete");
    MCD_CHECK(avg->second.sizes() == p.value().sizes() && sq->second.sizes() == p.value().sizes(), source,
              ": optimizer state of '", p.key(), "' has shape ", avg->second.sizes(), ", the parameter ",
              p.value().sizes());
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(step->second.item<int64_t>());
    s->exp_avg(avg->second.to(p.value().device(), p.value().scalar_type()).clone());
    s->exp_avg_sq(sq->second.to(p.value().device(), p.value().scalar_type()).clone());
    state[optimizer_state_key(state, p.value())] = std::move(s);
    used += 3;
  }
  MCD_CHECK(used == tensors.size(), source, ": optimizer state has ", tensors.size() - used,
            " tensors that match no parameter of this model");
}

}  // namespace mcd::train
