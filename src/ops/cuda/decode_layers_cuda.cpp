// Host op of the persistent decode kernel (decode_layers_params.h): which tensors it takes, the pointer table, and
// the launch on LibTorch's current stream. The dispatch is in ops/decode_layers.cpp.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include "ops/cuda/decode_layers_params.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "util/error.h"

namespace mcd::ops::cuda {

namespace {

constexpr int64_t kDState = 16, kConvWidth = 4;

bool bf16_on(const at::Tensor& t, const at::Device& device, std::initializer_list<int64_t> sizes) {
  return t.defined() && t.is_cuda() && t.device() == device && t.scalar_type() == at::kBFloat16 && t.is_contiguous() &&
         t.sizes().equals(sizes) && aligned16(t.data_ptr());
}

}  // namespace

bool decode_layers_supported(const at::Tensor& token_ids, const at::Tensor& embedding,
                             const std::vector<DecodeLayer>& layers) {
  if (!(token_ids.defined() && token_ids.is_cuda() && token_ids.scalar_type() == at::kLong && token_ids.dim() == 1 &&
        token_ids.is_contiguous()))
    return false;
  const int64_t B = token_ids.size(0);
  if (B < 1 || B > kDecodeLayersMaxRows || layers.empty() || int64_t(layers.size()) > kDecodeLayersMaxLayers)
    return false;
  const at::Device device = token_ids.device();
  if (!(embedding.defined() && embedding.dim() == 2)) return false;
  const int64_t D = embedding.size(1);
  if (!bf16_on(embedding, device, {embedding.size(0), D})) return false;
  const int64_t E = layers[0].conv_state.defined() ? layers[0].conv_state.size(1) : 0;
  const int64_t R = layers[0].dt_proj_weight.defined() ? layers[0].dt_proj_weight.size(1) : 0;
  if (!decode_layers_shape_compiled(int(D), int(E), int(R))) return false;
  for (const DecodeLayer& L : layers) {
    const bool ok = bf16_on(L.norm_weight, device, {D}) && bf16_on(L.in_proj, device, {2 * E, D}) &&
                    bf16_on(L.conv_weight, device, {E, kConvWidth}) && bf16_on(L.conv_bias, device, {E}) &&
                    bf16_on(L.x_proj, device, {R + 2 * kDState, E}) && bf16_on(L.dt_proj_weight, device, {E, R}) &&
                    bf16_on(L.dt_proj_bias, device, {E}) && bf16_on(L.A_log, device, {E, kDState}) &&
                    bf16_on(L.D, device, {E}) && bf16_on(L.out_proj, device, {D, E}) &&
                    bf16_on(L.conv_state, device, {B, E, kConvWidth - 1}) && L.ssm_state.defined() &&
                    L.ssm_state.is_cuda() && L.ssm_state.device() == device && L.ssm_state.scalar_type() == at::kFloat &&
                    L.ssm_state.is_contiguous() && L.ssm_state.sizes().equals({B, E, kDState}) &&
                    aligned16(L.ssm_state.data_ptr());
    if (!ok) return false;
  }
  const c10::cuda::CUDAGuard guard(device);
  return decode_layers_fits_device(int(D), int(E), int(R));
}

std::pair<at::Tensor, at::Tensor> decode_layers_cuda(const at::Tensor& token_ids, const at::Tensor& embedding,
                                                     const std::vector<DecodeLayer>& layers, double eps) {
  MCD_CHECK(decode_layers_supported(token_ids, embedding, layers), "decode_layers (CUDA): unsupported tensors: ",
            layers.size(), " layers, token_ids ", token_ids.sizes(), ", embedding ", embedding.sizes(), " ",
            embedding.scalar_type());
  const c10::cuda::CUDAGuard guard(token_ids.device());
  const int64_t B = token_ids.size(0), D = embedding.size(1), E = layers[0].conv_state.size(1);
  const auto options = embedding.options();
  at::Tensor residual = fresh(at::empty({B, D}, options.dtype(at::kFloat)));
  at::Tensor pending = fresh(at::empty({B, D}, options));
  at::Tensor scratch = at::empty({int64_t(decode_layers_scratch_bytes(int(D), int(E)))}, options.dtype(at::kByte));
  at::Tensor counter = at::empty({1}, options.dtype(at::kInt));  // zeroed by decode_layers before the kernel
  DecodeLayersParams p;
  p.layers = int(layers.size());
  p.rows = int(B);
  p.d_model = int(D);
  p.d_inner = int(E);
  p.dt_rank = int(layers[0].dt_proj_weight.size(1));
  p.eps = float(eps);
  p.tokens = token_ids.data_ptr<int64_t>();
  p.embedding = embedding.data_ptr();
  p.residual = residual.data_ptr<float>();
  p.pending = pending.data_ptr();
  p.scratch = scratch.data_ptr();
  p.counter = reinterpret_cast<unsigned*>(counter.data_ptr());
  for (size_t l = 0; l < layers.size(); ++l) {
    const DecodeLayer& L = layers[l];
    DecodeLayerPointers& q = p.layer[l];
    q.norm_weight = L.norm_weight.data_ptr();
    q.in_proj = L.in_proj.data_ptr();
    q.conv_weight = L.conv_weight.data_ptr();
    q.conv_bias = L.conv_bias.data_ptr();
    q.x_proj = L.x_proj.data_ptr();
    q.dt_proj_weight = L.dt_proj_weight.data_ptr();
    q.dt_proj_bias = L.dt_proj_bias.data_ptr();
    q.A_log = L.A_log.data_ptr();
    q.D = L.D.data_ptr();
    q.out_proj = L.out_proj.data_ptr();
    q.conv_state = L.conv_state.data_ptr();
    q.ssm_state = L.ssm_state.data_ptr<float>();
  }
  p.stream = c10::cuda::getCurrentCUDAStream().stream();
  decode_layers(p);
  return {residual, pending};
}

}  // namespace mcd::ops::cuda
