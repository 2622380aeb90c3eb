// Chunked LM-head cross-entropy with a recomputing backward (see chunked_cross_entropy.h).
#include "ops/chunked_cross_entropy.h"

#include "util/error.h"

namespace mcd::ops {
namespace {

at::ScalarType acc_type(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// dtype of the head's matrix products: autocast's (bf16) on CUDA when the forward runs under
// autocast — also in the backward, which the autograd engine runs without autocast — else the
// accumulation type. Log-sum-exp, softmax and the gradient accumulation stay in fp32.
at::ScalarType matmul_type(const at::Tensor& hidden) {
  if (hidden.is_cuda() && hidden.scalar_type() != at::kDouble && cuda_autocast_enabled())
    return cuda_autocast_dtype();
  return acc_type(hidden);
}

class ChunkedCrossEntropy : public torch::autograd::Function<ChunkedCrossEntropy> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& targets, int64_t chunk) {
    const auto acc = acc_type(hidden), mm = matmul_type(hidden);
    const int64_t T = hidden.size(0);
    at::Tensor total = at::zeros({}, hidden.options().dtype(acc));
    const at::Tensor w = weight.to(mm);
    for (int64_t start = 0; start < T; start += chunk) {
      const int64_t n = std::min(chunk, T - start);
      const at::Tensor logits = at::matmul(hidden.narrow(0, start, n).to(mm), w.t());  // (n, V) in mm
      // One fused pass: log-softmax in the accumulation type straight from the product.
      const at::Tensor logp = at::log_softmax(logits, 1, acc);
      total -= logp.gather(1, targets.narrow(0, start, n).unsqueeze(1)).sum();
    }
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["matmul_type"] = static_cast<int64_t>(mm);
    return {total / double(std::max<int64_t>(T, 1))};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &hidden = s[0], &weight = s[1], &targets = s[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto acc = acc_type(hidden);
    const auto mm = static_cast<at::ScalarType>(ctx->saved_data["matmul_type"].toInt());
    const int64_t T = hidden.size(0);
    const at::Tensor w = weight.to(mm);
    at::Tensor dhidden = at::empty(hidden.sizes(), hidden.options().dtype(acc));
    at::Tensor dweight = at::zeros(weight.sizes(), weight.options().dtype(acc));
    for (int64_t start = 0; start < T; start += chunk) {
      const int64_t n = std::min(chunk, T - start);
      const at::Tensor h = hidden.narrow(0, start, n).to(mm);
      // dlogits / scale = softmax − one-hot; the softmax is recomputed in one fused pass.
      at::Tensor probs = at::softmax(at::matmul(h, w.t()), 1, acc);
      probs.scatter_add_(1, targets.narrow(0, start, n).unsqueeze(1), at::full({n, 1}, -1.0, probs.options()));
      const at::Tensor dlogits = probs.to(mm);
      dhidden.narrow(0, start, n).copy_(at::matmul(dlogits, w));
      if (mm == acc) dweight.addmm_(dlogits.t(), h);
      else dweight.add_(at::matmul(dlogits.t(), h));  // low-precision product, fp32 sum over chunks
    }
    // d(mean loss) = grad · (softmax − one-hot) / T, applied once to the two results.
    const at::Tensor scale = grad_out[0].to(acc) / double(std::max<int64_t>(T, 1));
    dhidden.mul_(scale);
    dweight.mul_(scale);
    return {dhidden.to(hidden.scalar_type()), dweight.to(weight.scalar_type()), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor chunked_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                 int64_t chunk_rows) {
  MCD_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
            "chunked_cross_entropy: hidden (T, D) and weight (V, D) do not match: ", hidden.sizes(), " vs ",
            weight.sizes());
  MCD_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0) && targets.scalar_type() == at::kLong,
            "chunked_cross_entropy: targets must be (T) int64, got ", targets.sizes());
  MCD_CHECK(chunk_rows >= 1, "chunked_cross_entropy: chunk_rows must be >= 1");
  return ChunkedCrossEntropy::apply(hidden, weight, targets, chunk_rows)[0];
}

}  // namespace mcd::ops
