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
#include "ops/options.h"
#include "util/error.h"
#include "util/torch_compat.h"

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
  k.weight = weight.data_ptr();
  k.weight_dtype = code(weight.scalar_type());
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
    if (!aligned16(q)) return false;  // null is aligned
  return true;
}

struct NormForward {
  at::Tensor residual_out, normed, rstd;
  bool vec4 = false;  // whether the vectorised kernel ran
};

// The forward kernel on contiguous res_in (and prev): residual_out = residual_in (+ prev), rstd,
// normed (out_dtype), each in a new buffer but residual_out when given: that may be res_in itself
// when prev is absent (each element is read, then written unchanged), how the fused linear's
// backward recomputes normed without a second residual buffer. allow_vec4 = false forces the
// scalar kernel (the two sum a row's squares in different orders, so a recomputation takes the
// kernel its forward took).
NormForward norm_forward(const at::Tensor& res_in, const at::Tensor& prev, const at::Tensor& weight, double eps,
                         at::ScalarType out_dtype, const at::Tensor& residual_out = at::Tensor(),
                         bool allow_vec4 = true) {
  NormForward f;
  f.residual_out = residual_out.defined() ? residual_out : at::empty_like(res_in);
  f.normed = at::empty(res_in.sizes(), res_in.options().dtype(out_dtype));
  f.rstd = at::empty({res_in.numel() / std::max<int64_t>(weight.size(0), 1)}, res_in.options());
  if (res_in.numel() == 0) return f;
  // Up to 16 blocks (64 warps) per SM: enough rows in flight to keep HBM busy.
  AddNormParams k = base(f.residual_out, weight, f.rstd, out_dtype, prev.defined() ? prev.scalar_type() : at::kFloat,
                         eps, 16);
  k.residual_in = res_in.data_ptr<float>();
  k.prev = prev.defined() ? prev.data_ptr() : nullptr;
  k.normed = f.normed.data_ptr();
  k.vec4 = allow_vec4 && can_vectorise(k.dim, {k.residual_in, k.prev, k.weight, k.residual_out, k.normed});
  add_norm_fwd(k);
  f.vec4 = k.vec4;
  return f;
}

struct AddNormGrads {
  at::Tensor dresidual_in, dprev, dweight;
};

// The backward kernels from the saved residual_out, weight and rstd; dnormed in out_dtype (required),
// dres_out fp32 or undefined.
AddNormGrads launch_backward(const at::Tensor& residual_out, const at::Tensor& weight, const at::Tensor& rstd,
                             const at::Tensor& dnormed, const at::Tensor& dres_out, at::ScalarType out_dtype,
                             at::ScalarType prev_dtype, bool has_prev, double eps) {
  AddNormGrads g;
  g.dresidual_in = at::empty_like(residual_out);
  g.dprev = has_prev ? at::empty(residual_out.sizes(), residual_out.options().dtype(prev_dtype)) : at::Tensor();
  // 4 blocks (16 warps) per SM: each warp keeps a whole row's loads in flight, which is enough for
  // HBM, and each block's dweight partial covers 4× more rows than at 16 per SM, so the partials'
  // fixed-order sum (add_norm.cu, a second small kernel) reads a quarter as much.
  AddNormParams k = base(residual_out, weight, rstd, out_dtype, prev_dtype, eps, 4);
  at::Tensor dw_part = at::empty({k.blocks, weight.size(0)}, weight.options());
  g.dweight = at::empty_like(weight);
  if (residual_out.numel() > 0) {
    k.dnormed = dnormed.data_ptr();
    k.dresidual_out = dres_out.defined() ? dres_out.data_ptr<float>() : nullptr;
    k.dresidual_in = g.dresidual_in.data_ptr<float>();
    k.dprev = g.dprev.defined() ? g.dprev.data_ptr() : nullptr;
    k.dweight_part = dw_part.data_ptr<float>();
    k.dweight = g.dweight.data_ptr<float>();
    k.vec4 = can_vectorise(k.dim, {k.residual_out, k.weight, k.dnormed, k.dresidual_out, k.dresidual_in,
                                   k.dprev, k.dweight_part});
    add_norm_bwd(k);
  } else {
    g.dweight.zero_();
  }
  return g;
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
    const NormForward f = norm_forward(res_in, prev_c, weight, eps, out_dtype);
    ctx->save_for_backward({f.residual_out, weight, f.rstd});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["out_dtype"] = out_dtype_code;
    ctx->saved_data["prev_dtype"] = static_cast<int64_t>(prev.defined() ? prev.scalar_type() : at::kFloat);
    ctx->saved_data["has_prev"] = prev.defined();
    return {f.normed, f.residual_out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &residual_out = s[0], &weight = s[1], &rstd = s[2];
    const auto out_dtype = static_cast<at::ScalarType>(ctx->saved_data["out_dtype"].toInt());
    const at::Tensor dnormed = grad_out[0].defined() ? grad_out[0].to(out_dtype).contiguous()
                                                     : at::zeros(residual_out.sizes(), residual_out.options().dtype(out_dtype));
    const at::Tensor dres_out = grad_out[1].defined() ? grad_out[1].to(at::kFloat).contiguous() : at::Tensor();
    const AddNormGrads g = launch_backward(residual_out, weight, rstd, dnormed, dres_out, out_dtype,
                                           static_cast<at::ScalarType>(ctx->saved_data["prev_dtype"].toInt()),
                                           ctx->saved_data["has_prev"].toBool(), ctx->saved_data["eps"].toDouble());
    return {g.dresidual_in, g.dprev, g.dweight, at::Tensor(), at::Tensor()};
  }
};

// add_rms_norm followed by a linear layer on normed in autocast's dtype (ops/add_rms_norm.h,
// add_rms_norm_linear). Saves residual_out and the weights, not normed or rstd: the backward runs
// the forward kernel again on residual_out (in place, prev absent: each element is rewritten with
// its own value), which gives the forward's normed and rstd bit for bit (same kernel path, same
// fp32 inputs, same per-row reduction), then the two products of autocast_linear's backward and
// the norm's backward kernels.
class AddNormLinearCudaFunction : public torch::autograd::Function<AddNormLinearCudaFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& residual_in, const at::Tensor& prev_in,
                                                const at::Tensor& weight, double eps, const at::Tensor& proj_w,
                                                const at::Tensor& proj_b_in) {
    const at::Tensor prev = undefined_if_placeholder(prev_in), proj_b = undefined_if_placeholder(proj_b_in);
    const auto lo = cuda_autocast_dtype();
    const at::Tensor res_in = residual_in.contiguous();
    const at::Tensor prev_c = prev.defined() ? prev.contiguous() : prev;
    const NormForward f = norm_forward(res_in, prev_c, weight, eps, lo);
    const at::Tensor w_lo = proj_w.to(lo);
    const at::Tensor projected = at::linear(f.normed, w_lo, proj_b.defined() ? proj_b.to(lo) : proj_b);
    ctx->save_for_backward({f.residual_out, weight, ops_options().keep_cast_weights ? w_lo : proj_w});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["lo"] = static_cast<int64_t>(lo);
    ctx->saved_data["prev_dtype"] = static_cast<int64_t>(prev.defined() ? prev.scalar_type() : at::kFloat);
    ctx->saved_data["has_prev"] = prev.defined();
    ctx->saved_data["has_bias"] = proj_b.defined();
    ctx->saved_data["vec4"] = f.vec4;
    return {projected, f.residual_out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &residual_out = s[0], &weight = s[1];
    const auto lo = static_cast<at::ScalarType>(ctx->saved_data["lo"].toInt());
    const at::Tensor w_lo = s[2].to(lo);  // no-op when the forward kept its cast
    const double eps = ctx->saved_data["eps"].toDouble();
    const int64_t D = weight.size(0), out = w_lo.size(0);
    // normed and rstd again, exactly as the forward made them.
    const NormForward f = norm_forward(residual_out, at::Tensor(), weight, eps, lo, /*residual_out=*/residual_out,
                                       ctx->saved_data["vec4"].toBool());
    const at::Tensor& normed = f.normed;
    at::Tensor dnormed, dproj_w, dproj_b;
    if (grad_out[0].defined()) {
      const at::Tensor g = grad_out[0].to(lo).reshape({-1, out});  // (rows, out)
      dnormed = at::mm(g, w_lo).view(normed.sizes());
      dproj_w = mm_fp32(g.t(), normed.reshape({-1, D}));  // fp32 from the product itself
      if (ctx->saved_data["has_bias"].toBool()) dproj_b = g.to(at::kFloat).sum(0);
    } else {
      dnormed = at::zeros(normed.sizes(), normed.options());
    }
    const at::Tensor dres_out = grad_out[1].defined() ? grad_out[1].to(at::kFloat).contiguous() : at::Tensor();
    const AddNormGrads g = launch_backward(residual_out, weight, f.rstd, dnormed.contiguous(), dres_out, lo,
                                           static_cast<at::ScalarType>(ctx->saved_data["prev_dtype"].toInt()),
                                           ctx->saved_data["has_prev"].toBool(), eps);
    return {g.dresidual_in, g.dprev, g.dweight, at::Tensor(), dproj_w, dproj_b};
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

bool add_norm_inference_supported(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                                  at::ScalarType out_dtype) {
  return residual_in.is_cuda() && residual_in.scalar_type() == at::kFloat && weight.is_cuda() &&
         weight.device() == residual_in.device() && kernel_dtype(weight.scalar_type()) && weight.dim() == 1 &&
         weight.is_contiguous() && weight.size(0) >= 1 && weight.size(0) <= 12288 && kernel_dtype(out_dtype) &&
         (!prev.defined() || (prev.is_cuda() && kernel_dtype(prev.scalar_type())));
}

std::pair<at::Tensor, at::Tensor> add_rms_norm_inference_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                              const at::Tensor& weight, double eps,
                                                              at::ScalarType out_dtype) {
  MCD_CHECK(add_norm_inference_supported(residual_in, prev, weight, out_dtype),
            "add_rms_norm (CUDA, inference): unsupported tensors: residual ", residual_in.sizes(), " ",
            residual_in.scalar_type(), ", weight ", weight.sizes(), " ", weight.scalar_type());
  const c10::cuda::CUDAGuard guard(residual_in.device());
  const NormForward f = norm_forward(residual_in.contiguous(), prev.defined() ? prev.contiguous() : prev, weight, eps,
                                     out_dtype);
  return {f.normed, f.residual_out};
}

bool add_norm_linear_supported(const at::Tensor& residual_in, const at::Tensor& prev, const at::Tensor& weight,
                               const at::Tensor& proj_w, const at::Tensor& proj_b) {
  return cuda_autocast_enabled() && add_norm_supported(residual_in, prev, weight, cuda_autocast_dtype()) &&
         proj_w.is_cuda() && proj_w.scalar_type() == at::kFloat && proj_w.dim() == 2 &&
         proj_w.size(1) == weight.size(0) &&
         (!proj_b.defined() || (proj_b.is_cuda() && proj_b.scalar_type() == at::kFloat && proj_b.dim() == 1 &&
                                proj_b.size(0) == proj_w.size(0)));
}

std::pair<at::Tensor, at::Tensor> add_rms_norm_linear_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                           const at::Tensor& weight, double eps,
                                                           const at::Tensor& proj_w, const at::Tensor& proj_b) {
  const c10::cuda::CUDAGuard guard(residual_in.device());
  const auto r = AddNormLinearCudaFunction::apply(residual_in, placeholder_if_undefined(prev), weight, eps, proj_w,
                                                  placeholder_if_undefined(proj_b));
  return {r[0], r[1]};
}

}  // namespace mcd::ops::cuda
