// Selective-scan backward kernel and its launch template (instantiated once per dtype in
// selective_scan_bwd_{fp32,fp16,bf16}.cu). Chunks run in reverse; within a chunk the forward
// states are recomputed from the saved chunk-start state, then the reverse recurrence
//   dh_t = dy_t·C_t + exp(Δ_{t+1}A)·dh_{t+1}
// runs as a shuffle scan over the lanes, like the forward. dB and dC sum over channels: the
// block sums its channels in shared memory (fixed order), then either adds into the fp32
// (B, N, L) result with atomics (default) or stores its slice's partial for a fixed-order
// reduction (deterministic mode). Per-channel gradients (dA, dD, dΔ-bias, dmask) leave as
// per-batch partials that the host sums.
#pragma once

#include "ops/cuda/selective_scan_common.cuh"
#include "ops/cuda/selective_scan_seq_bwd.cuh"

namespace mcd::ops::cuda {

// The time-parallel backward (ScanAlgorithm::kTimeParallel, kTimeParallelWide). Flags: ScanFlags.
// kBatch: loads in flight per thread in the tile copies (0 = load_tile_fast, the only setting the
// library compiles; 1 and 8 live in dev/scan_lab).
template <class Tr, typename T, class Flags, int kBatch>
__global__ void __launch_bounds__(Tr::kThreads) selective_scan_bwd_kernel(SelectiveScanParams p) {
  constexpr bool kHasZ = Flags::kHasZ, kSoftplus = Flags::kSoftplus, kDeterministic = Flags::kDeterministic;
  constexpr int kLanes = Tr::kLanes, kItems = Tr::kItems, kCh = Tr::kChannels;
  constexpr int kPitch = Tr::kPitch, kChunk = Tr::kChunk, kThreads = Tr::kThreads;
  constexpr int kWarps = Tr::kWarps;
  using Layout = typename Tr::Layout;
  extern __shared__ float smem[];
  const int N = static_cast<int>(p.dstate);
  float* s_u = smem;                     // [kCh][kPitch] u in, then du
  float* s_dt = s_u + kCh * kPitch;      // raw Δ in, then dΔ (before the bias)
  float* s_z = s_dt + kCh * kPitch;      // z in, then dz
  float* s_dout = s_z + kCh * kPitch;    // dout
  float* s_B = s_dout + kCh * kPitch;    // [N][kPitch]
  float* s_C = s_B + N * kPitch;         // [N][kPitch]
  float* s_red = s_C + N * kPitch;       // [2 (parity of n)][2 (dB, dC)][kWarps][kPitch]
  float* s_carry = s_red + 4 * kWarps * kPitch;  // [kCh][N] dh flowing in from the next chunk
  float* s_dA = s_carry + kCh * N;               // [kCh][N]
  float* s_A = s_dA + kCh * N;                   // [kCh][N]

  const int64_t b = blockIdx.y;
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kCh;
  const int rows = static_cast<int>(p.dim - e0 < kCh ? p.dim - e0 : kCh);
  const int c = threadIdx.x / kLanes, j = threadIdx.x % kLanes;
  const int warp = threadIdx.x / 32;
  const bool first_channel_of_warp = (threadIdx.x % 32) < kLanes;
  const int64_t e = e0 + c;
  const bool e_ok = c < rows;
  const auto [D, bias, m] = scan_channel_consts(p, e, e_ok);
  const int64_t bnl = p.batch * N * p.len;

  const auto [u_g, dt_g, z_g, B_g, C_g] = scan_input_rows<T, kHasZ>(p, b, e0);
  const T* dout_g = static_cast<const T*>(p.dout) + b * p.dout_s.batch + e0 * p.dout_s.row;
  T* du_g = static_cast<T*>(p.du) + b * p.du_s.batch + e0 * p.du_s.row;
  T* ddt_g = static_cast<T*>(p.ddelta) + b * p.ddelta_s.batch + e0 * p.ddelta_s.row;
  T* dz_g = kHasZ ? static_cast<T*>(p.dz) + b * p.dz_s.batch + e0 * p.dz_s.row : nullptr;
  T* out_g = p.out != nullptr ? static_cast<T*>(p.out) + b * p.out_s.batch + e0 * p.out_s.row : nullptr;

  for (int i = threadIdx.x; i < kCh * N; i += kThreads) {
    s_carry[i] = 0.f;
    s_dA[i] = 0.f;
    s_A[i] = i / N < rows ? p.A[e0 * N + i] : 0.f;
  }
  float dD_acc = 0.f, dbias_acc = 0.f, dm_acc = 0.f;

  for (int64_t chunk = p.n_chunks - 1; chunk >= 0; --chunk) {
    const int64_t t0 = chunk * kChunk;
    __syncthreads();  // the previous (later) chunk's gradient tiles have been stored
    load_tile<kChunk, kThreads, Layout, kBatch>(s_u, u_g, p.u_s.row, p.u_s.time, kCh, rows, t0, p.len);
    load_tile<kChunk, kThreads, Layout, kBatch>(s_dt, dt_g, p.delta_s.row, p.delta_s.time, kCh, rows, t0, p.len);
    if constexpr (kHasZ)
      load_tile<kChunk, kThreads, Layout, kBatch>(s_z, z_g, p.z_s.row, p.z_s.time, kCh, rows, t0, p.len);
    load_tile<kChunk, kThreads, Layout, kBatch>(s_dout, dout_g, p.dout_s.row, p.dout_s.time, kCh, rows, t0, p.len);
    load_tile<kChunk, kThreads, Layout, kBatch>(s_B, B_g, p.B_s.row, p.B_s.time, N, N, t0, p.len);
    load_tile<kChunk, kThreads, Layout, kBatch>(s_C, C_g, p.C_s.row, p.C_s.time, N, N, t0, p.len);
    __syncthreads();

    // dy = dout·SiLU(z) is the gradient of y = C·h + D·u' (no need for y itself); y is
    // accumulated below only for dz.
    float dt[kItems], uu[kItems], dy[kItems], y[kItems], du[kItems], ddt[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int t = j * kItems + i;
      const bool ok = e_ok && t0 + t < p.len;
      float x = s_dt[Layout::at(c, t)] + bias;
      if constexpr (kSoftplus) x = softplus_f(x);
      dt[i] = ok ? x : 0.f;
      uu[i] = s_u[Layout::at(c, t)] * m;
      const float g = s_dout[Layout::at(c, t)];
      if constexpr (kHasZ) {
        const float zz = s_z[Layout::at(c, t)];
        dy[i] = g * zz * sigmoid_f(zz);
      } else {
        dy[i] = g;
      }
      y[i] = D * uu[i];
      du[i] = dy[i] * D;
      ddt[i] = 0.f;
    }

    for (int n = 0; n < N; ++n) {
      const float A = s_A[c * N + n];
      const float A2 = A * kLog2e;
      float a[kItems], Bv[kItems], Cv[kItems], hs[kItems];
      // Forward recompute: this lane's segment as h ↦ P·h + S, scanned over the lanes.
      float P = 1.f, S = 0.f;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        a[i] = exp2f(dt[i] * A2);
        Bv[i] = s_B[Layout::at(n, j * kItems + i)];
        Cv[i] = s_C[Layout::at(n, j * kItems + i)];
        S = fmaf(a[i], S, dt[i] * uu[i] * Bv[i]);
        P *= a[i];
      }
      const float P_seg = P;
#pragma unroll
      for (int d = 1; d < kLanes; d *= 2) {
        const float Pu = __shfl_up_sync(kFullMask, P, d, kLanes);
        const float Su = __shfl_up_sync(kFullMask, S, d, kLanes);
        if (j >= d) {
          S = fmaf(P, Su, S);
          P *= Pu;
        }
      }
      const float Pe = __shfl_up_sync(kFullMask, P, 1, kLanes);
      const float Se = __shfl_up_sync(kFullMask, S, 1, kLanes);
      const float hc = e_ok ? p.states[((b * p.dim + e) * p.n_chunks + chunk) * N + n] : 0.f;
      const float h_start = j == 0 ? hc : fmaf(Pe, hc, Se);
      float h = h_start;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        h = fmaf(a[i], h, dt[i] * uu[i] * Bv[i]);
        hs[i] = h;
        y[i] = fmaf(Cv[i], h, y[i]);
      }

      // Reverse recurrence. A segment maps the dh arriving from after it, I, to what it passes
      // to the segment before: I ↦ P_seg·I + Q, Q = that output for I = 0.
      float Q = 0.f;
#pragma unroll
      for (int i = kItems - 1; i >= 0; --i) Q = a[i] * fmaf(dy[i], Cv[i], Q);
      float Ps = P_seg, Qs = Q;  // suffix composition over lanes j … kLanes−1
#pragma unroll
      for (int d = 1; d < kLanes; d *= 2) {
        const float Pd = __shfl_down_sync(kFullMask, Ps, d, kLanes);
        const float Qd = __shfl_down_sync(kFullMask, Qs, d, kLanes);
        if (j + d < kLanes) {
          Qs = fmaf(Ps, Qd, Qs);
          Ps *= Pd;
        }
      }
      const float Pn = __shfl_down_sync(kFullMask, Ps, 1, kLanes);
      const float Qn = __shfl_down_sync(kFullMask, Qs, 1, kLanes);
      const float I_end = s_carry[c * N + n];
      float r = j == kLanes - 1 ? I_end : fmaf(Pn, I_end, Qn);  // dh reaching my last item
      __syncwarp();
      if (j == 0) s_carry[c * N + n] = fmaf(Ps, I_end, Qs);

      const int par = n & 1;
      float* red_B = s_red + ((par * 2 + 0) * kWarps + warp) * kPitch;
      float* red_C = s_red + ((par * 2 + 1) * kWarps + warp) * kPitch;
      float dA_acc = 0.f;
#pragma unroll
      for (int i = kItems - 1; i >= 0; --i) {
        const float dh = fmaf(dy[i], Cv[i], r);
        const float h_prev_a = (i > 0 ? hs[i - 1] : h_start) * a[i];
        du[i] = fmaf(dh * dt[i], Bv[i], du[i]);
        ddt[i] = fmaf(dh, fmaf(h_prev_a, A, Bv[i] * uu[i]), ddt[i]);
        dA_acc = fmaf(dh * h_prev_a, dt[i], dA_acc);
        r = a[i] * dh;
        float vB = dh * dt[i] * uu[i];
        float vC = dy[i] * hs[i];
#pragma unroll
        for (int d = kLanes; d < 32; d *= 2) {  // the warp's other channels
          vB += __shfl_xor_sync(kFullMask, vB, d);
          vC += __shfl_xor_sync(kFullMask, vC, d);
        }
        if (first_channel_of_warp) {
          red_B[Layout::at(0, j * kItems + i)] = vB;
          red_C[Layout::at(0, j * kItems + i)] = vC;
        }
      }
#pragma unroll
      for (int d = kLanes / 2; d >= 1; d /= 2) dA_acc += __shfl_xor_sync(kFullMask, dA_acc, d, kLanes);
      if (j == 0 && e_ok) s_dA[c * N + n] += dA_acc;
      __syncthreads();
      for (int t = threadIdx.x; t < kChunk; t += kThreads) {
        if (t0 + t >= p.len) continue;
        float sB = 0.f, sC = 0.f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
          sB += s_red[((par * 2 + 0) * kWarps + w) * kPitch + Layout::at(0, t)];
          sC += s_red[((par * 2 + 1) * kWarps + w) * kPitch + Layout::at(0, t)];
        }
        const int64_t gi = (b * N + n) * p.len + t0 + t;
        if constexpr (kDeterministic) {
          p.dB_part[blockIdx.x * bnl + gi] = sB;
          p.dC_part[blockIdx.x * bnl + gi] = sC;
        } else {
          atomicAdd(p.dB + gi, sB);
          atomicAdd(p.dC + gi, sC);
        }
      }
    }

    // Per-item gradients of this chunk into the tiles (each thread rewrites its own items).
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int t = j * kItems + i;
      const bool ok = e_ok && t0 + t < p.len;
      // s_dout is this thread's own item and is not read again: it takes the recomputed output.
      if constexpr (kHasZ) {
        const float zz = s_z[Layout::at(c, t)], sg = sigmoid_f(zz);
        s_z[Layout::at(c, t)] = s_dout[Layout::at(c, t)] * y[i] * sg * (1.f + zz * (1.f - sg));
        s_dout[Layout::at(c, t)] = y[i] * zz * sg;
      } else {
        s_dout[Layout::at(c, t)] = y[i];
      }
      const float u_raw = s_u[Layout::at(c, t)];
      float dpre = ddt[i];
      if constexpr (kSoftplus) {
        const float x = s_dt[Layout::at(c, t)] + bias;
        dpre = x > 20.f ? ddt[i] : ddt[i] * sigmoid_f(x);
      }
      if (ok) {
        dm_acc = fmaf(u_raw, du[i], dm_acc);
        dD_acc = fmaf(dy[i], uu[i], dD_acc);
        dbias_acc += dpre;
      }
      s_u[Layout::at(c, t)] = du[i] * m;
      s_dt[Layout::at(c, t)] = dpre;
    }
    __syncthreads();
    store_tile<kChunk, kThreads, Layout>(du_g, s_u, p.du_s.row, p.du_s.time, kCh, rows, t0, p.len);
    store_tile<kChunk, kThreads, Layout>(ddt_g, s_dt, p.ddelta_s.row, p.ddelta_s.time, kCh, rows, t0, p.len);
    if constexpr (kHasZ)
      store_tile<kChunk, kThreads, Layout>(dz_g, s_z, p.dz_s.row, p.dz_s.time, kCh, rows, t0, p.len);
    if (out_g != nullptr)
      store_tile<kChunk, kThreads, Layout>(out_g, s_dout, p.out_s.row, p.out_s.time, kCh, rows, t0, p.len);
  }

#pragma unroll
  for (int d = kLanes / 2; d >= 1; d /= 2) {
    dD_acc += __shfl_xor_sync(kFullMask, dD_acc, d, kLanes);
    dbias_acc += __shfl_xor_sync(kFullMask, dbias_acc, d, kLanes);
    dm_acc += __shfl_xor_sync(kFullMask, dm_acc, d, kLanes);
  }
  const int64_t pb = p.param_grads_atomic ? 0 : b;  // the partials' batch row
  if (j == 0 && e_ok) {
    if (p.dD_part != nullptr) put_param_grad(p.dD_part + pb * p.dim + e, dD_acc, p.param_grads_atomic);
    if (p.ddelta_bias_part != nullptr)
      put_param_grad(p.ddelta_bias_part + pb * p.dim + e, dbias_acc, p.param_grads_atomic);
    if (p.dmask_part != nullptr) put_param_grad(p.dmask_part + pb * p.dim + e, dm_acc, p.param_grads_atomic);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kCh * N; i += kThreads) {
    const int cc = i / N;
    if (cc < rows) put_param_grad(p.dA_part + (pb * p.dim + e0 + cc) * N + (i % N), s_dA[i], p.param_grads_atomic);
  }
}

// Deterministic mode: dB = Σ over channel slices of the partials, in slice order.
static __global__ void sum_slices_kernel(float* __restrict__ out, const float* __restrict__ parts,
                                  int64_t n_slices, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int64_t k = 0; k < n_slices; ++k) s += parts[k * count + i];
    out[i] = s;
  }
}

// The library runs kBatch = 0; dev/scan_lab instantiates the lab's 1 and 8.
template <class Tr, typename T, class Flags, int kBatch = 0>
void selective_scan_bwd_run(const SelectiveScanParams& p) {
  const dim3 grid(static_cast<unsigned>((p.dim + Tr::kChannels - 1) / Tr::kChannels),
                  static_cast<unsigned>(p.batch));
  const size_t smem = sizeof(float) * (4 * Tr::kChannels * Tr::kPitch + 2 * p.dstate * Tr::kPitch +
                                       4 * Tr::kWarps * Tr::kPitch + 3 * Tr::kChannels * p.dstate);
  launch_with_smem(&selective_scan_bwd_kernel<Tr, T, Flags, kBatch>, grid, Tr::kThreads, smem, p.stream, p);
}

// The backward of p.algorithm (the forward's, kept by the host op's autograd node), in atomic or
// deterministic mode: every algorithm has both.
template <typename T>
void selective_scan_bwd_launch(const SelectiveScanParams& p) {
  MCD_CHECK(scan_algorithm_supports(p.algorithm, p.dstate), "selective scan: algorithm ",
            scan_algorithm_name(p.algorithm), " does not take N = ", p.dstate);
  MCD_CHECK(p.n_chunks == scan_state_count(p.algorithm, p.len), "selective scan: n_chunks does not match algorithm ",
            scan_algorithm_name(p.algorithm));
  with_backward_flags(p, [&](auto flags) {
    using Flags = decltype(flags);
    switch (p.algorithm) {
      case ScanAlgorithm::kTimeParallel: return selective_scan_bwd_run<ScanConfig, T, Flags>(p);
      case ScanAlgorithm::kTimeParallelWide: return selective_scan_bwd_run<ScanConfigWide, T, Flags>(p);
      case ScanAlgorithm::kStateSequential:
        return selective_scan_seq_bwd_run<SeqQuad, SeqBwdPlan<SeqBwdFourPerSm>, T, Flags>(p);
      case ScanAlgorithm::kStateSequentialOneWave:
        return selective_scan_seq_bwd_run<SeqQuad, SeqBwdPlan<SeqBwdOneWave>, T, Flags>(p);
      case ScanAlgorithm::kStateSequentialDense:
        return selective_scan_seq_bwd_run<SeqQuad, SeqBwdPlan<SeqBwdOneWaveDense>, T, Flags>(p);
      case ScanAlgorithm::kStateSequentialEightLanes:
        return selective_scan_seq_bwd_run<SeqEight, SeqBwdPlan<SeqBwdEightLanes>, T, Flags>(p);
      case ScanAlgorithm::kStateSequentialSegmented:
        return selective_scan_seq_bwd_run<SeqQuad, SeqBwdPlan<SeqBwdFourPerSm>, T, Flags>(p);
    }
    fail(cat("selective scan: unknown algorithm ", static_cast<int>(p.algorithm)));
  });
  if (p.deterministic) {
    const int64_t slices = scan_slice_count(p.algorithm, p.dim);
    const int64_t count = p.batch * p.dstate * p.len;
    const int threads = 256;
    const int64_t blocks64 = (count + threads - 1) / threads;
    const unsigned blocks = static_cast<unsigned>(blocks64 < 65535 * 8 ? blocks64 : 65535 * 8);
    sum_slices_kernel<<<blocks, threads, 0, p.stream>>>(p.dB, p.dB_part, slices, count);
    MCD_CUDA_CHECK(cudaGetLastError());
    sum_slices_kernel<<<blocks, threads, 0, p.stream>>>(p.dC, p.dC_part, slices, count);
    MCD_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace mcd::ops::cuda
