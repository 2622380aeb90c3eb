// Row-wise cross-entropy on the CPU (see cross_entropy_cpu.h). Rows are independent: blocks of
// kRowsPerBlock rows run in parallel, each through LibTorch's vectorised in-place ops on its own
// view (inside a parallel region those ops run on the calling thread), so a block is read from
// and written back to cache and nothing of the chunk's size is allocated.
#include "ops/cpu/cross_entropy_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "util/error.h"

namespace mcd::ops::cpu {
namespace {

// 4 rows of a 50k vocabulary are 0.8 MB (fp32): in L2 for the five passes over them. Measured on
// the 2-core development machine, (1024, 50257) fp32, 2 threads: 1, 4 and 16 rows per block 36–74,
// 28–52 and 53–62 ms (the composite 150–250 ms once its temporaries' pages are warm).
constexpr int64_t kRowsPerBlock = 4;

}  // namespace

bool cross_entropy_rows_supported(const at::Tensor& logits) {
  return logits.device().is_cpu() && logits.dim() == 2 && logits.stride(1) == 1 &&
         (logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble);
}

at::Tensor cross_entropy_rows(const at::Tensor& logits, const at::Tensor& targets, double grad_scale,
                              bool write_grad) {
  MCD_CHECK(cross_entropy_rows_supported(logits),
            "cross_entropy_rows (CPU): logits must be a CPU (rows, vocab) float32/float64 tensor with unit column "
            "stride, got ", logits.sizes(), " ", logits.scalar_type());
  MCD_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0) && targets.scalar_type() == at::kLong &&
                targets.device().is_cpu(),
            "cross_entropy_rows (CPU): targets must be (rows) int64 on the CPU, got ", targets.sizes(), " ",
            targets.scalar_type());
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  at::Tensor loss = at::empty({rows}, logits.options());
  if (rows == 0) return loss;
  MCD_CHECK(vocab > 0, "cross_entropy_rows (CPU): the vocabulary is empty");
  const int64_t lo = targets.min().item<int64_t>(), hi = targets.max().item<int64_t>();
  MCD_CHECK(lo >= 0 && hi < vocab, "cross_entropy_rows (CPU): targets must lie in [0, ", vocab, "), got [", lo, ", ",
            hi, "]");
  const at::Tensor tg = targets.unsqueeze(1);
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t r0 = b * kRowsPerBlock, n = std::min(kRowsPerBlock, rows - r0);
      at::Tensor x = logits.narrow(0, r0, n);
      const at::Tensor t = tg.narrow(0, r0, n);
      const at::Tensor m = std::get<0>(x.max(1, /*keepdim=*/true));
      // exp(x − m) in place when the gradient replaces the logits, else in a block-sized temporary.
      at::Tensor e = write_grad ? x.sub_(m) : x - m;
      const at::Tensor shifted_target = e.gather(1, t);  // x[target] − m, before the exp
      e.exp_();
      const at::Tensor sum = e.sum(1, /*keepdim=*/true);
      loss.narrow(0, r0, n).copy_((sum.log() - shifted_target).squeeze(1));
      if (write_grad) {
        e.mul_(sum.reciprocal().mul_(grad_scale));
        e.scatter_add_(1, t, at::full({n, 1}, -grad_scale, e.options()));
      }
    }
  });
  return loss;
}

}  // namespace mcd::ops::cpu
