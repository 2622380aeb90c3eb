// Host op of the token-embedding gradient (embedding_backward.cu; semantics in embedding_params.h):
// the stable sort of the ids, the scratch, and the launch on LibTorch's current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <tuple>

#include "ops/cuda/embedding_params.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "util/error.h"

namespace mcd::ops::cuda {

bool embedding_backward_supported(const at::Tensor& grad, const at::Tensor& ids, int64_t vocab) {
  constexpr int64_t kMax = 2147483647LL;
  return grad.is_cuda() && grad.scalar_type() == at::kFloat && grad.dim() >= 1 && ids.device() == grad.device() &&
         (ids.scalar_type() == at::kLong || ids.scalar_type() == at::kInt) && vocab >= 0 && vocab <= kMax &&
         ids.numel() <= kMax && grad.numel() == ids.numel() * grad.size(-1);
}

at::Tensor embedding_backward_cuda(const at::Tensor& grad, const at::Tensor& ids, int64_t vocab) {
  MCD_CHECK(embedding_backward_supported(grad, ids, vocab),
            "embedding_backward (CUDA): grad must be a CUDA fp32 (..., dim) tensor with one row per id and ids "
            "int32/int64 on its device, got grad ", grad.sizes(), " ", grad.scalar_type(), " and ids ", ids.sizes(),
            " ", ids.scalar_type(), " for ", vocab, " rows");
  const c10::cuda::CUDAGuard guard(grad.device());
  const int64_t dim = grad.size(-1), n = ids.numel();
  at::Tensor out = at::empty({vocab, dim}, grad.options());
  if (vocab == 0 || dim == 0) return out;
  const at::Tensor g = grad.reshape({n, dim}).contiguous();
  at::Tensor sorted, positions;
  std::tie(sorted, positions) = at::sort(ids.reshape({-1}).to(at::kInt), /*stable=*/true, /*dim=*/0, /*descending=*/false);
  at::Tensor segments = at::zeros({2, vocab}, ids.options().dtype(at::kInt));  // begin and end of each id's run
  EmbeddingBackwardParams k;
  k.n = n;
  k.dim = dim;
  k.vocab = vocab;
  k.sorted_ids = sorted.data_ptr<int32_t>();
  k.positions = positions.data_ptr<int64_t>();
  k.grad = g.data_ptr<float>();
  k.seg_begin = segments.data_ptr<int32_t>();
  k.seg_end = k.seg_begin + vocab;
  k.out = out.data_ptr<float>();
  k.vec4 = dim % 4 == 0 && aligned16(k.grad) && aligned16(k.out);
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  embedding_backward(k);
  return out;
}

}  // namespace mcd::ops::cuda
