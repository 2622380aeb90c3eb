// Parameters of the few-row linear layer of a decode step (ops/cuda/decode_linear.cu), filled by
// its host op (ops/cuda/decode_linear_cuda.cpp). out = x·Wᵀ (+ bias) for rows ≤ kDecodeLinearMaxRows,
// x, W, bias and out in one dtype, fp32 sums. Semantics: ops/decode_linear.h.
// Why not cuBLAS: at one to eight rows a product only reads its weights, and cuBLAS's kernels for
// these shapes tile 64 output columns per block (130M's in_proj, 3,072 columns, runs on 48 blocks;
// x_proj's 80 columns on 2), so each took 2.5–6 µs of a 130M batch-1 step's ~33 µs per layer (H200
// trace, docs/PERF_NOTES.md, fifth session). Here a block computes 1 or 4 output columns for every row.
#pragma once

#include "ops/cuda/conv_params.h"
#include "ops/cuda/params_common.h"

namespace mcd::ops::cuda {

constexpr int kDecodeLinearMaxRows = 8;
constexpr int kDecodeLinearWarps = 4;  // warps per block, splitting the inner dimension

struct DecodeLinearParams {
  DType dtype = DType::kFloat32;
  int64_t rows = 0, in_features = 0, out_features = 0;
  const void* x = nullptr;       int64_t x_row_stride = 0;  // (rows, in), unit inner stride
  const void* weight = nullptr;  int64_t w_row_stride = 0;  // (out, in), unit inner stride
  const void* bias = nullptr;    // (out) contiguous, or null
  void* out = nullptr;           // (rows, out) contiguous
  bool vec = false;  // in_features, both row strides and both bases allow 16-byte loads
  bool overlap = false;  // an overlapped launch (cuda_common.cuh launch_overlapped; ops option decode_overlap)
  cudaStream_t stream = nullptr;

  // add_norm_decode_linear only: x is not read; the rows are formed in each block's shared memory as
  // normed = T(norm_weight ⊙ r · rstd(r)), r = residual_in + prev (ops/add_rms_norm.h's forward), and
  // block 0 writes r to residual_out. The first layer has no prev.
  const float* residual_in = nullptr;  // (rows, in) fp32 contiguous
  const void* prev = nullptr;          // (rows, in) in dtype, contiguous, or null
  const void* norm_weight = nullptr;   // (in) contiguous, fp32 or dtype
  bool norm_weight_fp32 = true;
  float eps = 1e-5f;
  float* residual_out = nullptr;       // (rows, in) fp32 contiguous, or null (not wanted)
  // Optional (embedding): the first layer's residual_in is the rows of `embedding` (vocab, in) in
  // dtype with unit inner stride picked by token_ids (rows, any stride) int64 — embedding(token_ids) widened
  // to fp32 — instead of residual_in. An id outside [0, embedding_rows) traps (a device error).
  const int64_t* token_ids = nullptr;  int64_t token_ids_stride = 1;
  const void* embedding = nullptr;  int64_t embedding_row_stride = 0, embedding_rows = 0;
  // Optional (conv): the conv step of the first conv_channels output columns (x of in_proj's
  // xz) in the same kernel, exactly as the conv-step kernel on x (ops/cuda/conv_step.cuh): out[r, e]
  // becomes u = act(conv_bias[e] + Σ_k conv_weight[e, k]·[conv_state[r, e, :], x[r, e]][k]) and x
  // shifts into conv_state. Each (r, e) is one thread's, so the state is updated in place.
  bool conv = false;
  void* conv_state = nullptr;         Strides3 conv_state_s;  // (rows, conv_channels, K − 1) in dtype (K = 1: may be null)
  const void* conv_weight = nullptr;  int64_t conv_weight_row_stride = 0;  // (conv_channels, K) in dtype, unit time stride
  const void* conv_bias = nullptr;    // (conv_channels) in dtype, contiguous, or null
  int64_t conv_channels = 0;
  int conv_width = 0;                 // K (1..kConvMaxWidth)
  bool conv_silu = true;
  // Optional (argmax; not with conv): out is fp32 (rows, out_features), each value the dtype's
  // result widened (the same floats as the dtype's output cast to fp32), and argmax_out[r] becomes
  // the first column < argmax_columns holding row r's maximum (NaN counting as the largest), as
  // torch's argmax. The blocks' row maxima meet in argmax_workspace ((rows) keys, then the count of
  // finished blocks), zeros on entry; the last block to finish reads them and leaves zeros again,
  // so one workspace serves call after call (and replay after replay of a CUDA graph).
  bool argmax = false;
  int64_t argmax_columns = 0;
  int64_t* argmax_out = nullptr;                      // (rows) int64
  unsigned long long* argmax_workspace = nullptr;     // (rows + 1)
};

// Shared memory the fused kernel needs for its rows (the host checks it fits the default 48 KB).
constexpr int64_t kDecodeLinearMaxSmem = 48 * 1024;

void decode_linear(const DecodeLinearParams& p);
void add_norm_decode_linear(const DecodeLinearParams& p);

// The greedy selection after an LM head whose product ran elsewhere (more than kDecodeLinearMaxRows rows:
// cuBLAS's; ops::widen_argmax): logits[r, c] = values[r, c] widened to fp32, and argmax_out[r] the first
// column < argmax_columns holding row r's maximum (NaN the largest), as torch's argmax — one kernel where the
// composition ran three (the cast into the logits buffer, the argmax, the tokens' copy: ~19 µs of a 130M
// batch-64 token on an H100, docs/PERF_NOTES.md, "Twenty-second session"). Block (x, r) widens row r's
// columns [x·S, (x + 1)·S), S = kWidenArgmaxThreads · kWidenArgmaxVectors 16-byte vectors of values (a thread's
// loads issued together); the blocks' maxima meet in argmax_workspace as DecodeLinearParams' do (zeros on entry,
// left zeros). Four vectors per thread: a 130M batch-64 head (50,280 bf16 columns, S = 8,192) runs 448 blocks in
// one wave, where one vector per thread ran 1,600 in two, each block's fence and count on the workspace's one
// counter behind a single load.
constexpr int kWidenArgmaxThreads = 256;
constexpr int kWidenArgmaxVectors = 4;
struct WidenArgmaxParams {
  DType dtype = DType::kFloat32;  // values'
  int64_t rows = 0, columns = 0;
  const void* values = nullptr;  int64_t values_row_stride = 0;  // (rows, columns), unit column stride
  float* logits = nullptr;                                         // (rows, columns) contiguous
  int64_t argmax_columns = 0;                                      // 1..columns (< 2^32)
  int64_t* argmax_out = nullptr;                                   // (rows)
  unsigned long long* argmax_workspace = nullptr;                  // (rows + 1)
  cudaStream_t stream = nullptr;
};
void widen_argmax(const WidenArgmaxParams& p);

}  // namespace mcd::ops::cuda
