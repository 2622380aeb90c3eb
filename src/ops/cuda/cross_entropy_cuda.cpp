// Host op of the row-wise LM-head cross-entropy kernel (cross_entropy.cu; semantics:
// cross_entropy_rows_composite in ops/chunked_cross_entropy.h): checks and the launch on
// LibTorch's current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>

#include "ops/cuda/cross_entropy_params.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "util/error.h"

namespace mcd::ops::cuda {

bool cross_entropy_rows_supported(const at::Tensor& logits) {
  const auto t = logits.scalar_type();
  return logits.is_cuda() && logits.dim() == 2 && logits.stride(1) == 1 && kernel_dtype(t);
}

at::Tensor cross_entropy_rows_cuda(const at::Tensor& logits, const at::Tensor& targets, double grad_scale,
                                   bool write_grad) {
  MCD_CHECK(cross_entropy_rows_supported(logits),
            "cross_entropy_rows (CUDA): logits must be a CUDA (rows, vocab) fp32/fp16/bf16 tensor with unit "
            "column stride, got ", logits.sizes(), " ", logits.scalar_type(), " on ", logits.device());
  MCD_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0) && targets.scalar_type() == at::kLong &&
                targets.device() == logits.device(),
            "cross_entropy_rows (CUDA): targets must be (rows) int64 on the logits' device, got ",
            targets.sizes(), " ", targets.scalar_type());
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor tg = targets.contiguous();
  at::Tensor loss = at::empty({logits.size(0)}, logits.options().dtype(at::kFloat));
  if (logits.size(0) == 0) return loss;
  CrossEntropyRowsParams k;
  k.dtype = dtype_code(logits.scalar_type(), "cross_entropy_rows (CUDA)");
  k.rows = logits.size(0);
  k.vocab = logits.size(1);
  k.row_stride = logits.size(0) > 1 ? logits.stride(0) : logits.size(1);
  const int64_t bytes_per_row = k.row_stride * static_cast<int64_t>(logits.element_size());
  k.vectorized = aligned16(logits.data_ptr()) && bytes_per_row % 16 == 0;
  k.logits = logits.data_ptr();
  k.targets = tg.data_ptr<int64_t>();
  k.loss = loss.data_ptr<float>();
  k.write_grad = write_grad;
  k.grad_scale = static_cast<float>(grad_scale);
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  cross_entropy_rows(k);
  return loss;
}

}  // namespace mcd::ops::cuda
