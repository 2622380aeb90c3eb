// Host op of the few-row linear layer (decode_linear_params.h): which tensors it takes, and the
// launch on LibTorch's current stream. The dispatch is in ops/decode_linear.cpp.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include "ops/cuda/decode_linear_params.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "ops/options.h"
#include "util/error.h"

namespace mcd::ops::cuda {

static_assert(kDecodeLinearMaxRows == kDecodeFewRowMaxRows,
              "the ops option decode_few_row_limit's range (ops/options.h) is the kernels' row count");

namespace {

// The product's part of the parameters, shared by both ops: `rows` rows against weight (out, in)
// (+ bias) into out, on the current stream; vec says whether the weight side allows 16-byte loads
// (the inner length and the weight's row stride in whole 16-byte units, an aligned base).
DecodeLinearParams product_params(int64_t rows, const at::Tensor& weight, const at::Tensor& bias, at::Tensor& out,
                                  const OpsOptions& options, const char* op) {
  DecodeLinearParams k;
  k.dtype = dtype_code(weight.scalar_type(), op);
  k.rows = rows;
  k.in_features = weight.size(1);
  k.out_features = weight.size(0);
  k.weight = weight.data_ptr();
  k.w_row_stride = weight.stride(0);
  k.bias = bias.defined() ? bias.data_ptr() : nullptr;
  k.out = out.data_ptr();
  const int64_t per16 = 16 / static_cast<int64_t>(weight.element_size());
  k.vec = k.in_features % per16 == 0 && k.w_row_stride % per16 == 0 && aligned16(k.weight);
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  k.overlap = options.decode_overlap;
  return k;
}

}  // namespace

bool decode_linear_supported(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (!(x.defined() && x.is_cuda() && kernel_dtype(x.scalar_type()) && x.dim() == 2)) return false;
  const int64_t in = x.size(1);
  return x.size(0) >= 1 && x.size(0) <= kDecodeLinearMaxRows && (x.stride(1) == 1 || in == 1) &&
         weight.defined() && weight.is_cuda() && weight.device() == x.device() &&
         weight.scalar_type() == x.scalar_type() && weight.dim() == 2 && weight.size(1) == in &&
         (weight.stride(1) == 1 || in == 1) &&
         (!bias.defined() || (bias.is_cuda() && bias.device() == x.device() && bias.scalar_type() == x.scalar_type() &&
                              bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.is_contiguous()));
}

at::Tensor decode_linear_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  MCD_CHECK(decode_linear_supported(x, weight, bias), "decode_linear (CUDA): unsupported tensors: x ", x.sizes(), " ",
            x.scalar_type(), ", weight ", weight.sizes(), " ", weight.scalar_type());
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = fresh(at::empty({x.size(0), weight.size(0)}, x.options()));
  const OpsOptions options = ops_options();
  DecodeLinearParams k = product_params(x.size(0), weight, bias, out, options, "decode_linear (CUDA)");
  k.x = x.data_ptr();
  k.x_row_stride = x.stride(0);
  // 16-byte loads also need x's row stride in whole 16-byte units and an aligned base.
  k.vec = k.vec && k.x_row_stride % (16 / static_cast<int64_t>(x.element_size())) == 0 && aligned16(k.x);
  decode_linear(k);
  return out;
}

namespace {

// The (rows, D) shape of the rows entering the norm, whichever form they take; false when neither
// form is one the kernel reads (residual (rows, D) fp32 contiguous on CUDA; or token ids (rows) int64
// (any stride) and an embedding table (V ≥ 1, D) with unit inner stride on one CUDA device).
bool norm_rows_shape(const at::Tensor& residual_in, const EmbeddingRows* embed, int64_t& rows, int64_t& D) {
  if (embed != nullptr) {
    const at::Tensor &ids = embed->token_ids, &table = embed->table;
    if (residual_in.defined() || !ids.defined() || !table.defined() || !ids.is_cuda() || !table.is_cuda() ||
        ids.device() != table.device() || ids.scalar_type() != at::kLong || ids.dim() != 1 ||
        table.dim() != 2 || table.size(0) < 1 || (table.stride(1) != 1 && table.size(1) != 1))
      return false;
    rows = ids.size(0);
    D = table.size(1);
    return true;
  }
  if (!(residual_in.defined() && residual_in.is_cuda() && residual_in.scalar_type() == at::kFloat &&
        residual_in.dim() == 2 && residual_in.is_contiguous()))
    return false;
  rows = residual_in.size(0);
  D = residual_in.size(1);
  return true;
}

}  // namespace

bool add_norm_decode_linear_supported(const at::Tensor& residual_in, const at::Tensor& prev,
                                      const at::Tensor& norm_weight, const at::Tensor& weight, const at::Tensor& bias,
                                      const EmbeddingRows* embed) {
  int64_t rows = 0, D = 0;
  if (!(norm_rows_shape(residual_in, embed, rows, D) && weight.defined() && weight.is_cuda() &&
        kernel_dtype(weight.scalar_type())))
    return false;
  const at::ScalarType t = weight.scalar_type();
  const at::Device device = embed != nullptr ? embed->table.device() : residual_in.device();
  const auto on_device = [&](const at::Tensor& x) { return x.is_cuda() && x.device() == device; };
  if (embed != nullptr && embed->table.scalar_type() != t) return false;
  return rows >= 1 && rows <= kDecodeLinearMaxRows && D >= 1 &&
         rows * D * int64_t(c10::elementSize(t)) <= kDecodeLinearMaxSmem && on_device(weight) && weight.dim() == 2 &&
         weight.size(0) >= 1 && weight.size(1) == D && (weight.stride(1) == 1 || D == 1) &&
         (!prev.defined() || (on_device(prev) && prev.scalar_type() == t && prev.dim() == 2 && prev.size(0) == rows &&
                              prev.size(1) == D && prev.is_contiguous())) &&
         norm_weight.defined() && on_device(norm_weight) && norm_weight.dim() == 1 && norm_weight.size(0) == D &&
         norm_weight.is_contiguous() && (norm_weight.scalar_type() == at::kFloat || norm_weight.scalar_type() == t) &&
         (!bias.defined() || (on_device(bias) && bias.scalar_type() == t && bias.dim() == 1 &&
                              bias.size(0) == weight.size(0) && bias.is_contiguous()));
}

bool norm_conv_step_supported(const ConvStepOperands& conv, const at::Tensor& weight, int64_t rows) {
  if (conv.state == nullptr || !weight.defined()) return false;
  const at::Tensor& st = *conv.state;
  const at::Tensor& w = conv.weight;
  const auto like_weight = [&](const at::Tensor& x) {
    return x.defined() && x.is_cuda() && x.device() == weight.device() && x.scalar_type() == weight.scalar_type();
  };
  if (!(like_weight(st) && like_weight(w) && st.dim() == 3 && w.dim() == 2)) return false;
  const int64_t E = st.size(1), K = w.size(1);
  return st.size(0) == rows && E >= 1 && E <= weight.size(0) && w.size(0) == E && K >= 1 && K <= kConvMaxWidth &&
         st.size(2) == K - 1 && (w.stride(1) == 1 || K == 1) &&
         (!conv.bias.defined() ||
          (like_weight(conv.bias) && conv.bias.dim() == 1 && conv.bias.size(0) == E && conv.bias.is_contiguous()));
}

namespace {
// The argmax operands' rules (ArgmaxOperands) for `rows` rows of `columns` logits on `device`.
bool argmax_operands_fit(const ArgmaxOperands& argmax, const c10::Device& device, int64_t rows, int64_t columns) {
  if (argmax.logits == nullptr || argmax.tokens == nullptr || argmax.workspace == nullptr) return false;
  const at::Tensor &logits = *argmax.logits, &tokens = *argmax.tokens, &ws = *argmax.workspace;
  const auto on_device = [&](const at::Tensor& x, at::ScalarType t) {
    return x.defined() && x.is_cuda() && x.device() == device && x.scalar_type() == t && x.is_contiguous();
  };
  return on_device(logits, at::kFloat) && on_device(tokens, at::kLong) && on_device(ws, at::kLong) &&
         logits.dim() == 2 && logits.size(0) == rows && logits.size(1) == columns && tokens.dim() == 1 &&
         tokens.size(0) == rows && ws.dim() == 1 && ws.size(0) == rows + 1 && argmax.columns >= 1 &&
         argmax.columns <= columns && columns <= 0xFFFFFFFFll;
}
}  // namespace

bool norm_argmax_supported(const ArgmaxOperands& argmax, const at::Tensor& weight, int64_t rows) {
  return weight.defined() && weight.dim() == 2 && argmax_operands_fit(argmax, weight.device(), rows, weight.size(0));
}

bool widen_argmax_supported(const at::Tensor& values, const ArgmaxOperands& argmax) {
  if (!values.defined()) return false;
  const auto t = values.scalar_type();
  return values.is_cuda() && values.dim() == 2 && values.size(0) >= 1 &&
         values.size(0) <= 65535 && values.size(1) >= 1 && values.stride(1) == 1 &&
         (t == at::kFloat || t == at::kHalf || t == at::kBFloat16) &&
         argmax_operands_fit(argmax, values.device(), values.size(0), values.size(1));
}

void widen_argmax_cuda(const at::Tensor& values, const ArgmaxOperands& argmax) {
  MCD_CHECK(widen_argmax_supported(values, argmax),
            "widen_argmax (CUDA): unsupported operands (values (rows ≤ 65535, columns) fp32/fp16/bf16 with unit "
            "column stride; logits (rows, columns) fp32, tokens (rows) and workspace (rows + 1) int64, contiguous, on "
            "its device; 1..columns argmax columns), got values ",
            values.sizes(), " ", values.scalar_type());
  const c10::cuda::CUDAGuard guard(values.device());
  WidenArgmaxParams k;
  k.dtype = dtype_code(values.scalar_type(), "widen_argmax (CUDA)");
  k.rows = values.size(0);
  k.columns = values.size(1);
  k.values = values.data_ptr();
  k.values_row_stride = values.stride(0);
  k.logits = argmax.logits->data_ptr<float>();
  k.argmax_columns = argmax.columns;
  k.argmax_out = argmax.tokens->data_ptr<int64_t>();
  k.argmax_workspace = reinterpret_cast<unsigned long long*>(argmax.workspace->data_ptr<int64_t>());
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  widen_argmax(k);
}

std::pair<at::Tensor, at::Tensor> add_norm_decode_linear_cuda(const at::Tensor& residual_in, const at::Tensor& prev,
                                                              const at::Tensor& norm_weight, double eps,
                                                              const at::Tensor& weight, const at::Tensor& bias,
                                                              const ConvStepOperands* conv,
                                                              const ArgmaxOperands* argmax,
                                                              const EmbeddingRows* embed) {
  MCD_CHECK(add_norm_decode_linear_supported(residual_in, prev, norm_weight, weight, bias, embed),
            "add_rms_norm_decode_linear (CUDA): unsupported tensors: residual ",
            embed != nullptr ? embed->token_ids.sizes() : residual_in.sizes(), embed != nullptr ? " (token ids)" : "",
            ", weight ", weight.sizes(), " ", weight.scalar_type());
  const int64_t rows = embed != nullptr ? embed->token_ids.size(0) : residual_in.size(0);
  const int64_t D = weight.size(1);
  MCD_CHECK(conv == nullptr || norm_conv_step_supported(*conv, weight, rows),
            "add_rms_norm_decode_linear_conv_step (CUDA): unsupported conv operands: state ",
            conv && conv->state ? conv->state->sizes() : at::IntArrayRef{}, ", conv weight ",
            conv ? conv->weight.sizes() : at::IntArrayRef{}, " for weight ", weight.sizes(), " ", weight.scalar_type());
  MCD_CHECK(argmax == nullptr || (conv == nullptr && norm_argmax_supported(*argmax, weight, rows)),
            "add_rms_norm_decode_linear_argmax (CUDA): unsupported operands (logits (rows, out) fp32, tokens (rows) "
            "and workspace (rows + 1) int64, contiguous, 1..out columns, no conv step) for weight ",
            weight.sizes());
  const c10::cuda::CUDAGuard guard(weight.device());
  at::Tensor out = argmax != nullptr ? *argmax->logits : fresh(at::empty({rows, weight.size(0)}, weight.options()));
  // A new buffer, never residual_in itself: block 0 writes it while the other blocks still read.
  at::Tensor residual_out =
      argmax != nullptr ? at::Tensor() : fresh(at::empty({rows, D}, weight.options().dtype(at::kFloat)));
  // The rows sit in shared memory at a 16-byte aligned base with row stride in_features, so the
  // product's own condition for 16-byte loads is the whole condition.
  DecodeLinearParams k = product_params(rows, weight, bias, out, ops_options(), "add_rms_norm_decode_linear (CUDA)");
  if (embed != nullptr) {
    k.token_ids = embed->token_ids.data_ptr<int64_t>();
    k.token_ids_stride = embed->token_ids.stride(0);
    k.embedding = embed->table.data_ptr();
    k.embedding_row_stride = embed->table.stride(0);
    k.embedding_rows = embed->table.size(0);
  } else {
    k.residual_in = residual_in.data_ptr<float>();
  }
  k.prev = prev.defined() ? prev.data_ptr() : nullptr;
  k.norm_weight = norm_weight.data_ptr();
  k.norm_weight_fp32 = norm_weight.scalar_type() == at::kFloat;
  k.eps = static_cast<float>(eps);
  k.residual_out = residual_out.defined() ? residual_out.data_ptr<float>() : nullptr;
  if (argmax != nullptr) {
    k.argmax = true;
    k.argmax_columns = argmax->columns;
    k.argmax_out = argmax->tokens->data_ptr<int64_t>();
    k.argmax_workspace = reinterpret_cast<unsigned long long*>(argmax->workspace->data_ptr<int64_t>());
  }
  if (conv != nullptr) {
    k.conv = true;
    k.conv_state = conv->state->data_ptr();
    k.conv_state_s = strides_of(*conv->state);
    k.conv_weight = conv->weight.data_ptr();
    k.conv_weight_row_stride = conv->weight.stride(0);
    k.conv_bias = conv->bias.defined() ? conv->bias.data_ptr() : nullptr;
    k.conv_channels = conv->state->size(1);
    k.conv_width = static_cast<int>(conv->weight.size(1));
    k.conv_silu = conv->silu;
  }
  add_norm_decode_linear(k);
  return {out, residual_out};
}

}  // namespace mcd::ops::cuda
