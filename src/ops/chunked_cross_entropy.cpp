// Chunked LM-head cross-entropy with a recomputing backward (see chunked_cross_entropy.h).
#include "ops/chunked_cross_entropy.h"

#include "util/error.h"

namespace mcd::ops {
namespace {

at::ScalarType acc_type(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

class ChunkedCrossEntropy : public torch::autograd::Function<ChunkedCrossEntropy> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& targets, int64_t chunk) {
    const auto acc = acc_type(hidden);
    const int64_t T = hidden.size(0);
    at::Tensor lse = at::empty({T}, hidden.options().dtype(acc));
    at::Tensor total = at::zeros({}, hidden.options().dtype(acc));
    const at::Tensor w = weight.to(acc);
    for (int64_t start = 0; start < T; start += chunk) {
      const int64_t n = std::min(chunk, T - start);
      const at::Tensor logits = at::matmul(hidden.narrow(0, start, n).to(acc), w.t());  // (n, V)
      const at::Tensor row_lse = logits.logsumexp(-1);
      lse.narrow(0, start, n).copy_(row_lse);
      const at::Tensor picked = logits.gather(1, targets.narrow(0, start, n).unsqueeze(1)).squeeze(1);
      total += (row_lse - picked).sum();
    }
    ctx->save_for_backward({hidden, weight, targets, lse});
    ctx->saved_data["chunk"] = chunk;
    return {total / double(std::max<int64_t>(T, 1))};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &hidden = s[0], &weight = s[1], &targets = s[2], &lse = s[3];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto acc = acc_type(hidden);
    const int64_t T = hidden.size(0);
    const at::Tensor scale = grad_out[0].to(acc) / double(std::max<int64_t>(T, 1));
    const at::Tensor w = weight.to(acc);
    at::Tensor dhidden = at::empty(hidden.sizes(), hidden.options().dtype(acc));
    at::Tensor dweight = at::zeros(weight.sizes(), weight.options().dtype(acc));
    for (int64_t start = 0; start < T; start += chunk) {
      const int64_t n = std::min(chunk, T - start);
      const at::Tensor h = hidden.narrow(0, start, n).to(acc);
      at::Tensor probs = at::matmul(h, w.t()).sub_(lse.narrow(0, start, n).unsqueeze(1)).exp_();  // softmax
      probs.scatter_add_(1, targets.narrow(0, start, n).unsqueeze(1),
                         at::full({n, 1}, -1.0, probs.options()));  // − one-hot
      probs.mul_(scale);                                            // dlogits (n, V)
      dhidden.narrow(0, start, n).copy_(at::matmul(probs, w));
      dweight.addmm_(probs.t(), h);
    }
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
