// A graphed step's gradients as the replays' outputs (see step_gradients.h).
#include "ops/step_gradients.h"

#include <set>

#include "util/error.h"

namespace mcd::ops {

StepGradients::StepGradients(std::vector<at::Tensor> params) : params_(std::move(params)), outputs_(params_.size()) {
  for (size_t i = 0; i < params_.size(); ++i)
    MCD_CHECK(params_[i].requires_grad(), "StepGradients: parameter ", i, " does not require a gradient");
}

bool StepGradients::is_output(size_t i) const {
  const at::Tensor& g = params_[i].grad();
  return g.defined() && outputs_[i].defined() && g.is_same(outputs_[i]);
}

std::vector<bool> StepGradients::adopt(const std::vector<at::Tensor>& grads) {
  MCD_CHECK(grads.size() == params_.size(), "StepGradients: ", grads.size(), " gradients for ", params_.size(),
            " parameters");
  std::vector<bool> written(params_.size(), false);
  // Storage already owned by an output buffer (this capture's or an earlier one's).
  std::set<const void*> taken;
  for (const at::Tensor& o : outputs_)
    if (o.defined()) taken.insert(o.storage().data());
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& g = grads[i];
    if (!g.defined()) continue;
    const at::Tensor& p = params_[i];
    MCD_CHECK(g.sizes() == p.sizes(), "StepGradients: gradient ", i, " has shape ", g.sizes(), ", its parameter ",
              p.sizes());
    written[i] = true;
    if (!outputs_[i].defined()) {
      const bool own_layout = g.strides() == p.strides() && g.scalar_type() == p.scalar_type() &&
                              g.device() == p.device() && taken.count(g.storage().data()) == 0;
      if (own_layout) {
        outputs_[i] = g;  // the replays write the gradient where the backward's kernel puts it
        taken.insert(g.storage().data());
        continue;
      }
      outputs_[i] = at::empty_like(p, at::MemoryFormat::Preserve);
      taken.insert(outputs_[i].storage().data());
    }
    outputs_[i].copy_(g);
  }
  return written;
}

void StepGradients::begin_step() {
  fresh_ = true;
  for (at::Tensor& p : params_) p.mutable_grad() = at::Tensor();
}

void StepGradients::copy_out_of_buffers() {
  for (size_t i = 0; i < params_.size(); ++i)
    if (is_output(i)) params_[i].mutable_grad() = params_[i].grad().clone();
}

void StepGradients::before_replay() {
  if (!fresh_) return copy_out_of_buffers();
  for (at::Tensor& p : params_) p.mutable_grad() = at::Tensor();
}

void StepGradients::before_eager() { copy_out_of_buffers(); }

void StepGradients::finish_replay(const std::vector<bool>& written) {
  MCD_CHECK(written.size() == params_.size(), "StepGradients: a replay's mask has ", written.size(),
            " entries for ", params_.size(), " parameters");
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!written[i]) continue;
    at::Tensor& g = params_[i].mutable_grad();
    if (fresh_) {
      g = outputs_[i];
    } else if (g.defined()) {
      g.add_(outputs_[i]);  // before_replay() made it a tensor of its own
    } else {
      g = outputs_[i].clone();
    }
  }
  fresh_ = false;
}

void StepGradients::release() { copy_out_of_buffers(); }

}  // namespace mcd::ops
