// State-sequential selective-scan forward (ScanAlgorithm::kStateSequential*; see selective_scan_seq.cuh and
// [Note: state-sequential scan] in docs/PERF_NOTES.md). Per tile of kSeqChunk steps:
//   stage (cp.async, one tile ahead) → prep (softplus(Δ + bias), Δ·u', u', SiLU(z) into fp32
//   shared arrays, once per (t, e)) → scan (each lane: kNT states, sequential in t, y partials
//   summed over the kSplit lanes of the channel) → epilogue (out = (y + D·u')·SiLU(z), stored).
// Saves the state every kEvery steps (the backward's checkpoints: at every tile start, or with
// kEvery = kSeqSub at every backward sub-tile start, kStateSequentialDense) and optionally the last one.
#pragma once

#include <type_traits>

#include "ops/cuda/selective_scan_seq.cuh"

namespace mcd::ops::cuda {

template <class Tr, typename T>
struct SeqFwdSmem {
  StagedTiles<T, Tr::kT, 5, 3, Tr::kCh> tiles;  // u, Δ, z, B, C
  float *dt, *dtu_y, *u, *gz;  // [kT][kCh]; dtu_y holds Δ·u' until the scan overwrites it with y
  float *B, *C;                // [kT][kMaxN]
  __host__ __device__ static SeqFwdSmem carve(char* base, int N, size_t* bytes) {
    SmemCarver sc{base};
    SeqFwdSmem s;
    s.tiles.carve(sc, Tr::kCh, N);
    s.dt = sc.take<float>(Tr::kT * Tr::kCh);
    s.dtu_y = sc.take<float>(Tr::kT * Tr::kCh);
    s.u = sc.take<float>(Tr::kT * Tr::kCh);
    s.gz = sc.take<float>(Tr::kT * Tr::kCh);
    s.B = sc.take<float>(Tr::kT * Tr::kMaxN);
    s.C = sc.take<float>(Tr::kT * Tr::kMaxN);
    if (bytes != nullptr) *bytes = sc.used;
    return s;
  }
};

// 128-thread blocks: four per SM (≤ 128 registers), so 8 × 2048 channels run in one wave.
// kSegmented: the time-segmented forward ([Note: time-segmented forward] below; blockIdx.z is the
// segment), a separate instantiation so that the one-walk kernels stay as they were.
template <class Tr, typename T, class Flags, int kEvery, bool kSegmented = false>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kThreads == 128 ? 4 : 1) selective_scan_seq_fwd_kernel(SelectiveScanParams p) {
  constexpr bool kHasZ = Flags::kHasZ, kSoftplus = Flags::kSoftplus;
  constexpr int kT = Tr::kT, kCh = Tr::kCh, kNT = Tr::kNT, kSplit = Tr::kSplit;
  static_assert(kT % kEvery == 0 && kEvery % kSplit == 0, "saved states split a tile evenly");
  constexpr int kThreads = Tr::kThreads, kMaxN = Tr::kMaxN;
  // Prep/epilogue items per thread (see PrepSplit): channel pc, state pn.
  using Split = PrepSplit<Tr>;
  constexpr int kPrepStride = Split::kStride, kItemsCh = Split::kItems;
  constexpr int kPrepStrideN = Split::kStrideN, kItemsN = Split::kItemsN;
  using Op = TileOperand<T, kT>;
  extern __shared__ __align__(16) char smem_raw[];
  const int N = static_cast<int>(p.dstate);
  const SeqFwdSmem<Tr, T> sm = SeqFwdSmem<Tr, T>::carve(smem_raw, N, nullptr);

  const int64_t b = blockIdx.y;
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kCh;
  const int rows = static_cast<int>(p.dim - e0 < kCh ? p.dim - e0 : kCh);
  const int tid = threadIdx.x;
  // Scan role: channel c, states n0 … n0 + kNT − 1.
  const int c = tid / kSplit, sg = tid % kSplit, n0 = sg * kNT;
  const bool e_ok = c < rows;
  // Prep / epilogue role: channel pc, state pn (fixed per thread).
  const Split split(tid);
  const int pc = split.pc, pt0 = split.pt0, pn = split.pn, pt0n = split.pt0n;
  const bool pc_ok = pc < rows;
  const float bias = (p.delta_bias != nullptr && pc_ok) ? p.delta_bias[e0 + pc] : 0.f;
  const float m = (p.mask != nullptr && pc_ok) ? p.mask[e0 + pc] : 1.f;
  const float D = (p.D != nullptr && pc_ok) ? p.D[e0 + pc] : 0.f;

  Op op[5];
  init_channel_operand(op[0], p.u, p.u_s, b, e0, kCh, rows);
  init_channel_operand(op[1], p.delta, p.delta_s, b, e0, kCh, rows);
  if constexpr (kHasZ) init_channel_operand(op[2], p.z, p.z_s, b, e0, kCh, rows);
  init_state_operand(op[3], p.Bm, p.B_s, b, N);
  init_state_operand(op[4], p.Cm, p.C_s, b, N);
  T* const out_c = static_cast<T*>(p.out) + b * p.out_s.batch + (e0 + pc) * p.out_s.row;  // channel pc

  float A2[kNT], h[kNT];
#pragma unroll
  for (int i = 0; i < kNT; ++i) {
    const int n = n0 + i;
    A2[i] = (e_ok && n < N) ? p.A[(e0 + c) * N + n] * kLog2e : 0.f;
    h[i] = 0.f;
  }
  // kSegmented: this block walks segment seg's tiles from the state the earlier segments leave,
  // h = P_j·h + s_j over j = 0 … seg − 1 (selective_scan_seq_fwd_carry_kernel's carries).
  const int seg = kSegmented ? static_cast<int>(blockIdx.z) : 0;
  if (kSegmented && e_ok)
    for (int64_t j = 0; j < seg; ++j) {
      const int64_t o = (j * p.batch + b) * p.dim * N + (e0 + c) * N;
#pragma unroll
      for (int i = 0; i < kNT; ++i)
        if (n0 + i < N) h[i] = fmaf(p.carry_p[o + n0 + i], h[i], p.carry_g[o + n0 + i]);
    }

  auto raw = [&](int st, int k) { return sm.tiles.at(st, k); };
  // Every operand this call reads is staged (the model's layouts are): the tile loops then take
  // the branch-free element access.
  const bool all_staged =
      op[0].staged() && op[1].staged() && (!kHasZ || op[2].staged()) && op[3].staged() && op[4].staged();
  auto stage = [&](int64_t tile, int st) {
    sm.tiles.template stage<kThreads>(op, st, tile * kT, p.len, kHasZ ? -1 : 2);
  };

  const int64_t n_tiles = (p.len + kT - 1) / kT;
  // kSegmented: segment seg's tiles [tile_begin, tile_end), never empty; else all tiles.
  const int64_t tile_begin = kSegmented ? seg * p.segment_tiles : 0;
  const int64_t tile_end =
      !kSegmented ? n_tiles : tile_begin + p.segment_tiles < n_tiles ? tile_begin + p.segment_tiles : n_tiles;
  stage(tile_begin, static_cast<int>(tile_begin & 1));
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int st = static_cast<int>(tile & 1);
    const int64_t t0 = tile * kT;
    cp_async_wait_all();
    __syncthreads();  // this tile is staged; the previous epilogue is done with the fp32 arrays
    if (tile + 1 < tile_end) stage(tile + 1, st ^ 1);

    // Prep: once per (t, channel) and per (t, state).
    const int tvalid = p.len - t0 < kT ? static_cast<int>(p.len - t0) : kT;  // steps inside the sequence
    with_staged(all_staged, [&](auto staged_tag) {
      constexpr bool kS = decltype(staged_tag)::value;
#pragma unroll 4
      for (int j = 0; j < kItemsCh; ++j) {
        const int t = pt0 + j * kPrepStride, i = t * kCh + pc;
        const bool ok = pc_ok && t < tvalid;
        float x = op[1].template at<kS>(raw(st, 1), pc, t, t0, p.len) + bias;
        if constexpr (kSoftplus) x = softplus_f(x);
        const float dt = ok ? x : 0.f;  // Δ = 0 past the end leaves the state unchanged
        const float uu = op[0].template at<kS>(raw(st, 0), pc, t, t0, p.len) * m;
        sm.dt[i] = dt;
        sm.dtu_y[i] = dt * uu;
        sm.u[i] = uu;
        if constexpr (kHasZ) {
          const float zz = op[2].template at<kS>(raw(st, 2), pc, t, t0, p.len);
          sm.gz[i] = zz * sigmoid_f(zz);
        }
      }
#pragma unroll 4
      for (int j = 0; j < kItemsN; ++j) {
        const int t = pt0n + j * kPrepStrideN, i = t * kMaxN + pn;
        sm.B[i] = pn < N ? op[3].template at<kS>(raw(st, 3), pn, t, t0, p.len) : 0.f;
        sm.C[i] = pn < N ? op[4].template at<kS>(raw(st, 4), pn, t, t0, p.len) : 0.f;
      }
    });
    __syncthreads();

    // Scan: kNT independent chains per lane; the state before step t goes out every kEvery steps.
    // Per group of kSplit steps the channel's lanes reduce-scatter their y partials and lane sg
    // stores y of step g·kSplit + sg over Δ·u' (read by then: the shuffles sync the lanes). One
    // shared store per group instead of one per step keeps the next steps' loads from waiting.
    for (int ts = 0; ts < kT; ts += kEvery) {
      if (p.states != nullptr && e_ok && t0 + ts < p.len)
        store_states(p.states + ((b * p.dim + e0 + c) * p.n_chunks + tile * (kT / kEvery) + ts / kEvery) * N, h, n0, N);
#pragma unroll 2
      for (int g = ts / kSplit; g < (ts + kEvery) / kSplit; ++g) {
        float yp[kSplit];
#pragma unroll
        for (int q = 0; q < kSplit; ++q) {
          const int t = g * kSplit + q;
          const float dt = sm.dt[t * kCh + c];
          const float dtu = sm.dtu_y[t * kCh + c];
          float Bv[kNT], Cv[kNT];
          load_f4(sm.B + t * kMaxN + n0, Bv);
          load_f4(sm.C + t * kMaxN + n0, Cv);
          float y = 0.f;
#pragma unroll
          for (int i = 0; i < kNT; ++i) {
            const float a = exp2f(dt * A2[i]);
            h[i] = fmaf(a, h[i], dtu * Bv[i]);
            y = fmaf(Cv[i], h[i], y);
          }
          yp[q] = y;
        }
        reduce_scatter_low<kSplit>(yp, tid % 32);
        sm.dtu_y[(g * kSplit + sg) * kCh + c] = yp[0];
      }
    }
    __syncthreads();

    // Epilogue: gate and store (channel pc; consecutive threads → consecutive channels).
    if (pc_ok) {
      T* const out_t = opaque(out_c + (t0 + pt0) * p.out_s.time);
      const int step = kPrepStride * static_cast<int>(p.out_s.time);  // the host checks that it fits
#pragma unroll
      for (int j = 0; j < kItemsCh; ++j) {
        const int t = pt0 + j * kPrepStride, i = t * kCh + pc;
        float o = sm.dtu_y[i] + D * sm.u[i];
        if constexpr (kHasZ) o *= sm.gz[i];
        if (t < tvalid) out_t[j * step] = from_float<T>(o);
      }
    }
  }

  if (p.last_state != nullptr && e_ok && (!kSegmented || seg + 1 == p.segments))
    store_states(p.last_state + (b * p.dim + e0 + c) * N, h, n0, N);
}

// [Note: time-segmented forward] The forward's recurrence h_t = exp(Δ_t A)·h_{t−1} + Δ_t·u'_t·B_t is
// affine in the state entering a run of steps: from 0 segment k leaves s_k, from h it leaves
// P_k·h + s_k, P_k = Π exp(Δ_t A) over the segment. This kernel forms (s_k, P_k) for every segment
// but the last (one exponential and two FMAs per (t, n)); the forward kernel then runs the segments
// side by side (blockIdx.z), each from h = P_j·h + s_j composed over the earlier ones, storing its
// tiles' outputs and saved states, and the last segment the final state. The values are the one
// walk's up to the order of fp32 operations in the carries. For the small B·E where each block's
// walk over L is the whole time (kStateSequentialEightLanes). Written after the thirteenth session's
// device time: compiled, not yet run on a GPU. One thread per (e, n) of batch row blockIdx.y and
// segment blockIdx.z.
template <typename T, class Flags>
__global__ void __launch_bounds__(kCarryThreads) selective_scan_seq_fwd_carry_kernel(SelectiveScanParams p) {
  constexpr bool kSoftplus = Flags::kSoftplus;
  const int N = static_cast<int>(p.dstate);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // e·N + n
  if (i >= p.dim * N) return;
  const int64_t e = i / N, b = blockIdx.y, k = blockIdx.z;
  const int n = static_cast<int>(i % N);
  const int64_t per = p.segment_tiles * kSeqChunk;
  const int64_t t_begin = k * per, t_end = t_begin + per < p.len ? t_begin + per : p.len;
  const float A2 = p.A[e * N + n] * kLog2e;
  const float bias = p.delta_bias != nullptr ? p.delta_bias[e] : 0.f;
  const float m = p.mask != nullptr ? p.mask[e] : 1.f;
  const T* const dl = static_cast<const T*>(p.delta) + b * p.delta_s.batch + e * p.delta_s.row;
  const T* const ug = static_cast<const T*>(p.u) + b * p.u_s.batch + e * p.u_s.row;
  const T* const Bg = static_cast<const T*>(p.Bm) + b * p.B_s.batch + n * p.B_s.row;
  float h = 0.f, P = 1.f;
#pragma unroll 4
  for (int64_t t = t_begin; t < t_end; ++t) {
    float x = to_float(dl[t * p.delta_s.time]) + bias;  // Δ, as the forward's prep forms it
    if constexpr (kSoftplus) x = softplus_f(x);
    const float uu = to_float(ug[t * p.u_s.time]) * m;
    const float a = exp2f(x * A2);
    h = fmaf(a, h, x * uu * to_float(Bg[t * p.B_s.time]));
    P *= a;
  }
  const int64_t o = (k * p.batch + b) * p.dim * N + i;
  p.carry_g[o] = h;
  p.carry_p[o] = P;
}

// Flags: ScanFlags (selective_scan_common.cuh); kEvery: steps between the saved states.
template <class Tr, typename T, class Flags, int kEvery>
void selective_scan_seq_fwd_run(const SelectiveScanParams& p) {
  size_t smem = 0;
  SeqFwdSmem<Tr, T>::carve(nullptr, static_cast<int>(p.dstate), &smem);
  // Time segments: the eight-lane algorithm's only (scan_algorithm_takes_time_segments).
  constexpr bool kCanSegment = std::is_same_v<Tr, SeqEight>;
  check_time_segments(p, kCanSegment);
  const dim3 grid(static_cast<unsigned>((p.dim + Tr::kCh - 1) / Tr::kCh), static_cast<unsigned>(p.batch),
                  static_cast<unsigned>(p.segments));
  if constexpr (kCanSegment) {
    if (p.segments > 1) {
      selective_scan_seq_fwd_carry_kernel<T, Flags><<<time_segment_carry_grid(p), kCarryThreads, 0, p.stream>>>(p);
      MCD_CUDA_CHECK(cudaGetLastError());
      launch_with_smem(&selective_scan_seq_fwd_kernel<Tr, T, Flags, kEvery, true>, grid, Tr::kThreads, smem, p.stream,
                       p);
      return;
    }
  }
  launch_with_smem(&selective_scan_seq_fwd_kernel<Tr, T, Flags, kEvery>, grid, Tr::kThreads, smem, p.stream, p);
}

}  // namespace mcd::ops::cuda
