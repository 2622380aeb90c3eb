// State-sequential selective-scan forward (ScanAlgorithm::kStateSequential*; see selective_scan_seq.cuh and
// [Note: state-sequential scan] in docs/PERF_NOTES.md). Per tile of kSeqChunk steps:
//   stage (cp.async, one tile ahead) → prep (softplus(Δ + bias), Δ·u', u', SiLU(z) into fp32
//   shared arrays, once per (t, e)) → scan (each lane: kNT states, sequential in t, y partials
//   summed over the kSplit lanes of the channel) → epilogue (out = (y + D·u')·SiLU(z), stored).
// Saves the state every kEvery steps (the backward's checkpoints: at every tile start, or with
// kEvery = kSeqSub at every backward sub-tile start, kStateSequentialDense) and optionally the last one.
#pragma once

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

// 128-thread blocks: four per SM (≤ 128 registers), so 8 × 2048 channels run in one wave; the lab's
// 64-thread blocks of four-lane channels (scan_lab version 58) eight per SM, the same registers.
template <class Tr>
constexpr int seq_fwd_min_blocks() {
  return Tr::kThreads == 128 ? 4 : (Tr::kThreads == 64 && Tr::kSplit == 4) ? 8 : 1;
}
template <class Tr, typename T, class Flags, int kEvery>
__global__ void __launch_bounds__(Tr::kThreads, seq_fwd_min_blocks<Tr>()) selective_scan_seq_fwd_kernel(SelectiveScanParams p) {
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

  auto raw = [&](int st, int k) { return sm.tiles.at(st, k); };
  // Every operand this call reads is staged (the model's layouts are): the tile loops then take
  // the branch-free element access.
  const bool all_staged =
      op[0].staged() && op[1].staged() && (!kHasZ || op[2].staged()) && op[3].staged() && op[4].staged();
  auto stage = [&](int64_t tile, int st) {
    sm.tiles.template stage<kThreads>(op, st, tile * kT, p.len, kHasZ ? -1 : 2);
  };

  const int64_t n_tiles = (p.len + kT - 1) / kT;
  stage(0, 0);
  for (int64_t tile = 0; tile < n_tiles; ++tile) {
    const int st = static_cast<int>(tile & 1);
    const int64_t t0 = tile * kT;
    cp_async_wait_all();
    __syncthreads();  // this tile is staged; the previous epilogue is done with the fp32 arrays
    if (tile + 1 < n_tiles) stage(tile + 1, st ^ 1);

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

  if (p.last_state != nullptr && e_ok) store_states(p.last_state + (b * p.dim + e0 + c) * N, h, n0, N);
}

// Flags: ScanFlags (selective_scan_common.cuh); kEvery: steps between the saved states.
template <class Tr, typename T, class Flags, int kEvery>
void selective_scan_seq_fwd_run(const SelectiveScanParams& p) {
  size_t smem = 0;
  SeqFwdSmem<Tr, T>::carve(nullptr, static_cast<int>(p.dstate), &smem);
  const dim3 grid(static_cast<unsigned>((p.dim + Tr::kCh - 1) / Tr::kCh), static_cast<unsigned>(p.batch));
  launch_with_smem(&selective_scan_seq_fwd_kernel<Tr, T, Flags, kEvery>, grid, Tr::kThreads, smem, p.stream, p);
}

}  // namespace mcd::ops::cuda
