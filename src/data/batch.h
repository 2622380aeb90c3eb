// Batches of token windows for training and evaluation, torch-free (the trainer wraps the int64
// output in tensors): random windows for training and sequential windows for evaluation, over a
// TokenSpan from data/token_cache.h. A window of `window` = L+1 tokens gives inputs w[0..L) and
// targets w[1..L].
//
// Training: row g of the global batch at `step` is the window starting at
//   window_start(n, seed, step, g, window) = uniform in [0, n - window], drawn from
//   mix64(mix64(mix64(seed + 0x9e3779b97f4a7c15) + step) + g)   (a counter-based RNG: no state
//   to save or restore), mapped onto the range by a 128-bit multiply-shift.
// So a resumed run sees the same batches, and the global batch is the same for any world size:
// rank r of world_size W gets rows [r*b, (r+1)*b) with b = global_batch / W.
//
// Evaluation: windows start at multiples of window-1 (consecutive windows share one token), so
// their targets tile tokens [1, 1 + count*(window-1)) exactly once; count = (n-1) / (window-1).
// The final window-2 tokens or fewer that do not fill a window are not evaluated.
#pragma once

#include <cstdint>

#include "data/token_span.h"

namespace mcd::data {

// Start of row `row` of the global batch at `step` (0 <= start <= n_tokens - window).
int64_t window_start(int64_t n_tokens, uint64_t seed, int64_t step, int64_t row, int64_t window);

// Fills out[(global_batch / world_size) x window] (int64 ids, row-major) with this rank's rows.
// Requires 0 <= rank < world_size, global_batch % world_size == 0, 2 <= window <= tokens.size.
void sample_windows(const TokenSpan& tokens, uint64_t seed, int64_t step, int64_t global_batch,
                    int64_t rank, int64_t world_size, int64_t window, int64_t* out);

// Number of full evaluation windows of `window` tokens over `n_tokens` tokens (see above).
int64_t num_sequential_windows(int64_t n_tokens, int64_t window);

// Fills out[window] with evaluation window `index` (0 <= index < num_sequential_windows).
void sequential_window(const TokenSpan& tokens, int64_t index, int64_t window, int64_t* out);

}  // namespace mcd::data
