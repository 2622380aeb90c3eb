// One Mamba layer of the library's batch decode step as the graph decoder runs it above the few-row limit: add_norm,
// cuBLAS in_proj, the conv step, x_proj (cuBLAS, or the lab's narrow_linear), the scan step with dt_proj inside,
// cuBLAS out_proj — six kernels. Shared by the decode labs so each times the same chain. Plain CUDA + cuBLAS; link
// src/ops/cuda/decode_step.cu, src/ops/cuda/add_norm.cu and dev/gemm_lab/narrow_linear.cu.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include "gemm_lab/narrow_linear_params.h"
#include "ops/cuda/add_norm_params.h"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_step_params.h"

namespace mcd::dev {

// One layer's weights (nn.Linear layout (out, in)), bf16.
struct ChainWeights {
  const __nv_bfloat16 *norm_w, *w_in, *conv_w, *conv_b, *w_x, *w_dt, *dt_b, *a_log, *d_skip, *w_out;
};
// The widths: d_model, d_inner, d_state, dt_rank, conv width.
struct ChainShape {
  int D, E, N, R, K;
};
// Per-call buffers for `rows` rows (row-major, unit stride): h (rows, D), xz (rows, 2E), xc (rows, E),
// xd (rows, R + 2N), y (rows, E), rstd (rows).
struct ChainScratch {
  __nv_bfloat16 *h, *xz, *xc, *xd, *y;
  float* rstd;
};

// out (rows, n_out) = x (rows, n_in) · Wᵀ with W (n_out, n_in), bf16, fp32 sums on cuBLAS: every product of the chain.
inline void linear_bf16(cublasHandle_t cb, const __nv_bfloat16* W, const __nv_bfloat16* x, __nv_bfloat16* out,
                        int rows, int n_in, int n_out) {
  const float one = 1.f, zero = 0.f;
  cublasGemmEx(cb, CUBLAS_OP_T, CUBLAS_OP_N, n_out, rows, n_in, &one, W, CUDA_R_16BF, n_in, x, CUDA_R_16BF, n_in, &zero,
               out, CUDA_R_16BF, n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

// residual_out = residual_in (+ prev, bf16, when given); normed = rmsnorm(residual_out)·weight in bf16 (add_norm).
inline void add_norm_bf16(int rows, int dim, const float* residual_in, const __nv_bfloat16* prev,
                          const __nv_bfloat16* weight, float* residual_out, __nv_bfloat16* normed, float* rstd,
                          cudaStream_t stream) {
  namespace cu = mcd::ops::cuda;
  cu::AddNormParams a;
  a.out_dtype = a.prev_dtype = a.weight_dtype = cu::DType::kBFloat16;
  a.rows = rows;
  a.dim = dim;
  a.residual_in = residual_in;
  a.prev = prev;
  a.weight = weight;
  a.residual_out = residual_out;
  a.normed = normed;
  a.rstd = rstd;
  a.blocks = (rows + cu::kAddNormWarps - 1) / cu::kAddNormWarps;
  a.vec4 = true;
  a.stream = stream;
  cu::add_norm_fwd(a);
}

// residual_in: the residual before this layer's add (for the first layer the embeddings as fp32, with prev null);
// prev: the previous layer's out_proj (bf16), added to it; residual_out receives the sum; hidden receives this
// layer's out_proj. conv_state (rows, E, K − 1) bf16 and ssm_state (rows, E, N) fp32 are updated in place.
inline void library_layer(const ChainShape& sh, const ChainWeights& w, int rows, const float* residual_in,
                          const __nv_bfloat16* prev, float* residual_out, __nv_bfloat16* hidden,
                          __nv_bfloat16* conv_state, float* ssm_state, const ChainScratch& s, bool narrow,
                          cudaStream_t stream, cublasHandle_t cb) {
  namespace cu = mcd::ops::cuda;
  const int D = sh.D, E = sh.E, N = sh.N, R = sh.R, XN = R + 2 * N, CW = sh.K - 1;
  cublasSetStream(cb, stream);
  add_norm_bf16(rows, D, residual_in, prev, w.norm_w, residual_out, s.h, s.rstd, stream);
  linear_bf16(cb, w.w_in, s.h, s.xz, rows, D, 2 * E);
  cu::ConvStepParams c;
  c.dtype = c.weight_dtype = cu::DType::kBFloat16;
  c.batch = rows;
  c.dim = E;
  c.width = sh.K;
  c.x = s.xz;
  c.x_batch_stride = 2 * E;
  c.state = conv_state;
  c.state_s = {int64_t(E) * CW, CW, 1};
  c.weight = w.conv_w;
  c.weight_row_stride = sh.K;
  c.bias = w.conv_b;
  c.silu = true;
  c.out = s.xc;
  c.stream = stream;
  cu::conv_step(c);
  if (narrow) {
    cu::NarrowLinearParams nl;
    nl.rows = rows;
    nl.in_features = E;
    nl.out_features = XN;
    nl.x = s.xc;
    nl.x_row_stride = E;
    nl.weight = w.w_x;
    nl.w_row_stride = E;
    nl.out = s.xd;
    nl.stream = stream;
    cu::narrow_linear(nl);
  } else {
    linear_bf16(cb, w.w_x, s.xc, s.xd, rows, E, XN);
  }
  cu::ScanStepParams sp;
  sp.dtype = sp.weight_dtype = cu::DType::kBFloat16;
  sp.batch = rows;
  sp.dim = E;
  sp.dstate = N;
  sp.state = ssm_state;
  sp.u = s.xc;
  sp.u_batch_stride = E;
  sp.delta = s.xd;
  sp.delta_batch_stride = XN;
  sp.delta_proj = w.w_dt;
  sp.rank = R;
  sp.B = s.xd + R;
  sp.B_batch_stride = XN;
  sp.C = s.xd + R + N;
  sp.C_batch_stride = XN;
  sp.z = s.xz + E;
  sp.z_batch_stride = 2 * E;
  sp.A = w.a_log;
  sp.a_is_log = true;
  sp.D = w.d_skip;
  sp.dt_bias = w.dt_b;
  sp.softplus = true;
  sp.out = s.y;
  sp.stream = stream;
  cu::scan_step(sp);
  linear_bf16(cb, w.w_out, s.y, hidden, rows, E, D);
}

}  // namespace mcd::dev
