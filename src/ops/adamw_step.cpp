// The fused AdamW step (see adamw_step.h).
#include "ops/adamw_step.h"

#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace mcd::ops {

// Fused when some parameter has a gradient and none rules the kernel out (a CPU or non-fp32
// parameter or gradient, a sparse gradient, amsgrad).
bool adamw_step_is_fused(const torch::optim::AdamW& opt) {
#if TORCH_VERSION_MAJOR >= 2
  bool any = false;
  for (const auto& group : opt.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    if (o.amsgrad()) return false;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!p.is_cuda() || p.scalar_type() != at::kFloat || p.grad().scalar_type() != at::kFloat ||
          p.grad().is_sparse())
        return false;
      any = true;
    }
  }
  return any;
#else
  (void)opt;
  return false;  // LibTorch 1.13 has no fused AdamW; its CPU build is what runs there
#endif
}

void adamw_step(torch::optim::AdamW& opt) {
#if TORCH_VERSION_MAJOR >= 2
  if (adamw_step_is_fused(opt)) {
    torch::NoGradGuard no_grad;
    auto& state = opt.state();
    for (auto& group : opt.param_groups()) {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
      // Parameters by the step count they reach (normally one bucket; a parameter that had no
      // gradient on some step lags behind, as in the reference, which skips it).
      struct Bucket {
        std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
      };
      std::map<int64_t, Bucket> buckets;
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        const auto key = optimizer_state_key(state, p);
        auto it = state.find(key);
        if (it == state.end()) {  // as the reference's first step: zero moments
          auto fresh = std::make_unique<torch::optim::AdamWParamState>();
          fresh->step(0);
          fresh->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
          fresh->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
          state[key] = std::move(fresh);
          it = state.find(key);
        }
        auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
        st.step(st.step() + 1);
        Bucket& b = buckets[st.step()];
        b.params.push_back(p);
        b.grads.push_back(p.grad());
        b.exp_avgs.push_back(st.exp_avg());
        b.exp_avg_sqs.push_back(st.exp_avg_sq());
      }
      for (auto& [step, b] : buckets) {
        // The kernel reads the (already incremented) step from a device scalar, one per tensor.
        const at::Tensor t = at::full({}, double(step), b.params.front().options().dtype(at::kFloat));
        const std::vector<at::Tensor> steps(b.params.size(), t);
        at::_fused_adamw_(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, {}, steps, o.lr(), std::get<0>(o.betas()),
                          std::get<1>(o.betas()), o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false,
                          std::nullopt, std::nullopt);
      }
    }
    return;
  }
#endif
  opt.step();
}

}  // namespace mcd::ops
