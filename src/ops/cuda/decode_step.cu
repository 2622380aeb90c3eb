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

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int d = 16; d >= 1; d /= 2) v += __shfl_xor_sync(kFullMask, v, d);
  return v;
}

template <typename T>
__device__ __forceinline__ float round_to(float v) { return to_float(from_float<T>(v)); }

template <typename T, typename W>
__global__ void __launch_bounds__(kMixerThreads) mixer_step_in_kernel(MixerStepParams p) {
  __shared__ float s_u[kMixerChannels];
  const int64_t E = p.dim, J = p.dt_rank + 2 * p.dstate;
  const int64_t b = blockIdx.y, e0 = int64_t(blockIdx.x) * kMixerChannels;
  const T* xz = static_cast<const T*>(p.xz) + b * p.xz_batch_stride;
  if (threadIdx.x < kMixerChannels) {
    const int64_t e = e0 + threadIdx.x;
    float u = 0.f;
    if (e < E) {  // conv step, SiLU, mask; u rounded as the composite's tensors are
      T* state = static_cast<T*>(p.conv_state) + b * p.conv_state_s.batch + e * p.conv_state_s.row;
      const int64_t ts = p.conv_state_s.time;
      const W* w = static_cast<const W*>(p.conv_weight) + e * p.conv_weight_row_stride;
      float acc = conv_window_step(state, ts, w, p.width, xz[e]);
      if (p.conv_bias) acc += to_float(static_cast<const W*>(p.conv_bias)[e]);
      u = round_to<T>(acc * sigmoid_f(acc));
      if (p.mask) u = round_to<T>(u * round_to<T>(p.mask[e]));
      static_cast<T*>(p.u)[b * E + e] = from_float<T>(u);
    }
    s_u[threadIdx.x] = u;
  }
  __syncthreads();
  // This block's share of x_proj·u: warp w takes outputs j ≡ w (mod 8), each lane two channels;
  // four outputs' loads are issued before their reductions, so a warp waits ~J/32 latencies.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  constexpr int kWarps = kMixerThreads / 32, kPerLane = kMixerChannels / 32, kGroup = 4;
  float* part = p.partials + (b * gridDim.x + blockIdx.x) * J;
  for (int64_t j0 = warp; j0 < J; j0 += kWarps * kGroup) {
    float acc[kGroup];
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      const int64_t j = j0 + int64_t(g) * kWarps;
      acc[g] = 0.f;
      if (j < J) {
        const W* row = static_cast<const W*>(p.x_proj) + j * E + e0;
#pragma unroll
        for (int q = 0; q < kPerLane; ++q) {
          const int c = lane + 32 * q;
          if (e0 + c < E) acc[g] = fmaf(to_float(row[c]), s_u[c], acc[g]);
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      const float v = warp_sum(acc[g]);
      const int64_t j = j0 + int64_t(g) * kWarps;
      if (lane == 0 && j < J) part[j] = v;
    }
  }
}

template <typename T, typename W>
__global__ void __launch_bounds__(kMixerThreads) mixer_step_out_kernel(MixerStepParams p) {
  extern __shared__ float s_x[];  // [R + 2N] x_dbl
  const int64_t E = p.dim, N = p.dstate, R = p.dt_rank, J = R + 2 * N;
  const int64_t b = blockIdx.y, blocks = (E + kMixerChannels - 1) / kMixerChannels;
  // x_dbl: the partials summed in block order (every block the same sums: deterministic).
  for (int64_t j = threadIdx.x; j < J; j += blockDim.x) {
    const float* part = p.partials + b * blocks * J + j;
    float acc = 0.f;
#pragma unroll 8
    for (int64_t k = 0; k < blocks; ++k) acc += part[k * J];
    s_x[j] = round_to<T>(acc);
  }
  __syncthreads();
  const int64_t e = int64_t(blockIdx.x) * kMixerChannels + threadIdx.x;
  if (threadIdx.x >= kMixerChannels || e >= E) return;
  const T* xz = static_cast<const T*>(p.xz) + b * p.xz_batch_stride;
  const W* wr = static_cast<const W*>(p.dt_proj) + e * R;
  float d = 0.f;
#pragma unroll 8
  for (int64_t r = 0; r < R; ++r) d = fmaf(to_float(wr[r]), s_x[r], d);
  float dt = round_to<T>(d);
  if (p.dt_bias) dt += to_float(static_cast<const W*>(p.dt_bias)[e]);
  dt = softplus_f(dt);
  const float u = to_float(static_cast<const T*>(p.u)[b * E + e]);
  const W* a = static_cast<const W*>(p.A_log) + e * N;
  float* h = p.ssm_state + (b * E + e) * N;
  const float* Bv = s_x + R;
  const float* Cv = s_x + R + N;
  float y = scan_state_update(h, a, N, /*a_is_log=*/true, dt, dt * u, Bv, Cv);
  if (p.D) y = fmaf(to_float(static_cast<const W*>(p.D)[e]), u, y);
  const float z = to_float(xz[E + e]);
  y *= z * sigmoid_f(z);
  static_cast<T*>(p.out)[b * E + e] = from_float<T>(y);
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

template <typename T, typename W>
void launch_mixer(const MixerStepParams& p) {
  if (p.batch * p.dim == 0) return;
  const dim3 grid(unsigned((p.dim + kMixerChannels - 1) / kMixerChannels), unsigned(p.batch));
  mixer_step_in_kernel<T, W><<<grid, kMixerThreads, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
  const size_t smem = sizeof(float) * size_t(p.dt_rank + 2 * p.dstate);
  launch_with_smem(&mixer_step_out_kernel<T, W>, grid, kMixerThreads, smem, p.stream, p);
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

void mixer_step(const MixerStepParams& p) {
  MCD_CHECK(p.width >= 1 && p.width <= kConvMaxWidth, "mixer step: width must be 1..", kConvMaxWidth);
  by_dtypes(p, "mixer step", [&](auto* t, auto* w) {
    launch_mixer<std::remove_pointer_t<decltype(t)>, std::remove_pointer_t<decltype(w)>>(p);
  });
}

void scan_step(const ScanStepParams& p) {
  by_dtypes(p, "scan step", [&](auto* t, auto* w) {
    launch_scan<std::remove_pointer_t<decltype(t)>, std::remove_pointer_t<decltype(w)>>(p);
  });
}

}  // namespace mcd::ops::cuda
