// Host op of the CUDA causal depthwise conv1d: checks, allocation and the launch on LibTorch's
// current stream of the kernels of causal_conv.cuh (through the plain struct of conv_params.h).
// The autograd node (shared with the CPU loops) and the dispatch are in ops/causal_conv1d.cpp.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>
#include <initializer_list>

#include "ops/cuda/conv_params.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "util/error.h"

namespace mcd::ops::cuda {
namespace {

void check(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  MCD_CHECK(x.defined() && x.is_cuda() && x.dim() == 3,
            "causal_conv1d (CUDA): x must be a CUDA (B, E, L) tensor");
  MCD_CHECK(weight.dim() == 2 && weight.size(0) == x.size(1) && weight.size(1) >= 1 &&
                weight.size(1) <= kConvMaxWidth,
            "causal_conv1d (CUDA): weight must be (E, K) with E=", x.size(1), " and K ≤ ",
            kConvMaxWidth, ", got ", weight.sizes());
  MCD_CHECK(weight.device() == x.device() && (!bias.defined() || bias.device() == x.device()),
            "causal_conv1d (CUDA): weight and bias must be on ", x.device());
  MCD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == x.size(1)),
            "causal_conv1d (CUDA): bias must be (E)");
  MCD_CHECK(x.size(0) <= 65535 && (x.size(2) + kConvTimeTile - 1) / kConvTimeTile <= 65535,
            "causal_conv1d (CUDA): B ≤ 65535 and L ≤ ", int64_t{65535} * kConvTimeTile, " required");
}

// Everything but the weights' pointers (set_fp32_weights, or the forward's weights in x's dtype).
CausalConvParams base_params(const at::Tensor& x, const at::Tensor& weight, bool silu) {
  CausalConvParams k;
  k.dtype = dtype_code(x.scalar_type(), "causal_conv1d (CUDA)");
  k.batch = x.size(0);
  k.dim = x.size(1);
  k.len = x.size(2);
  k.width = static_cast<int>(weight.size(1));
  k.n_time_tiles = (k.len + kConvTimeTile - 1) / kConvTimeTile;
  k.x = x.data_ptr();
  k.x_s = strides_of(x);
  k.silu = silu;
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  return k;
}

// Whether a (B, E, L) tensor suits the channel-contiguous kernels (conv_params.h, channel_last).
bool channel_last_ok(const at::Tensor& t) {
  const int64_t v = kConvLastCh;
  return t.stride(1) == 1 && t.size(1) % v == 0 && t.stride(0) % v == 0 && t.stride(2) % v == 0 &&
         reinterpret_cast<std::uintptr_t>(t.data_ptr()) % (v * t.element_size()) == 0;
}

// Picks the kernel family for these tensors and sizes the per-(batch, time tile) partials.
void choose_kernels(CausalConvParams& k, std::initializer_list<const at::Tensor*> tensors) {
  bool last = (k.len + kConvSeg - 1) / kConvSeg <= 65535;
  for (const at::Tensor* t : tensors) last = last && channel_last_ok(*t);
  k.channel_last = last;
  const int64_t tile = last ? kConvSeg : kConvTimeTile;
  k.n_time_tiles = (k.len + tile - 1) / tile;
}

at::Tensor f32(const at::Tensor& t) { return t.defined() ? t.to(at::kFloat).contiguous() : t; }

void set_fp32_weights(CausalConvParams& k, const at::Tensor& w32, const at::Tensor& b32) {
  k.weight = w32.data_ptr<float>();
  k.bias = b32.defined() ? b32.data_ptr<float>() : nullptr;
}

// Whether the time-contiguous kernel may read weight and bias as they are: both in x's half
// precision and contiguous (a bf16 / fp16 model served; fp32 weights need no cast anyway).
bool weights_in_x_dtype(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const auto t = x.scalar_type();
  return t != at::kFloat && weight.scalar_type() == t && weight.is_contiguous() &&
         (!bias.defined() || (bias.scalar_type() == t && bias.is_contiguous()));
}

}  // namespace

bool conv_supported(const at::Tensor& x, const at::Tensor& weight) {
  const auto t = x.scalar_type();
  return x.is_cuda() && (t == at::kFloat || t == at::kHalf || t == at::kBFloat16) &&
         weight.dim() == 2 && weight.size(1) >= 1 && weight.size(1) <= kConvMaxWidth &&
         x.size(0) <= 65535 && (x.size(2) + kConvTimeTile - 1) / kConvTimeTile <= 65535;
}

bool conv_writes_final_state(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& final_state) {
  return x.is_cuda() && x.dim() == 3 && time_unit_stride(x) && weight.dim() == 2 && final_state.defined() &&
         final_state.device() == x.device() && final_state.scalar_type() == x.scalar_type() &&
         final_state.dim() == 3 && final_state.size(0) == x.size(0) && final_state.size(1) == x.size(1) &&
         final_state.size(2) == weight.size(1) - 1;
}

at::Tensor causal_conv1d_cuda_forward(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias, bool silu, const at::Tensor& final_state) {
  check(x, weight, bias);
  const bool with_state = final_state.defined();
  MCD_CHECK(!with_state || conv_writes_final_state(x, weight, final_state),
            "causal_conv1d (CUDA): final_state must be (B, E, K-1) = (", x.size(0), ", ", x.size(1), ", ",
            weight.size(1) - 1, ") in x's dtype on its device, and x time-contiguous; got ", final_state.sizes());
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = fresh(alloc_like_layout(x, x.scalar_type()));
  if (x.numel() == 0) {
    if (with_state) final_state.zero_();  // nothing consumed: the state is all padding
    return out;
  }
  CausalConvParams k = base_params(x, weight, silu);
  choose_kernels(k, {&x, &out});
  // (conv_params.h) The final state needs the time-contiguous kernel, which takes any such rows.
  k.time_rows = time_unit_stride(x) && time_unit_stride(out) && (with_state || !k.channel_last);
  if (k.time_rows) k.channel_last = false;
  at::Tensor w32, b32;  // (alive until the launch)
  if (k.time_rows && weights_in_x_dtype(x, weight, bias)) {
    k.weight_in_dtype = weight.data_ptr();
    k.bias_in_dtype = bias.defined() ? bias.data_ptr() : nullptr;
  } else {
    w32 = f32(weight);
    b32 = f32(bias);
    set_fp32_weights(k, w32, b32);
  }
  k.out = out.data_ptr();
  k.out_s = strides_of(out);
  if (with_state && final_state.numel() > 0) {
    k.final_state = final_state.data_ptr();
    k.final_state_s = strides_of(final_state);
  }
  causal_conv_fwd(k);
  return out;
}

ConvCudaGrads causal_conv1d_cuda_backward(const at::Tensor& dout_in, const at::Tensor& x,
                                          const at::Tensor& weight, const at::Tensor& bias,
                                          bool silu, const at::Tensor& dx_into, bool deterministic) {
  check(x, weight, bias);
  MCD_CHECK(dout_in.sizes() == x.sizes(), "causal_conv1d (CUDA) backward: dout ", dout_in.sizes(),
            " must match x ", x.sizes());
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor w32 = f32(weight), b32 = f32(bias);
  const at::Tensor dout = dout_in.to(x.scalar_type());
  const int64_t B = x.size(0), E = x.size(1), K = weight.size(1);
  const auto o32 = x.options().dtype(at::kFloat);
  ConvCudaGrads g;
  if (dx_into.defined()) {
    MCD_CHECK(dx_into.sizes() == x.sizes() && dx_into.scalar_type() == x.scalar_type() &&
                  dx_into.device() == x.device(),
              "causal_conv1d (CUDA) backward: dx_into ", dx_into.sizes(), " must match x ", x.sizes(),
              " in dtype and device");
    g.dx = dx_into;
  } else {
    g.dx = fresh(alloc_like_layout(x, x.scalar_type()));
  }
  if (x.numel() == 0) {
    g.dweight = at::zeros({E, K}, o32);
    if (bias.defined()) g.dbias = at::zeros({E}, o32);
    return g;
  }
  CausalConvParams k = base_params(x, weight, silu);
  set_fp32_weights(k, w32, b32);
  choose_kernels(k, {&x, &dout, &g.dx});
  k.dout = dout.data_ptr();
  k.dout_s = strides_of(dout);
  k.dx = g.dx.data_ptr();
  k.dx_s = strides_of(g.dx);
  if (k.channel_last && !deterministic) {
    // One zero-filled buffer (one memset) holds dweight and dbias; the kernel adds into it.
    const at::Tensor acc = at::zeros({E * (K + 1)}, o32);
    g.dweight = acc.narrow(0, 0, E * K).view({E, K});
    k.dweight = g.dweight.data_ptr<float>();
    if (bias.defined()) {
      g.dbias = acc.narrow(0, E * K, E);
      k.dbias = g.dbias.data_ptr<float>();
    }
    causal_conv_bwd(k);
    return g;
  }
  const int64_t tiles = k.n_time_tiles;
  at::Tensor dw_part = fresh(at::empty({B * tiles, E, K}, o32));
  at::Tensor db_part = bias.defined() ? fresh(at::empty({B * tiles, E}, o32)) : at::Tensor();
  k.dweight_part = dw_part.data_ptr<float>();
  k.dbias_part = db_part.defined() ? db_part.data_ptr<float>() : nullptr;
  causal_conv_bwd(k);
  g.dweight = dw_part.sum(0);
  if (bias.defined()) g.dbias = db_part.sum(0);
  return g;
}

}  // namespace mcd::ops::cuda
