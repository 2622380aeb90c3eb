// Lab version 13: a forward for small B·E (a prefill at B = 1), one block of threads per channel.
// Why: at B = 1 every library algorithm gives a channel one warp or less, so (1, 4096, 1536) runs
// ≤ 6 warps per SM and takes ~450 µs whatever the algorithm (docs/PERF_NOTES.md, "Fourth
// session"); mamba-ssm's forward, which gives each channel 128 threads, takes 127 µs there.
// Layout: grid (E / kChannels, B); kChannels adjacent channels per block (so that with channel-last
// operands the block's loads of one step share their sectors through L1), each walked by kWarps
// warps: kWarps·32 threads per channel walk a chunk of kWarps·32·kItems steps, thread j owning
// the kItems consecutive steps j·kItems …; per state n each thread folds its items into the affine
// map h ↦ P·h + S, a warp shuffle scan composes the lanes, one barrier per state exchanges the
// warps' totals (double-buffered, alternating with every state of every chunk, so one barrier
// suffices: a buffer is written again only after the next barrier), and every thread keeps the
// same copy of the chunk-start states (registers, N ≤ kMaxN), so no thread waits on another's
// carry. Inference only: no saved states (p.states is ignored), so there is no backward.
// Semantics: selective_scan_fwd (ops/cuda/scan_params.h): Δ = softplus(δ + bias) (or δ + bias),
// u' = mask⊙u, h_t = exp(Δ_t A)⊙h_{t−1} + Δ_t B_t u'_t, y_t = C_t·h_t + D u'_t, out = y⊙SiLU(z).
#pragma once

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/scan_params.h"
#include "ops/cuda/selective_scan_common.cuh"

namespace mcd::ops::cuda::lab {

constexpr int kBlockScanMaxN = 16;

// B or C at state n, step t (= t0 + j of the chunk): from the staged chunk, or from global memory
// (0 past the end).
template <bool kStaged, int kRows, int kCols, typename T>
__device__ __forceinline__ float bc_at(const float (&staged)[kRows][kCols], const T* g, const Strides3& st, int n,
                                       int64_t t, int64_t len, int j) {
  if constexpr (kStaged) return staged[n][j];
  else return t < len ? to_float(g[n * st.row + t * st.time]) : 0.f;
}

// kStageBC (version 18): the chunk's B and C for every state are first copied into shared memory by
// the whole block (coalesced along whichever of time or state is unit-stride; the block's channels
// share them), so the state loop reads them there instead of waiting on a global load per state —
// the suspect after versions 13–17 measured 397–865 µs at (1, 4096, 1536) (fifth session).
template <int kWarps, int kItems, typename T, class Flags, int kChannels = 1, bool kStageBC = false>
__global__ void __launch_bounds__(kWarps * 32 * kChannels) block_scan_fwd_kernel(SelectiveScanParams p) {
  constexpr bool kHasZ = Flags::kHasZ, kSoftplus = Flags::kSoftplus;
  constexpr int kThreads = kWarps * 32, kChunk = kThreads * kItems;  // per channel
  __shared__ float s_P[2][kChannels * kWarps], s_S[2][kChannels * kWarps];  // each warp's map, current state
  constexpr int kStaged = kStageBC ? kChunk : 1;
  __shared__ __align__(16) float s_B[kStageBC ? kBlockScanMaxN : 1][kStaged], s_C[kStageBC ? kBlockScanMaxN : 1][kStaged];
  int phase = 0;  // which of the two buffers: flips every state
  const int N = static_cast<int>(p.dstate);
  const int c = threadIdx.x / kThreads;  // this thread's channel in the block
  const int64_t e = int64_t(blockIdx.x) * kChannels + c, b = blockIdx.y;
  const bool e_ok = e < p.dim;  // past the last channel: walks zeros, writes nothing (barriers are shared)
  const int tid = threadIdx.x % kThreads, lane = tid % 32, warp = tid / 32;
  const int w0 = c * kWarps;  // the channel's first warp in s_P / s_S
  const auto [D, bias, m] = scan_channel_consts(p, e, e_ok);
  const auto [u_g, dt_g, z_g, B_g, C_g] = scan_input_rows<T, kHasZ>(p, b, e);
  T* out_g = static_cast<T*>(p.out) + b * p.out_s.batch + e * p.out_s.row;

  float hc[kBlockScanMaxN];  // the state at the current chunk's start; the same in every thread
  float A2[kBlockScanMaxN];  // A·log2(e)
#pragma unroll
  for (int n = 0; n < kBlockScanMaxN; ++n) {
    hc[n] = 0.f;
    A2[n] = n < N && e_ok ? p.A[e * N + n] * kLog2e : 0.f;
  }

  for (int64_t t0 = 0; t0 < p.len; t0 += kChunk) {
    const int64_t tt = t0 + int64_t(tid) * kItems;  // this thread's first step
    if constexpr (kStageBC) {
      __syncthreads();  // every thread is done with the previous chunk's copies
      const bool time_major = p.B_s.time == 1;  // consecutive threads walk the unit-stride dimension
      for (int i = threadIdx.x; i < N * kChunk; i += blockDim.x) {
        const int n = time_major ? i / kChunk : i % N, j = time_major ? i % kChunk : i / N;
        const int64_t t = t0 + j;
        s_B[n][j] = t < p.len ? to_float(B_g[n * p.B_s.row + t * p.B_s.time]) : 0.f;
        s_C[n][j] = t < p.len ? to_float(C_g[n * p.C_s.row + t * p.C_s.time]) : 0.f;
      }
      __syncthreads();
    }
    float dt[kItems], dtu[kItems], y[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int64_t t = tt + i;
      const bool ok = e_ok && t < p.len;
      float x = ok ? to_float(dt_g[t * p.delta_s.time]) + bias : 0.f;
      if constexpr (kSoftplus) x = softplus_f(x);
      dt[i] = ok ? x : 0.f;  // Δ = 0 past the end: the state passes unchanged
      const float uu = ok ? to_float(u_g[t * p.u_s.time]) * m : 0.f;
      dtu[i] = dt[i] * uu;
      y[i] = D * uu;
    }
#pragma unroll
    for (int n = 0; n < kBlockScanMaxN; ++n) {
      if (n >= N) continue;  // not break: the unrolled loop keeps hc and A2 in registers (N is uniform)
      float a[kItems], bx[kItems];
      float P = 1.f, S = 0.f;  // this thread's items as h ↦ P·h + S
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t t = tt + i;
        const float Bv = bc_at<kStageBC>(s_B, B_g, p.B_s, n, t, p.len, tid * kItems + i);
        a[i] = exp2f(dt[i] * A2[n]);
        bx[i] = dtu[i] * Bv;
        S = fmaf(a[i], S, bx[i]);
        P *= a[i];
      }
      // Inclusive scan over the warp's lanes (compose with the lanes before).
#pragma unroll
      for (int d = 1; d < 32; d *= 2) {
        const float Pu = __shfl_up_sync(kFullMask, P, d), Su = __shfl_up_sync(kFullMask, S, d);
        if (lane >= d) {
          S = fmaf(P, Su, S);
          P *= Pu;
        }
      }
      const int q = phase;
      phase ^= 1;
      if (lane == 31) {
        s_P[q][w0 + warp] = P;
        s_S[q][w0 + warp] = S;
      }
      // This lane's exclusive prefix within the warp.
      float Pe = __shfl_up_sync(kFullMask, P, 1), Se = __shfl_up_sync(kFullMask, S, 1);
      if (lane == 0) Pe = 1.f, Se = 0.f;
      __syncthreads();
      // The state before this warp (the warps before it applied to the chunk's start) and after the
      // whole chunk (every warp), in warp order: the same arithmetic in every thread.
      float h_warp = hc[n], h_end = hc[n];
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        h_end = fmaf(s_P[q][w0 + w], h_end, s_S[q][w0 + w]);
        if (w + 1 == warp) h_warp = h_end;
      }
      hc[n] = h_end;
      float h = fmaf(Pe, h_warp, Se);  // the state before this thread's first item
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const int64_t t = tt + i;
        const float Cv = bc_at<kStageBC>(s_C, C_g, p.C_s, n, t, p.len, tid * kItems + i);
        h = fmaf(a[i], h, bx[i]);
        y[i] = fmaf(Cv, h, y[i]);
      }
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int64_t t = tt + i;
      if (!e_ok || t >= p.len) break;
      float o = y[i];
      if constexpr (kHasZ) {
        const float zz = to_float(z_g[t * p.z_s.time]);
        o *= zz * sigmoid_f(zz);
      }
      out_g[t * p.out_s.time] = from_float<T>(o);
    }
  }
  if (p.last_state != nullptr && tid == 0 && e_ok) {
#pragma unroll
    for (int n = 0; n < kBlockScanMaxN; ++n)  // static indices: hc stays in registers (a dynamic index
      if (n < N) p.last_state[(b * p.dim + e) * N + n] = hc[n];  // put it in local memory until the sixth session)
  }
}

// Needs N ≤ kBlockScanMaxN.
template <int kWarps, int kItems, typename T, class Flags, int kChannels = 1, bool kStageBC = false>
void block_scan_fwd_run(const SelectiveScanParams& p) {
  if (p.dstate > kBlockScanMaxN) {
    std::fprintf(stderr, "block_scan_fwd: N = %ld > %d\n", long(p.dstate), kBlockScanMaxN);
    std::exit(1);
  }
  const dim3 grid(static_cast<unsigned>((p.dim + kChannels - 1) / kChannels), static_cast<unsigned>(p.batch));
  block_scan_fwd_kernel<kWarps, kItems, T, Flags, kChannels, kStageBC><<<grid, kWarps * 32 * kChannels, 0, p.stream>>>(p);
}

}  // namespace mcd::ops::cuda::lab
