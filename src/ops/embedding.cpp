// Token-embedding lookup with its own backward (see embedding.h).
#include "ops/embedding.h"

#include "ops/backend.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd::ops {
namespace {

class EmbeddingLookup : public torch::autograd::Function<EmbeddingLookup> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& weight,
                                                const at::Tensor& ids) {
    ctx->saved_data["ids"] = ids;
    ctx->saved_data["vocab"] = weight.size(0);
    return {at::embedding(weight, ids)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const at::Tensor ids = ctx->saved_data["ids"].toTensor();
    return {embedding_backward(grad_out[0], ids, ctx->saved_data["vocab"].toInt()), at::Tensor()};
  }
};

}  // namespace

at::Tensor embedding(const at::Tensor& weight, const at::Tensor& ids) {
  MCD_CHECK(weight.dim() == 2, "embedding: weight must be (V, D), got ", weight.sizes());
  MCD_CHECK(ids.scalar_type() == at::kLong || ids.scalar_type() == at::kInt,
            "embedding: ids must be int64 or int32, got ", ids.scalar_type());
  return EmbeddingLookup::apply(weight, ids)[0];
}

at::Tensor embedding_backward(const at::Tensor& grad, const at::Tensor& ids, int64_t vocab) {
#ifdef MCD_WITH_CUDA
  if (backend() == Backend::kAuto && cuda::embedding_backward_supported(grad, ids, vocab))
    return cuda::embedding_backward_cuda(grad, ids, vocab);
#endif
  return at::embedding_backward(grad, ids, vocab, /*padding_idx=*/-1, /*scale_grad_by_freq=*/false,
                                /*sparse=*/false);
}

}  // namespace mcd::ops
