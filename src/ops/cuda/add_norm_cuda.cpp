// Host op of the fused residual-add + RMSNorm (kernels: add_norm.cu; semantics:
// ops/add_rms_norm.h): checks, allocation, the launch on LibTorch's current stream, and the
// autograd node. Only this layer includes LibTorch.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "ops/autograd_placeholders.h"
#include "ops/cuda/add_norm_params.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "util/error.h"

namespace mcd::ops::cuda {
namespace {

DType code(at::ScalarType t) { return dtype_code(t, "add_rms_norm (CUDA)"); }

AddNormParams base(const at::Tensor& residual_out, const at::Tensor& weight, const at::Tensor& rstd,
                   at::ScalarType out_dtype, at::ScalarType prev_dtype, double eps, int64_t blocks_per_sm) {
  AddNormParams k;
  k.out_dtype = code(out_dtype);
  k.prev_dtype = code(prev_dtype);
  k.dim = weight.size(0);
  k.rows = residual_out.numel() / std::max<int64_t>(k.dim, 1);
  k.eps = static_cast<float>(eps);
  k.weight = weight.data_ptr<float>();
  k.residual_out = residual_out.data_ptr<float>();
  k.rstd = rstd.data_ptr<float>();
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  k.blocks = std::max<int64_t>(1, std::min<int64_t>((k.rows + kAddNormWarps - 1) / kAddNormWarps, blocks_per_sm * sms));
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  return k;
}

// The vectorised kernels' condition: rows of a multiple of 4 elements and 16-byte aligned bases.
bool can_vectorise(int64_t dim, std::initializer_list<const void*> ptrs) {
  if (dim % 4 != 0) return false;
  for (const void* q : ptrs)
    if (reinterpret_cast<std::uintptr_t>(q) % 16 != 0) return false;  // null is aligned
  return true;
}

class AddNormCudaFunction : public torch::autograd::Function<AddNormCudaFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& residual_in, const at::Tensor& prev_in,
                                                const at::Tensor& weight, double eps, int64_t out_dtype_code) {
    const at::Tensor prev = undefined_if_placeholder(prev_in);
    const auto out_dtype = static_cast<at::ScalarType>(out_dtype_code);
    const at::Tensor res_in = residual_in.contiguous();
    const at::Tensor prev_c = prev.defined() ? prev.contiguous() : prev;
    at::Tensor residual_out = at::empty_like(res_in);
    at::Tensor normed = at::empty(res_in.sizes(), res_in.options().dtype(out_dtype));
    at::Tensor rstd = at::empty({res_in.numel() / std::max<int64_t>(weight.size(0), 1)}, res_in.options());
    if (res_in.numel() > 0) {
      // Up to 16 blocks (64 warps) per SM: enough rows in flight to keep HBM busy.
      AddNormParams k = base(residual_out, weight, rstd, out_dtype,
                             prev.defined() ? prev.scalar_type() : at::kFloat, eps, 16);
      k.residual_in = res_in.data_ptr<float>();
      k.prev = prev_c.defined() ? prev_c.data_ptr() : nullptr;
      k.normed = normed.data_ptr();
      k.vec4 = can_vectorise(k.dim, {k.residual_in, k.prev, k.weight, k.residual_out, k.normed});
      add_norm_fwd(k);
    }
    ctx->save_for_backward({residual_out, weight, rstd});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["out_dtype"] = out_dtype_code;
    ctx->saved_data["prev_dtype"] = static_cast<int64_t>(prev.defined() ? prev.scalar_type() : at::kFloat);
    ctx->saved_data["has_prev"] = prev.defined();
    return {normed, residual_out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &residual_out = s[0], &weight = s[1], &rstd = s[2];
    const auto out_dtype = static_cast<at::ScalarType>(ctx->saved_data["out_dtype"].toInt());
    const auto prev_dtype = static_cast<at::ScalarType>(ctx->saved_data["prev_dtype"].toInt());
    const bool has_prev = ctx->saved_data["has_prev"].toBool();
    const at::Tensor dnormed = grad_out[0].defined() ? grad_out[0].to(out_dtype).contiguous()
                                                     : at::zeros(residual_out.sizes(), residual_out.options().dtype(out_dtype));
    const at::Tensor dres_out = grad_out[1].defined() ? grad_out[1].to(at::kFloat).contiguous() : at::Tensor();
    at::Tensor dres_in = at::empty_like(residual_out);
    at::Tensor dprev = has_prev ? at::empty(residual_out.sizes(), residual_out.options().dtype(prev_dtype)) : at::Tensor();
    // 4 blocks (16 warps) per SM: each warp keeps a whole row's loads in flight, which is enough for
    // HBM, and each block's dweight partial covers 4× more rows than at 16 per SM, so the partials'
    // fixed-order sum (add_norm.cu, a second small kernel) reads a quarter as much.
    AddNormParams k = base(residual_out, weight, rstd, out_dtype, prev_dtype, ctx->saved_data["eps"].toDouble(), 4);
    at::Tensor dw_part = at::empty({k.blocks, weight.size(0)}, weight.options());
    at::Tensor dweight = at::empty_like(weight);
    if (residual_out.numel() > 0) {
      k.dnormed = dnormed.data_ptr();
      k.dresidual_out = dres_out.defined() ? dres_out.data_ptr<float>() : nullptr;
      k.dresidual_in = dres_in.data_ptr<float>();
      k.dprev = dprev.defined() ? dprev.data_ptr() : nullptr;
      k.dweight_part = dw_part.data_ptr<float>();
      k.dweight = dweight.data_ptr<float>();
      k.vec4 = can_vectorise(k.dim, {k.residual_out, k.weight, k.dnormed, k.dresidual_out, k.dresidual_in,
                                     k.dprev, k.dweight_part});
      add_norm_bwd(k);
    } else {
      dweight.zero_();
    }
    return {dres_in, dprev, dweight, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool add_norm_supported(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                        at::ScalarType out_dtype) {
  return residual_in.is_cuda() && residual_in.scalar_type() == at::kFloat && weight.is_cuda() &&
         weight.scalar_type() == at::kFloat && weight.dim() == 1 && weight.is_contiguous() &&
         weight.size(0) >= 1 && weight.size(0) <= 12288 && kernel_dtype(out_dtype) &&
         (!prev.defined() || (prev.is_cuda() && kernel_dtype(prev.scalar_type())));
}

std::pair<at::Tensor, at::Tensor> add_rms_norm_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                    const at::Tensor& weight, double eps,
                                                    at::ScalarType out_dtype) {
  const c10::cuda::CUDAGuard guard(residual_in.device());
  const auto r = AddNormCudaFunction::apply(residual_in, placeholder_if_undefined(prev), weight, eps,
                                            static_cast<int64_t>(out_dtype));
  return {r[0], r[1]};
}

}  // namespace mcd::ops::cuda
