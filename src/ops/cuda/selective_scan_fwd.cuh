// Selective-scan forward kernel and its launch template (instantiated once per dtype in
// selective_scan_fwd_{fp32,fp16,bf16}.cu). Fused: Δ-bias + softplus, mask, D skip, SiLU(z) gate;
// fp32 state in registers; exp2 with log2(e)-prescaled A; optional chunk-start states for the
// backward and the final state for decoding.
#pragma once

#include "ops/cuda/selective_scan_block_fwd.cuh"
#include "ops/cuda/selective_scan_common.cuh"
#include "ops/cuda/selective_scan_seq_fwd.cuh"

namespace mcd::ops::cuda {

// The time-parallel forward (ScanAlgorithm::kTimeParallel, kTimeParallelWide). Flags: ScanFlags.
// kBatch: loads in flight per thread in the tile copies (0 = load_tile_fast, the only setting the
// library compiles; 1 and 8 live in dev/scan_lab); kUnrollN: state loop unrolling (1 in the
// library; 2 in the lab).
template <class Tr, typename T, class Flags, int kBatch, int kUnrollN>
__global__ void __launch_bounds__(Tr::kThreads) selective_scan_fwd_kernel(SelectiveScanParams p) {
  constexpr bool kHasZ = Flags::kHasZ, kSoftplus = Flags::kSoftplus;
  constexpr int kLanes = Tr::kLanes, kItems = Tr::kItems, kCh = Tr::kChannels;
  constexpr int kPitch = Tr::kPitch, kChunk = Tr::kChunk, kThreads = Tr::kThreads;
  using Layout = typename Tr::Layout;
  extern __shared__ float smem[];
  const int N = static_cast<int>(p.dstate);
  float* s_u = smem;                  // [kCh][kPitch]
  float* s_dt = s_u + kCh * kPitch;   // [kCh][kPitch] raw Δ
  float* s_z = s_dt + kCh * kPitch;   // [kCh][kPitch] z in, then the output tile
  float* s_B = s_z + kCh * kPitch;    // [N][kPitch]
  float* s_C = s_B + N * kPitch;      // [N][kPitch]
  float* s_carry = s_C + N * kPitch;  // [kCh][N] state at the current chunk's start
  float* s_A2 = s_carry + kCh * N;    // [kCh][N] A·log2(e)

  const int64_t b = blockIdx.y;
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kCh;
  const int rows = static_cast<int>(p.dim - e0 < kCh ? p.dim - e0 : kCh);
  const int c = threadIdx.x / kLanes, j = threadIdx.x % kLanes;
  const int64_t e = e0 + c;
  const bool e_ok = c < rows;
  const auto [D, bias, m] = scan_channel_consts(p, e, e_ok);

  const auto [u_g, dt_g, z_g, B_g, C_g] = scan_input_rows<T, kHasZ>(p, b, e0);
  T* out_g = static_cast<T*>(p.out) + b * p.out_s.batch + e0 * p.out_s.row;

  for (int i = threadIdx.x; i < kCh * N; i += kThreads) {
    s_carry[i] = 0.f;
    s_A2[i] = i / N < rows ? p.A[e0 * N + i] * kLog2e : 0.f;
  }

  for (int64_t chunk = 0; chunk < p.n_chunks; ++chunk) {
    const int64_t t0 = chunk * kChunk;
    __syncthreads();  // the previous chunk's output tile has been stored
    load_tile<kChunk, kThreads, Layout, kBatch>(s_u, u_g, p.u_s.row, p.u_s.time, kCh, rows, t0, p.len);
    load_tile<kChunk, kThreads, Layout, kBatch>(s_dt, dt_g, p.delta_s.row, p.delta_s.time, kCh, rows, t0, p.len);
    if constexpr (kHasZ)
      load_tile<kChunk, kThreads, Layout, kBatch>(s_z, z_g, p.z_s.row, p.z_s.time, kCh, rows, t0, p.len);
    load_tile<kChunk, kThreads, Layout, kBatch>(s_B, B_g, p.B_s.row, p.B_s.time, N, N, t0, p.len);
    load_tile<kChunk, kThreads, Layout, kBatch>(s_C, C_g, p.C_s.row, p.C_s.time, N, N, t0, p.len);
    __syncthreads();

    // Per item: Δ (0 past the end, so padding leaves the state unchanged), Δ·u', y = D·u'.
    float dt[kItems], dtu[kItems], y[kItems];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int t = j * kItems + i;
      const bool ok = e_ok && t0 + t < p.len;
      float x = s_dt[Layout::at(c, t)] + bias;
      if constexpr (kSoftplus) x = softplus_f(x);
      dt[i] = ok ? x : 0.f;
      const float uu = s_u[Layout::at(c, t)] * m;
      dtu[i] = dt[i] * uu;
      y[i] = D * uu;
    }

#pragma unroll(kUnrollN)
    for (int n = 0; n < N; ++n) {
      const float A2 = s_A2[c * N + n];
      float a[kItems], bx[kItems];
      float P = 1.f, S = 0.f;  // this lane's segment as the map h ↦ P·h + S
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        a[i] = exp2f(dt[i] * A2);
        bx[i] = dtu[i] * s_B[Layout::at(n, j * kItems + i)];
        S = fmaf(a[i], S, bx[i]);
        P *= a[i];
      }
      // Inclusive scan over the channel's lanes: compose with the segments before.
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
      const float hc = s_carry[c * N + n];
      float h = j == 0 ? hc : fmaf(Pe, hc, Se);  // state before this lane's first item
      if (p.states != nullptr && j == 0 && e_ok)
        p.states[((b * p.dim + e) * p.n_chunks + chunk) * N + n] = hc;
      __syncwarp();
      if (j == kLanes - 1) s_carry[c * N + n] = fmaf(P, hc, S);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        h = fmaf(a[i], h, bx[i]);
        y[i] = fmaf(s_C[Layout::at(n, j * kItems + i)], h, y[i]);
      }
    }

    // Gate and write the output tile (over z's slot: each thread rewrites only its own items).
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int t = j * kItems + i;
      float o = y[i];
      if constexpr (kHasZ) {
        const float zz = s_z[Layout::at(c, t)];
        o *= zz * sigmoid_f(zz);
      }
      s_z[Layout::at(c, t)] = o;
    }
    __syncthreads();
    store_tile<kChunk, kThreads, Layout>(out_g, s_z, p.out_s.row, p.out_s.time, kCh, rows, t0, p.len);
  }

  if (p.last_state != nullptr) {
    __syncthreads();
    for (int i = threadIdx.x; i < kCh * N; i += kThreads) {
      const int cc = i / N;
      if (cc < rows) p.last_state[(b * p.dim + e0 + cc) * N + (i % N)] = s_carry[i];
    }
  }
}

// The library runs kBatch = 0, kUnrollN = 1; dev/scan_lab instantiates the lab's other settings.
template <class Tr, typename T, class Flags, int kBatch = 0, int kUnrollN = 1>
void selective_scan_fwd_run(const SelectiveScanParams& p) {
  const dim3 grid(static_cast<unsigned>((p.dim + Tr::kChannels - 1) / Tr::kChannels),
                  static_cast<unsigned>(p.batch));
  const size_t smem =
      sizeof(float) * (3 * Tr::kChannels * Tr::kPitch + 2 * p.dstate * Tr::kPitch + 2 * Tr::kChannels * p.dstate);
  launch_with_smem(&selective_scan_fwd_kernel<Tr, T, Flags, kBatch, kUnrollN>, grid, Tr::kThreads, smem, p.stream, p);
}

// The forward of p.algorithm (chosen by the host op, scan_params.h).
template <typename T>
void selective_scan_fwd_launch(const SelectiveScanParams& p) {
  MCD_CHECK(scan_algorithm_supports(p.algorithm, p.dstate), "selective scan: algorithm ",
            scan_algorithm_name(p.algorithm), " does not take N = ", p.dstate);
  MCD_CHECK(p.n_chunks == scan_state_count(p.algorithm, p.len), "selective scan: n_chunks does not match algorithm ",
            scan_algorithm_name(p.algorithm));
  with_forward_flags(p, [&](auto flags) {
    using Flags = decltype(flags);
    switch (p.algorithm) {
      case ScanAlgorithm::kTimeParallel: return selective_scan_fwd_run<ScanConfig, T, Flags>(p);
      case ScanAlgorithm::kTimeParallelWide: return selective_scan_fwd_run<ScanConfigWide, T, Flags>(p);
      case ScanAlgorithm::kStateSequential:
      case ScanAlgorithm::kStateSequentialOneWave:  // the same forward: a state every kSeqChunk steps
        return selective_scan_seq_fwd_run<SeqQuad, T, Flags, kSeqChunk>(p);
      case ScanAlgorithm::kStateSequentialDense: return selective_scan_seq_fwd_run<SeqQuad, T, Flags, kSeqSub>(p);
      case ScanAlgorithm::kStateSequentialEightLanes:
      case ScanAlgorithm::kStateSequentialSegmented: return selective_scan_seq_fwd_run<SeqEight, T, Flags, kSeqChunk>(p);
      case ScanAlgorithm::kBlockForward: return selective_scan_block_fwd<T, Flags>(p, false);
      case ScanAlgorithm::kBlockForwardStaged: return selective_scan_block_fwd<T, Flags>(p, true);
    }
    fail(cat("selective scan: unknown algorithm ", static_cast<int>(p.algorithm)));
  });
}

}  // namespace mcd::ops::cuda
