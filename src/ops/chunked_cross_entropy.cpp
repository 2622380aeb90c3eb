// Chunked LM-head cross-entropy with the gradient formed in the forward (see
// chunked_cross_entropy.h).
#include "ops/chunked_cross_entropy.h"

#include "ops/backend.h"
#include "ops/cpu/cross_entropy_cpu.h"
#include "ops/gradient_wanted.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {
namespace {

at::ScalarType acc_type(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// dtype of the head's matrix products: autocast's (bf16) on CUDA when the forward runs under
// autocast, else the accumulation type. Log-sum-exp and the gradient sums stay in fp32.
at::ScalarType matmul_type(const at::Tensor& hidden) {
  if (hidden.is_cuda() && hidden.scalar_type() != at::kDouble && cuda_autocast_enabled())
    return cuda_autocast_dtype();
  return acc_type(hidden);
}

class ChunkedCrossEntropy : public torch::autograd::Function<ChunkedCrossEntropy> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& targets, int64_t chunk,
                                                bool want_grad) {
    const auto acc = acc_type(hidden), mm = matmul_type(hidden);
    const int64_t T = hidden.size(0);
    const double inv_T = 1.0 / double(std::max<int64_t>(T, 1));
    at::Tensor total = at::zeros({}, hidden.options().dtype(acc));
    const at::Tensor w = weight.to(mm);
    at::Tensor dhidden, dweight;
    if (want_grad) {
      dhidden = at::empty(hidden.sizes(), hidden.options().dtype(acc));
      // Allocated, not zeroed: the first chunk's product writes it (no memset, no read of zeros).
      dweight = at::empty(weight.sizes(), weight.options().dtype(acc));
    }
    for (int64_t start = 0; start < T; start += chunk) {
      const int64_t n = std::min(chunk, T - start);
      const at::Tensor h = hidden.narrow(0, start, n).to(mm);
      const at::Tensor logits = at::matmul(h, w.t());  // (n, V) in mm
      // Per-row loss; with want_grad the logits become d(mean loss)/d(logits) in place.
      total += cross_entropy_rows(logits, targets.narrow(0, start, n), inv_T, want_grad).sum().to(acc);
      if (!want_grad) continue;
      dhidden.narrow(0, start, n).copy_(at::matmul(logits, w));
      if (start == 0) mm_fp32_out(dweight, logits.t(), h);  // the first chunk writes the sum's start
      else if (mm == acc) dweight.addmm_(logits.t(), h);
      else addmm_fp32_(dweight, logits.t(), h);  // low-precision operands, fp32 sum over chunks
    }
    ctx->saved_data["dhidden"] = dhidden;
    ctx->saved_data["dweight"] = dweight;
    ctx->saved_data["hidden_type"] = static_cast<int64_t>(hidden.scalar_type());
    ctx->saved_data["weight_type"] = static_cast<int64_t>(weight.scalar_type());
    return {total * inv_T};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const at::Tensor dhidden = ctx->saved_data["dhidden"].toTensor();
    const at::Tensor dweight = ctx->saved_data["dweight"].toTensor();
    MCD_CHECK(dhidden.defined() && dweight.defined(),
              "chunked_cross_entropy: backward through a forward that ran without gradients (GradMode off or no "
              "input requiring grad)");
    const auto ht = static_cast<at::ScalarType>(ctx->saved_data["hidden_type"].toInt());
    const auto wt = static_cast<at::ScalarType>(ctx->saved_data["weight_type"].toInt());
    const at::Tensor g = grad_out[0].to(dhidden.scalar_type());
    // Scaled and cast in one pass (the product in fp32, rounded once to the hidden's dtype).
    at::Tensor dh = at::empty(dhidden.sizes(), dhidden.options().dtype(ht));
    at::mul_out(dh, dhidden, g);
    return {dh, (dweight * g).to(wt), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor cross_entropy_rows_composite(const at::Tensor& logits, const at::Tensor& targets, double grad_scale,
                                        bool write_grad) {
  const auto acc = acc_type(logits);
  const at::Tensor x = logits.to(acc);
  const at::Tensor lse = at::logsumexp(x, 1);
  const at::Tensor loss = lse - x.gather(1, targets.unsqueeze(1)).squeeze(1);
  if (write_grad) {
    at::Tensor g = at::exp(x - lse.unsqueeze(1));
    g.scatter_add_(1, targets.unsqueeze(1), at::full({x.size(0), 1}, -1.0, g.options()));
    logits.copy_(g.mul_(grad_scale));
  }
  return loss;
}

at::Tensor cross_entropy_rows(const at::Tensor& logits, const at::Tensor& targets, double grad_scale,
                              bool write_grad) {
  MCD_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0) &&
                targets.scalar_type() == at::kLong,
            "cross_entropy_rows: logits (rows, V) and targets (rows) int64 expected, got ", logits.sizes(), " and ",
            targets.sizes(), " ", targets.scalar_type());
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::cross_entropy_rows_supported(logits))
    return cuda::cross_entropy_rows_cuda(logits, targets, grad_scale, write_grad);
#endif
  if (backend() != Backend::kComposite && cpu::cross_entropy_rows_supported(logits))
    return cpu::cross_entropy_rows(logits, targets, grad_scale, write_grad);
  return cross_entropy_rows_composite(logits, targets, grad_scale, write_grad);
}

at::Tensor chunked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                 int64_t chunk_rows) {
  MCD_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
            "chunked_cross_entropy: hidden (T, D) and weight (V, D) do not match: ", hidden.sizes(), " vs ",
            weight.sizes());
  MCD_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0) && targets.scalar_type() == at::kLong,
            "chunked_cross_entropy: targets must be (T) int64, got ", targets.sizes());
  MCD_CHECK(chunk_rows >= 0, "chunked_cross_entropy: chunk_rows must be >= 0 (0 = automatic)");
  if (chunk_rows == 0) chunk_rows = hidden.is_cuda() ? 4096 : 1024;
  const bool want_grad = gradient_wanted(hidden, weight);
  return ChunkedCrossEntropy::apply(hidden, weight, targets, chunk_rows, want_grad)[0];
}

}  // namespace mcd::ops
