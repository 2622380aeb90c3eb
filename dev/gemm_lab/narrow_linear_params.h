// In the library as the ops option `decode_narrow_linear` (x_proj above the few-row limit) in the thirty-fifth
// session, back in the lab in the thirty-sixth: on one H100 the model's batch-64 graph decode was 10–12 % slower with
// it (130M 0.765 → 0.861 ms per token, 370M 1.758 → 1.930) and its float64 test failed at the inner lengths 384 and
// 1,152 (errors 1.0–1.65× its bound); docs/results/2026-12-07c_gemm_slices/README.md.
// Parameters of the narrow product at batch rows (narrow_linear.cu), filled by the labs that call it
// (dev/decode_lab): out = x·Wᵀ for 2–64 rows and at most kNarrowLinearMaxOut output columns (a
// decode step's x_proj, R + 2N columns), bf16 in and out, fp32 sums.
// Why not cuBLAS: at 64 rows cuBLAS's kernel for x_proj (130M: 1,536 → 80) takes ~4.5 µs inside a graph, as long as
// in_proj's with 19× the weights — a few tiles walking the inner dimension. Here a cluster of kNarrowLinearSplit
// blocks owns kNarrowLinearCols output columns, each block one slice of the inner dimension, its x rows and weight
// rows requested at once (the weights before the previous kernel ends, as an overlapped launch) and the products of a
// quarter of the slice started as it lands; the blocks' partial sums meet over distributed shared memory in rank order.
// dev/gemm_lab (thirty-fifth session, one H100, 64 rows): 3.83 against cuBLAS's 4.47 µs at 130M, 3.87 against 5.14 at
// 370M (2,048 → 96); the same design loses to cuBLAS at in_proj and out_proj (1.4×), so only narrow products run it.
#pragma once

#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kNarrowLinearMinRows = 2, kNarrowLinearMaxRows = 64;
constexpr int kNarrowLinearMaxOut = 128;
constexpr int kNarrowLinearSplit = 8;   // blocks per cluster, one slice of the inner dimension each
constexpr int kNarrowLinearCols = 16;   // output columns per cluster
// The inner length: a multiple of kNarrowLinearInStep (each slice whole 16-element k-steps) and at most
// kNarrowLinearMaxIn (a block's staged rows within the opt-in shared memory of an sm_90 block).
constexpr int kNarrowLinearInStep = 16 * kNarrowLinearSplit;
constexpr int kNarrowLinearMaxIn = 8192;

struct NarrowLinearParams {
  int64_t rows = 0, in_features = 0, out_features = 0;
  const void* x = nullptr;       int64_t x_row_stride = 0;  // (rows, in) bf16, unit inner stride, 16-byte aligned rows
  const void* weight = nullptr;  int64_t w_row_stride = 0;  // (out, in) bf16, unit inner stride, 16-byte aligned rows
  void* out = nullptr;           // (rows, out) bf16 contiguous
  bool overlap = false;  // an overlapped launch (cuda_common.cuh; ops option decode_overlap): weights before the wait
  cudaStream_t stream = nullptr;
};

void narrow_linear(const NarrowLinearParams& p);

}  // namespace mcd::ops::cuda
