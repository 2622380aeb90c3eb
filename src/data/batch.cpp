// Window sampling declared in batch.h. All randomness is a pure function of
// (seed, step, row) through hash64.h's mix64, so any row can be recomputed on its own.
#include "data/batch.h"

#include "data/hash64.h"
#include "util/error.h"

namespace mcd::data {
namespace {
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;  // splitmix64's increment
}  // namespace

int64_t window_start(int64_t n_tokens, uint64_t seed, int64_t step, int64_t row, int64_t window) {
  MCD_CHECK(window >= 1 && window <= n_tokens, "window of ", window, " tokens does not fit in ",
            n_tokens, " tokens");
  // Rows of one step get distinct values of r (mix64 is a bijection), and seed 0 is not special.
  const uint64_t r = mix64(mix64(mix64(seed + kGolden) + uint64_t(step)) + uint64_t(row));
  const uint64_t range = uint64_t(n_tokens - window) + 1;
  // Multiply-shift maps r onto [0, range); the bias is below range / 2^64, far under 1e-9.
  return int64_t((static_cast<unsigned __int128>(r) * range) >> 64);
}

void sample_windows(const TokenSpan& tokens, uint64_t seed, int64_t step, int64_t global_batch,
                    int64_t rank, int64_t world_size, int64_t window, int64_t* out) {
  MCD_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "rank ", rank,
            " out of range for world size ", world_size);
  MCD_CHECK(global_batch >= 1 && global_batch % world_size == 0, "global batch ", global_batch,
            " is not a positive multiple of world size ", world_size);
  MCD_CHECK(window >= 2 && window <= tokens.size, "window of ", window,
            " tokens (L+1) needs 2 <= window <= ", tokens.size, " (the token count)");
  const int64_t rows = global_batch / world_size;
  for (int64_t j = 0; j < rows; ++j) {
    const int64_t start = window_start(tokens.size, seed, step, rank * rows + j, window);
    const uint16_t* src = tokens.data + start;
    int64_t* dst = out + j * window;
    for (int64_t k = 0; k < window; ++k) dst[k] = src[k];
  }
}

int64_t num_sequential_windows(int64_t n_tokens, int64_t window) {
  MCD_CHECK(window >= 2, "evaluation window must hold at least 2 tokens, got ", window);
  return n_tokens < window ? 0 : (n_tokens - 1) / (window - 1);
}

void sequential_window(const TokenSpan& tokens, int64_t index, int64_t window, int64_t* out) {
  const int64_t count = num_sequential_windows(tokens.size, window);
  MCD_CHECK(index >= 0 && index < count, "evaluation window ", index, " out of range [0, ", count,
            ")");
  const uint16_t* src = tokens.data + index * (window - 1);
  for (int64_t k = 0; k < window; ++k) out[k] = src[k];
}

}  // namespace mcd::data
