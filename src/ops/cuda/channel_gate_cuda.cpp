// Host op of the SDM channel gate (channel_gate.cu; semantics in channel_gate_params.h): an autograd
// node whose forward and backward are one kernel each on LibTorch's current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ops/cuda/channel_gate_params.h"
#include "ops/cuda/ops_cuda.h"
#include "util/error.h"

namespace mcd::ops::cuda {
namespace {

ChannelGateParams gate_params(const at::Tensor& log_alpha, bool has_noise, uint64_t noise_key, bool hard_concrete,
                              double temperature, int64_t block) {
  ChannelGateParams p;
  p.gates = log_alpha.size(0);
  p.block = block;
  p.hard_concrete = hard_concrete;
  p.temperature = static_cast<float>(hard_concrete ? kBeta : temperature);
  p.stretch = static_cast<float>(kZeta - kGamma);
  p.shift = static_cast<float>(kGamma);
  p.has_noise = has_noise;
  p.noise_key = noise_key;
  p.log_alpha = log_alpha.data_ptr<float>();
  p.stream = c10::cuda::getCurrentCUDAStream().stream();
  return p;
}

class ChannelGateFunction : public torch::autograd::Function<ChannelGateFunction> {
 public:
  // The key travels as int64 (an IValue has no unsigned type); the bits are the same.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& log_alpha,
                                                bool has_noise, int64_t noise_key, bool hard_concrete,
                                                double temperature, int64_t block) {
    const c10::cuda::CUDAGuard guard(log_alpha.device());
    ctx->save_for_backward({log_alpha});
    ctx->saved_data["has_noise"] = has_noise;
    ctx->saved_data["noise_key"] = noise_key;
    ctx->saved_data["hard_concrete"] = hard_concrete;
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["block"] = block;
    at::Tensor mask = at::empty({log_alpha.size(0) * block}, log_alpha.options());
    ChannelGateParams p = gate_params(log_alpha, has_noise, uint64_t(noise_key), hard_concrete, temperature, block);
    p.mask = mask.data_ptr<float>();
    channel_gate_forward(p);
    return {mask};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& log_alpha = saved[0];
    const c10::cuda::CUDAGuard guard(log_alpha.device());
    const at::Tensor grad_mask = grad_out[0].to(at::kFloat).contiguous();
    at::Tensor grad_log_alpha = at::empty_like(log_alpha);
    ChannelGateParams p = gate_params(log_alpha, ctx->saved_data["has_noise"].toBool(),
                                      uint64_t(ctx->saved_data["noise_key"].toInt()),
                                      ctx->saved_data["hard_concrete"].toBool(),
                                      ctx->saved_data["temperature"].toDouble(), ctx->saved_data["block"].toInt());
    p.grad_mask = grad_mask.data_ptr<float>();
    p.grad_log_alpha = grad_log_alpha.data_ptr<float>();
    channel_gate_backward(p);
    return {grad_log_alpha, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool channel_gate_supported(const at::Tensor& log_alpha) {
  return log_alpha.is_cuda() && log_alpha.scalar_type() == at::kFloat && log_alpha.dim() == 1 &&
         log_alpha.is_contiguous();
}

at::Tensor channel_gate_cuda(const at::Tensor& log_alpha, std::optional<uint64_t> noise_key, GateType type,
                             double temperature, int64_t block) {
  MCD_CHECK(channel_gate_supported(log_alpha),
            "channel_gate (CUDA): log_alpha must be a contiguous fp32 (E/g) tensor on a CUDA device, got ",
            log_alpha.sizes(), " ", log_alpha.scalar_type(), " on ", log_alpha.device());
  MCD_CHECK(block >= 1, "channel_gate (CUDA): block must be at least 1, got ", block);
  return ChannelGateFunction::apply(log_alpha, noise_key.has_value(), int64_t(noise_key.value_or(0)),
                                    type == GateType::kHardConcrete, temperature, block)[0];
}

}  // namespace mcd::ops::cuda
