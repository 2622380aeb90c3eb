#include "ops/decode_linear.h"

#include <optional>

#include "ops/add_rms_norm.h"
#include "ops/backend.h"
#include "ops/causal_conv1d.h"
#include "ops/gradient_wanted.h"
#include "ops/options.h"
#include "util/error.h"
#include "util/torch_compat.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {
#ifdef MCD_WITH_CUDA
namespace {

// The few-row kernels take up to kDecodeLinearMaxRows rows; the ops option decode_few_row_limit says
// up to how many they run (above it, cuBLAS's product and the separate norm).
bool within_few_row_limit(int64_t rows) { return rows <= ops_options().decode_few_row_limit; }

}  // namespace
#endif

bool decode_linear_runs_kernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
#ifdef MCD_WITH_CUDA
  // The kernel has no backward: with gradients wanted, torch's linear (autograd) runs; likewise under
  // CUDA autocast, whose own casts and product then apply as they would to a torch linear.
  const bool wants_grad = cuda_autocast_enabled() || gradient_wanted(x, weight, bias);
  return !wants_grad && backend() == Backend::kAuto && x.dim() == 2 && within_few_row_limit(x.size(0)) &&
         cuda::decode_linear_supported(x, weight, bias);
#else
  (void)x, (void)weight, (void)bias;
  return false;
#endif
}

at::Tensor decode_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  MCD_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1),
            "decode_linear: x must be (rows, in) and weight (out, in), got ", x.sizes(), " and ", weight.sizes());
#ifdef MCD_WITH_CUDA
  if (decode_linear_runs_kernel(x, weight, bias)) return cuda::decode_linear_cuda(x, weight, bias);
#endif
  return at::linear(x, weight, bias);
}

NormInput NormInput::embedded(const at::Tensor& token_ids, const at::Tensor& embedding) {
  MCD_CHECK(token_ids.dim() == 1 && token_ids.scalar_type() == at::kLong && embedding.dim() == 2,
            "NormInput::embedded: token ids must be (rows) int64 and the embedding (V, D), got ", token_ids.sizes(), " ",
            token_ids.scalar_type(), " and ", embedding.sizes());
  NormInput in(at::Tensor{});
  in.token_ids = token_ids;
  in.embedding = embedding;
  return in;
}

at::Tensor NormInput::dense() const {
  if (!token_ids.defined()) return residual;
  const at::Tensor rows = embedding.index_select(0, token_ids);
  return rows.scalar_type() == at::kDouble ? rows : rows.to(at::kFloat);
}

namespace {

bool norm_linear_wants_grad(const NormInput& residual_in, const at::Tensor& prev, const at::Tensor& norm_weight,
                            const at::Tensor& weight, const at::Tensor& bias) {
  return cuda_autocast_enabled() ||
         gradient_wanted(residual_in.residual, residual_in.embedding, prev, norm_weight, weight, bias);
}

#ifdef MCD_WITH_CUDA
// The CUDA host op's form of the norm's input rows: null for a dense residual.
std::optional<cuda::EmbeddingRows> embedding_rows(const NormInput& in) {
  if (!in.token_ids.defined()) return std::nullopt;
  return cuda::EmbeddingRows{in.token_ids, in.embedding};
}
#endif

}  // namespace

NormLinearOut add_rms_norm_decode_linear(const NormInput& residual_in, const at::Tensor& prev,
                                         const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                         const at::Tensor& bias) {
  const bool wants_grad = norm_linear_wants_grad(residual_in, prev, norm_weight, weight, bias);
#ifdef MCD_WITH_CUDA
  const std::optional<cuda::EmbeddingRows> embed = embedding_rows(residual_in);
  const cuda::EmbeddingRows* e = embed ? &*embed : nullptr;
  if (!wants_grad && backend() == Backend::kAuto && within_few_row_limit(residual_in.rows()) &&
      cuda::add_norm_decode_linear_supported(residual_in.residual, prev, norm_weight, weight, bias, e)) {
    auto [out, residual] =
        cuda::add_norm_decode_linear_cuda(residual_in.residual, prev, norm_weight, eps, weight, bias, nullptr, nullptr, e);
    return {out, residual};
  }
#else
  (void)wants_grad;
#endif
  const AddNormOut n = add_rms_norm(residual_in.dense(), prev, norm_weight, eps, weight.scalar_type());
  return {decode_linear(n.normed, weight, bias), n.residual};
}

NormConvOut add_rms_norm_decode_linear_conv_step(const NormInput& residual_in, const at::Tensor& prev,
                                                 const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                                 const at::Tensor& bias, at::Tensor& conv_state,
                                                 const at::Tensor& conv_weight, const at::Tensor& conv_bias, bool silu) {
  MCD_CHECK(conv_state.dim() == 3 && weight.dim() == 2 && conv_state.size(1) <= weight.size(0),
            "add_rms_norm_decode_linear_conv_step: conv_state must be (rows, E, K-1) with E at most the weight's ",
            weight.dim() == 2 ? weight.size(0) : -1, " output columns, got ", conv_state.sizes());
  const int64_t E = conv_state.size(1), rest = weight.size(0) - E;
#ifdef MCD_WITH_CUDA
  const std::optional<cuda::EmbeddingRows> embed = embedding_rows(residual_in);
  const cuda::EmbeddingRows* e = embed ? &*embed : nullptr;
  const bool wants_grad = norm_linear_wants_grad(residual_in, prev, norm_weight, weight, bias) ||
                          gradient_wanted(conv_weight, conv_bias);
  const cuda::ConvStepOperands conv{&conv_state, conv_weight, conv_bias, silu};
  if (!wants_grad && backend() == Backend::kAuto && within_few_row_limit(residual_in.rows()) &&
      cuda::add_norm_decode_linear_supported(residual_in.residual, prev, norm_weight, weight, bias, e) &&
      cuda::norm_conv_step_supported(conv, weight, residual_in.rows())) {
    auto [out, residual] =
        cuda::add_norm_decode_linear_cuda(residual_in.residual, prev, norm_weight, eps, weight, bias, &conv, nullptr, e);
    return {out.narrow(1, 0, E), out.narrow(1, E, rest), residual};
  }
#endif
  const NormLinearOut r = add_rms_norm_decode_linear(residual_in, prev, norm_weight, eps, weight, bias);
  const at::Tensor u = causal_conv1d_step(conv_state, r.out.narrow(1, 0, E), conv_weight, conv_bias, silu);
  return {u, r.out.narrow(1, E, rest), r.residual};
}

void add_rms_norm_decode_linear_argmax(const at::Tensor& residual_in, const at::Tensor& prev,
                                       const at::Tensor& norm_weight, double eps, const at::Tensor& weight,
                                       int64_t argmax_columns, at::Tensor& logits, at::Tensor& tokens,
                                       at::Tensor& workspace) {
  MCD_CHECK(weight.dim() == 2 && argmax_columns >= 1 && argmax_columns <= weight.size(0),
            "add_rms_norm_decode_linear_argmax: argmax_columns must be in [1, ", weight.dim() == 2 ? weight.size(0) : 0,
            "], got ", argmax_columns);
  MCD_CHECK(logits.dim() == 2 && logits.size(0) == residual_in.size(0) && logits.size(1) == weight.size(0) &&
                tokens.dim() == 1 && tokens.size(0) == residual_in.size(0) && tokens.scalar_type() == at::kLong,
            "add_rms_norm_decode_linear_argmax: logits must be (rows, ", weight.size(0),
            ") and tokens (rows) int64, got ", logits.sizes(), " and ", tokens.sizes(), " ", tokens.scalar_type());
#ifdef MCD_WITH_CUDA
  const cuda::ArgmaxOperands argmax{&logits, &tokens, &workspace, argmax_columns};
  if (!norm_linear_wants_grad(residual_in, prev, norm_weight, weight, {}) && backend() == Backend::kAuto &&
      within_few_row_limit(residual_in.size(0)) &&
      cuda::add_norm_decode_linear_supported(residual_in, prev, norm_weight, weight, {}) &&
      cuda::norm_argmax_supported(argmax, weight, residual_in.size(0))) {
    cuda::add_norm_decode_linear_cuda(residual_in, prev, norm_weight, eps, weight, {}, nullptr, &argmax);
    return;
  }
#endif
  const NormLinearOut r = add_rms_norm_decode_linear(residual_in, prev, norm_weight, eps, weight);
  widen_argmax(r.out, argmax_columns, logits, tokens, workspace);
}

void widen_argmax(const at::Tensor& values, int64_t argmax_columns, at::Tensor& logits, at::Tensor& tokens,
                  at::Tensor& workspace) {
  MCD_CHECK(values.dim() == 2 && logits.dim() == 2 && logits.sizes() == values.sizes() && tokens.dim() == 1 &&
                tokens.size(0) == values.size(0) && tokens.scalar_type() == at::kLong,
            "widen_argmax: values (rows, V), logits (rows, V) and tokens (rows) int64 expected, got ", values.sizes(),
            ", ", logits.sizes(), " and ", tokens.sizes(), " ", tokens.scalar_type());
  MCD_CHECK(argmax_columns >= 1 && argmax_columns <= values.size(1), "widen_argmax: argmax_columns must be in [1, ",
            values.size(1), "], got ", argmax_columns);
#ifdef MCD_WITH_CUDA
  const cuda::ArgmaxOperands argmax{&logits, &tokens, &workspace, argmax_columns};
  if (backend() == Backend::kAuto && !gradient_wanted(values) && cuda::widen_argmax_supported(values, argmax)) {
    cuda::widen_argmax_cuda(values, argmax);
    return;
  }
#else
  (void)workspace;
#endif
  logits.copy_(values);
  tokens.copy_(logits.narrow(1, 0, argmax_columns).argmax(-1));
}

}  // namespace mcd::ops
