// Length-bucketed batches and padding (see batching.h).
#include "finetune/batching.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "util/error.h"

namespace mcd::finetune {
namespace {

// Fisher–Yates with mt19937_64 (fully specified by the standard, unlike std::shuffle's use of it).
template <typename T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

}  // namespace

std::vector<std::vector<int64_t>> epoch_batches(const std::vector<int64_t>& lengths, int64_t batch_size, uint64_t seed,
                                                int64_t epoch, int64_t bucket_batches) {
  MCD_CHECK(batch_size >= 1 && bucket_batches >= 1, "batch size and bucket size must be positive");
  std::vector<int64_t> rows(lengths.size());
  std::iota(rows.begin(), rows.end(), 0);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + uint64_t(epoch) * 0xD1B54A32D192ED03ULL + 1);
  shuffle(rows, rng);
  std::vector<std::vector<int64_t>> batches;
  const size_t bucket = size_t(batch_size * bucket_batches);
  for (size_t start = 0; start < rows.size(); start += bucket) {
    const size_t end = std::min(rows.size(), start + bucket);
    std::stable_sort(rows.begin() + start, rows.begin() + end,
                     [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
    for (size_t b = start; b < end; b += size_t(batch_size))
      batches.emplace_back(rows.begin() + b, rows.begin() + std::min(end, b + size_t(batch_size)));
  }
  shuffle(batches, rng);
  return batches;
}

std::vector<std::vector<int64_t>> eval_batches(const std::vector<int64_t>& lengths, int64_t batch_size) {
  MCD_CHECK(batch_size >= 1, "batch size must be positive");
  std::vector<int64_t> rows(lengths.size());
  std::iota(rows.begin(), rows.end(), 0);
  std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  std::vector<std::vector<int64_t>> batches;
  for (size_t b = 0; b < rows.size(); b += size_t(batch_size))
    batches.emplace_back(rows.begin() + b, rows.begin() + std::min(rows.size(), b + size_t(batch_size)));
  return batches;
}

std::vector<int64_t> lengths_of(const EncodedSplit& split) {
  std::vector<int64_t> l;
  l.reserve(split.ids.size());
  for (const auto& v : split.ids) l.push_back(int64_t(v.size()));
  return l;
}

Batch collate(const EncodedSplit& split, const std::vector<int64_t>& rows, bool regression, int64_t pad_id,
              const torch::Device& device, int64_t length_multiple, bool pinned) {
  MCD_CHECK(!rows.empty(), "collate: empty batch");
  MCD_CHECK(length_multiple >= 1, "collate: length_multiple must be >= 1, got ", length_multiple);
  int64_t L = 0;
  for (int64_t r : rows) L = std::max<int64_t>(L, int64_t(split.ids.at(r).size()));
  L = (L + length_multiple - 1) / length_multiple * length_multiple;
  const int64_t B = int64_t(rows.size());
  const auto host = torch::TensorOptions().pinned_memory(pinned);
  at::Tensor ids = torch::full({B, L}, pad_id, host.dtype(at::kLong));
  at::Tensor lengths = torch::empty({B}, host.dtype(at::kLong));
  at::Tensor labels = torch::empty({B}, host.dtype(regression ? at::kFloat : at::kLong));
  auto* id = ids.data_ptr<int64_t>();
  auto* len = lengths.data_ptr<int64_t>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& v = split.ids[rows[i]];
    for (size_t t = 0; t < v.size(); ++t) id[i * L + int64_t(t)] = v[t];
    len[i] = int64_t(v.size());
    if (regression) labels.data_ptr<float>()[i] = float(split.labels[rows[i]]);
    else labels.data_ptr<int64_t>()[i] = int64_t(split.labels[rows[i]]);
  }
  return {ids.to(device), lengths.to(device), labels.to(device)};
}

}  // namespace mcd::finetune
