// The staged block forward's fixed-column staging plan (BlockFwdTraits::kStageFixedColumn,
// selective_scan_block_fwd.cuh): which 16-byte column of a chunk's staged B and C rows each thread copies, which
// rows, and how many bytes of the column a copy reads. Plain C++ (no CUDA headers), so a CPU test can check that the
// threads of a block cover every (row, column) exactly once with the bytes the per-copy staging reads.
#pragma once

#include <cstdint>

#include "util/host_device.h"

namespace mcd::ops::cuda {

// The bytes a staging copy of one 16-byte vector (per elements of elem_bytes) reads when `left` of the row's
// elements lie at or after its first: 16 inside the row, the elements left where it straddles the row's end, 0 past
// it (cp.async zero-fills the rest). Both stagings (stage_bc_chunk, stage_bc_chunk_fixed_column) use it.
MCD_HOST_DEVICE constexpr int staged_vector_bytes(int64_t left, int per, int elem_bytes) {
  // (`left > per − 1`, not `left >= per`: the same test, and with it stage_bc_chunk's PTX is what it was before this
  // function served it; the other form swaps a select's operands.)
  return left > per - 1 ? 16 : left > 0 ? static_cast<int>(left) * elem_bytes : 0;
}

struct FixedColumnStage {
  int per;       // elements per 16-byte vector
  int row_vecs;  // vectors per staged row: chunk / per
  int step;      // threads per column: a thread's rows are first_row, first_row + step, …
  // chunk: steps per staged row (a multiple of per); threads: the block's (a multiple of row_vecs).
  MCD_HOST_DEVICE constexpr FixedColumnStage(int chunk, int threads, int elem_bytes)
      : per(16 / elem_bytes), row_vecs(chunk / (16 / elem_bytes)), step(threads / (chunk / (16 / elem_bytes))) {}
  MCD_HOST_DEVICE constexpr int column(int thread) const { return thread % row_vecs; }
  MCD_HOST_DEVICE constexpr int first_row(int thread) const { return thread / row_vecs; }
  // How many rows a thread walks at most when a block stages up to max_rows rows of B (and as many of C).
  MCD_HOST_DEVICE constexpr int max_copies(int max_rows) const { return (max_rows + step - 1) / step; }
  // The bytes a copy of column v reads in the chunk starting at step t0 of rows len steps long.
  MCD_HOST_DEVICE constexpr int bytes(int v, int64_t t0, int64_t len, int elem_bytes) const {
    return staged_vector_bytes(len - (t0 + int64_t(v) * per), per, elem_bytes);
  }
};

}  // namespace mcd::ops::cuda
