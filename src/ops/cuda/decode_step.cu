// The decode-step kernels (decode_step_params.h): one thread per (sequence, channel), fp32 sums
// and state, weights read as fp32 or in the activations' dtype (a bf16 model needs no casts).
#include <string>
#include <type_traits>

#include "ops/cuda/conv_params.h"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_step_params.h"

namespace mcd::ops::cuda {
namespace {

// One conv step of a channel: the window [state, x] (oldest first) against the weights, walked from
// the newest end, and the state shifted in place to keep its last K−1 entries. Returns Σ_k w[k]·window[k].
template <typename T, typename W>
__device__ __forceinline__ float conv_window_step(T* state, int64_t ts, const W* w, int K, T x) {
  float acc = 0.f;
  T prev = x;  // window[k] for k = K−1 … 0
  for (int k = K - 1; k >= 0; --k) {
    const T v = k == K - 1 ? x : state[k * ts];
    acc = fmaf(to_float(v), to_float(w[k]), acc);
    if (k < K - 1) state[k * ts] = prev;  // the entry one newer moves down
    prev = v;
  }
  return acc;
}

// One scan-state update of a channel: h ← exp(dt·A)·h + du·B over its N states (A = −exp(a) when
// a_is_log), in place. Returns Σ_n h·C.
template <typename W, typename TB>
__device__ __forceinline__ float scan_state_update(float* h, const W* a, int64_t N, bool a_is_log, float dt, float du,
                                                   const TB* Bv, const TB* Cv) {
  float y = 0.f;
  for (int64_t n = 0; n < N; ++n) {
    float an = to_float(a[n]);
    if (a_is_log) an = -__expf(an);
    const float hn = fmaf(__expf(dt * an), h[n], du * to_float(Bv[n]));
    h[n] = hn;
    y = fmaf(hn, to_float(Cv[n]), y);
  }
  return y;
}

template <typename T, typename W>
__global__ void __launch_bounds__(kStepThreads) conv_step_kernel(ConvStepParams p) {
  const int64_t i = int64_t(blockIdx.x) * kStepThreads + threadIdx.x;
  if (i >= p.batch * p.dim) return;
  const int64_t b = i / p.dim, e = i - b * p.dim;
  const int K = p.width;
  T* state = static_cast<T*>(p.state) + b * p.state_s.batch + e * p.state_s.row;
  const int64_t ts = p.state_s.time;
  const W* w = static_cast<const W*>(p.weight) + e * p.weight_row_stride;
  const T x = static_cast<const T*>(p.x)[b * p.x_batch_stride + e];
  float acc = conv_window_step(state, ts, w, K, x);
  if (p.bias) acc += to_float(static_cast<const W*>(p.bias)[e]);
  if (p.silu) acc *= sigmoid_f(acc);
  static_cast<T*>(p.out)[b * p.dim + e] = from_float<T>(acc);
}

template <typename T, typename W>
__global__ void __launch_bounds__(kStepThreads) scan_step_kernel(ScanStepParams p) {
  const int64_t i = int64_t(blockIdx.x) * kStepThreads + threadIdx.x;
  if (i >= p.batch * p.dim) return;
  const int64_t b = i / p.dim, e = i - b * p.dim;
  const float u = to_float(static_cast<const T*>(p.u)[b * p.u_batch_stride + e]);
  float dt = to_float(static_cast<const T*>(p.delta)[b * p.delta_batch_stride + e]);
  if (p.dt_bias) dt += to_float(static_cast<const W*>(p.dt_bias)[e]);
  if (p.softplus) dt = softplus_f(dt);
  const W* a = static_cast<const W*>(p.A) + e * p.dstate;
  const T* Bv = static_cast<const T*>(p.B) + b * p.B_batch_stride;
  const T* Cv = static_cast<const T*>(p.C) + b * p.C_batch_stride;
  float* h = p.state + (b * p.dim + e) * p.dstate;
  float y = scan_state_update(h, a, p.dstate, p.a_is_log, dt, dt * u, Bv, Cv);
  if (p.D) y = fmaf(to_float(static_cast<const W*>(p.D)[e]), u, y);
  if (p.z) {
    const float z = to_float(static_cast<const T*>(p.z)[b * p.z_batch_stride + e]);
    y *= z * sigmoid_f(z);
  }
  static_cast<T*>(p.out)[b * p.dim + e] = from_float<T>(y);
}

unsigned blocks_for(int64_t threads) { return unsigned((threads + kStepThreads - 1) / kStepThreads); }

template <typename T, typename W>
void launch_conv(const ConvStepParams& p) {
  if (p.batch * p.dim == 0) return;
  conv_step_kernel<T, W><<<blocks_for(p.batch * p.dim), kStepThreads, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename W>
void launch_scan(const ScanStepParams& p) {
  if (p.batch * p.dim == 0) return;
  scan_step_kernel<T, W><<<blocks_for(p.batch * p.dim), kStepThreads, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

// (activation dtype, weight dtype) → the instantiation; weights are fp32 or the activations' dtype.
template <class Params, class Launch>
void by_dtypes(const Params& p, const char* op, Launch&& launch) {
  MCD_CHECK(p.weight_dtype == DType::kFloat32 || p.weight_dtype == p.dtype, op,
            ": weights must be float32 or the activations' dtype");
  const bool w32 = p.weight_dtype == DType::kFloat32;
  switch (p.dtype) {
    case DType::kFloat32: launch(static_cast<float*>(nullptr), static_cast<float*>(nullptr)); return;
    case DType::kFloat16:
      w32 ? launch(static_cast<__half*>(nullptr), static_cast<float*>(nullptr))
          : launch(static_cast<__half*>(nullptr), static_cast<__half*>(nullptr));
      return;
    case DType::kBFloat16:
      w32 ? launch(static_cast<__nv_bfloat16*>(nullptr), static_cast<float*>(nullptr))
          : launch(static_cast<__nv_bfloat16*>(nullptr), static_cast<__nv_bfloat16*>(nullptr));
      return;
  }
  fail(std::string(op) + ": unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace

void conv_step(const ConvStepParams& p) {
  MCD_CHECK(p.width >= 1 && p.width <= kConvMaxWidth, "conv step: width must be 1..", kConvMaxWidth);
  by_dtypes(p, "conv step", [&](auto* t, auto* w) {
    launch_conv<std::remove_pointer_t<decltype(t)>, std::remove_pointer_t<decltype(w)>>(p);
  });
}

void scan_step(const ScanStepParams& p) {
  by_dtypes(p, "scan step", [&](auto* t, auto* w) {
    launch_scan<std::remove_pointer_t<decltype(t)>, std::remove_pointer_t<decltype(w)>>(p);
  });
}

}  // namespace mcd::ops::cuda
