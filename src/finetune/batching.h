// Batches for fine-tuning: dynamic padding (each batch is as long as its longest example) with
// length bucketing (examples of similar length share a batch, so little is padding), in an order
// drawn from (seed, epoch) alone, so a resumed run sees the same batches.
#pragma once

#include <cstdint>
#include <vector>

#include "finetune/task_data.h"
#include "util/torch_compat.h"

namespace mcd::finetune {

// One epoch's batches (row indices): rows shuffled by (seed, epoch), cut into buckets of
// `bucket_batches` batches, each bucket sorted by length and cut into batches, the batches then
// shuffled. Every row appears once; the last batch may be short.
std::vector<std::vector<int64_t>> epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                                uint64_t seed, int64_t epoch, int64_t bucket_batches = 50);

// Evaluation batches: rows by decreasing length, in order (no randomness).
std::vector<std::vector<int64_t>> eval_batches(const std::vector<int64_t>& lengths, int64_t batch_size);

struct Batch {
  at::Tensor input_ids;  // (B, L) int64, right-padded with pad_id
  at::Tensor lengths;    // (B) int64
  at::Tensor labels;     // (B) int64 class ids, or float32 scores for regression
};
// `rows` of `split` as tensors on `device`, right-padded to the longest row rounded up to a multiple
// of `length_multiple` (a causal model's states at the real tokens do not see the padding; fewer
// distinct shapes mean fewer CUDA graphs). `pinned`: CPU tensors in page-locked memory, for an
// asynchronous copy to a CUDA device.
Batch collate(const EncodedSplit& split, const std::vector<int64_t>& rows, bool regression, int64_t pad_id,
              const torch::Device& device, int64_t length_multiple = 1, bool pinned = false);

std::vector<int64_t> lengths_of(const EncodedSplit& split);

}  // namespace mcd::finetune
