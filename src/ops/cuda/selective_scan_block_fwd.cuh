// The block forward of the selective scan (ScanAlgorithm::kBlockForward): inference at small B·E
// (a prefill at B = 1), where the other algorithms give each channel a warp or less and leave
// most of the GPU idle (130M's E = 1536 channels: ≤ 6 warps per SM, ~380 µs at (1, 4096, 1536)).
// Here each channel gets kWarps warps that split its time: thread j of a channel owns the kItems
// consecutive steps j·kItems … of a kWarps·32·kItems-step chunk. Per state n a thread folds its
// items into the affine map h ↦ P·h + S, a shuffle scan composes the lanes of a warp, and (for
// kWarps > 1) one block barrier per state exchanges the warps' totals; every warp of a channel
// then holds the same chunk-start states (lane n: state n), so no thread waits on another's carry.
// One exponential per (step, state), as the sequential walk, and one per (thread, state) for the
// thread's decay exp2(A·ΣΔ). Time-contiguous operands (the layout the
// model's channel-major prefill produces) are read with 16-byte vector loads; any other layout
// takes element loads (correct, slow). Given p.states it also stores the states at every kScanChunk-th
// step, as the time-parallel forward saves them for its backward (tested; no production path pairs
// them yet: the training mixer's channel-last operands would take the element loads).
// Semantics: selective_scan_fwd (scan_params.h): Δ = softplus(δ + bias) (or δ + bias),
// u' = mask⊙u, h_t = exp(Δ_t A)⊙h_{t−1} + Δ_t B_t u'_t, y_t = C_t·h_t + D u'_t, out = y⊙SiLU(z).
#pragma once

#include <cstdint>
#include <type_traits>

#include "ops/cuda/block_fwd_stage_plan.h"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/scan_params.h"
#include "ops/cuda/selective_scan_common.cuh"

namespace mcd::ops::cuda {

// kWarps warps per channel, kItems steps per thread, kChannels channels per block. kStates states
// go through each pass together (their independent chains interleaved, one barrier for all of
// them): more instructions in flight per warp at the same occupancy (the one-state kernel was
// latency-bound: IPC ≈ 1.1 of 4). kRecompute: the second pass forms exp2(A·Δ) and Δ·u·B again
// instead of keeping them (registers for the interleave). (A sixth-session variant that loaded the
// next state's B/C ahead is gone: slower than two states at a time; PERF_NOTES keeps its timings.)
// kStageBC: the block copies each chunk's B and C rows, every state, into shared memory with
// cp.async one chunk ahead (two buffers), and its channels read them there: B and C depend on
// (sequence, step) only, and read from global memory inside the state loop they were the kernel's
// largest stall (ncu, tenth session: a quarter of the warp samples waiting on global loads). Vector
// (time-contiguous) layouts only; the element-load kernel reads global memory as before.
// kRollStates: the loop over the state groups is not unrolled (one group's code, run ⌈N / kStates⌉
// times, instead of kScanBlockMaxState / kStates copies): unrolled it is most of the kernel's code, and
// ncu put 11 % of version 37's warp samples on instruction-cache misses (tenth session). The staged
// configurations below that fit one wave roll it (lab versions 59 and 65); the others unroll (their PTX
// is the same as before this option existed: the rolled bound folds away).
// kStageFixedColumn (with kStageBC): each thread stages one fixed 16-byte column of the chunk's rows, B's and C's
// row n together, walking the rows by pointer increments with the bounds worked out once per chunk
// (stage_bc_chunk_fixed_column); otherwise every copied vector works out its row, column and bounds afresh
// (stage_bc_chunk). ncu (thirty-second session, H100, version 59 at (1, 4096, 1536)): the latter's copy loop
// issued ~17 % of the kernel's 56.7 M warp instructions, ~50 per 16-byte copy.
// The library's three staged configurations all take it since the thirty-third session; the per-copy staging
// stays for the lab's versions (dev/scan_lab: 45–67 and staging_pair.cu's reference), whose timings it reproduces.
// kMinBlocks: blocks per SM the compiler must fit by registers (__launch_bounds__' second argument), so a
// configuration whose blocks would take a second wave at some width can be held to one (dev/scan_lab/
// narrow_variants.cu). 0, every library configuration: the one-argument bound, whose PTX it leaves identical (an
// explicit 1 is not the same: ptxas then gave the same kernels 2–60 more registers, thirty-eighth session).
template <int kWarps_, int kItems_, int kChannels_, int kStates_ = 1, bool kRecompute_ = false, bool kStageBC_ = false,
          bool kRollStates_ = false, bool kStageFixedColumn_ = false, int kMinBlocks_ = 0>
struct BlockFwdTraits {
  static constexpr int kWarps = kWarps_, kItems = kItems_, kChannels = kChannels_, kMinBlocks = kMinBlocks_;
  static constexpr int kStates = kStates_;
  static constexpr bool kRecompute = kRecompute_, kStageBC = kStageBC_, kRollStates = kRollStates_;
  static constexpr bool kStageFixedColumn = kStageFixedColumn_;
  static_assert(kScanBlockMaxState % kStates_ == 0, "states in whole groups");
  static constexpr int kChannelThreads = kWarps * 32;
  static constexpr int kThreads = kChannelThreads * kChannels;
  static constexpr int kChunk = kChannelThreads * kItems;  // steps per channel per chunk
  // Shared memory of the staged kernel for T: two buffers of B and C, kScanBlockMaxState rows each.
  template <typename T>
  static constexpr size_t stage_bytes() { return kStageBC ? 2 * 2 * kScanBlockMaxState * kChunk * sizeof(T) : 0; }
};

// The library's configurations (dev/scan_lab times the others; lab, H200, bf16, L = 4096, µs):
// - BlockFwdOneWave, version 37: 1 warp × 16 steps per channel, two channels per block, two states at
//   a time with the second pass recomputing. Fastest while all its blocks run at once (E = 1536: 105.5
//   against 115.4 for 34), slow when they take a second wave (E = 2048, 1.3 waves: 187.0 against 153.4).
// - BlockFwdManyWaves, version 34: 4 warps × 8 steps, one channel per block, two states kept; small
//   blocks, so the waves' tail is short. fp32 always (E = 1536: 139.6 against 156.9 for 37).
// [measured: docs/PERF_NOTES.md, "Eighth session"]
// - BlockFwdStaged, version 59: BlockFwdOneWave's threads, four channels per block sharing B and C
//   staged in shared memory (kStageBC; 64 KB per block in bf16), the state loop rolled;
//   ScanAlgorithm::kBlockForwardStaged, when all its blocks fit at once. Rolled against unrolled (45):
//   E = 1536 92.9 against 101.6 µs (lab, H200, bf16, twenty-fifth session).
// - BlockFwdStagedEight, version 65: the same thread with eight channels per block (two 256-thread
//   blocks per SM by registers), rolled; where BlockFwdStaged's blocks do not fit at once but these do:
//   E = 2048 (256 blocks) 105.0 against 131.1 for 48 (lab, H200, bf16, twenty-fifth session); at 1536
//   (192 blocks, 1.5 per SM) 104.0 against 59's 92.9, so it is the second choice.
// - BlockFwdStagedWide, version 48: 1 warp × 8 steps per channel, eight channels per block sharing
//   32 KB of staged B and C; kBlockForwardStaged where neither fits at once
//   (E = 2048: 131.0 against 152.2 for 34 and 158.7 for 45; E = 1536: 131.6 against 101.1 for 45;
//   lab, H200, bf16, "Eleventh session"; rolled, 60, the same: 131.5).
// The three staged configurations stage by fixed columns (kStageFixedColumn; lab versions 79, 80, 81) since
// the thirty-third session: dev/scan_lab/staging_pair.cu, H100, bf16, L = 4096, two rounds, outputs bit for bit
// equal to the per-copy staging's: E = 1536 59 94.0 → 84.4 µs, 65 106.1 → 99.4, 48 131.9 → 118.6; E = 2048 65
// 105.6 → 99.8; E = 1152 59 92.3 → 82.1 [docs/PERF_NOTES.md, "Thirty-third session"].
using BlockFwdOneWave = BlockFwdTraits<1, 16, 2, 2, true>;
using BlockFwdManyWaves = BlockFwdTraits<4, 8, 1, 2, false>;
using BlockFwdStaged = BlockFwdTraits<1, 16, 4, 2, true, true, true, true>;
using BlockFwdStagedEight = BlockFwdTraits<1, 16, 8, 2, true, true, true, true>;
using BlockFwdStagedWide = BlockFwdTraits<1, 8, 8, 2, true, true, false, true>;
// - BlockFwdEightWarps: 8 warps × 8 steps per channel, one channel per block, one state at a time, held to 3 blocks per
//   SM by registers (kMinBlocks: 80 registers); below kBlockFwdStagedMinChannels where all its blocks fit at once,
//   else BlockFwdManyWaves. E = 384 (130M pruned by 75 %, one wave on a 132-SM card) 41.6 / 41.8 µs against 46.3 /
//   45.9 for BlockFwdManyWaves; at E = 512 (1.3 waves) 67.9 / 68.7 against 48.4 / 48.9 (dev/scan_lab/
//   narrow_variants.cu, H100, bf16, L = 4096, two rounds, thirty-ninth session). In the model (fortieth session, one
//   H100 lease): 130M pruned by 75 %, prefill 1 × 4096 as a graph, 2.032 → 1.937 / 1.937 ms, its ratio to dense
//   0.497 → 0.473 / 0.473 (docs/results/2026-12-07i_eight_warps_at_384/).
using BlockFwdEightWarps = BlockFwdTraits<8, 8, 1, 1, false, false, false, false, 3>;

// kItems consecutive elements of one row, kept as loaded: 16-byte vectors when kVec (time stride
// 1, 16-byte aligned), else floats. Elements at or past `avail` read as 0.
template <typename T, int kItems, bool kVec>
struct RowItems {
  static constexpr int kPer = 16 / static_cast<int>(sizeof(T));
  static_assert(!kVec || kItems % kPer == 0, "vector items: whole 16-byte vectors");
  static constexpr int kVecs = kVec ? kItems / kPer : 1;
  uint4 raw[kVecs];
  float f[kVec ? 1 : kItems];

  __device__ __forceinline__ void load(const T* __restrict__ g, int64_t stride, int avail) {
    if constexpr (kVec) {
      if (avail >= kItems) {
#pragma unroll
        for (int q = 0; q < kVecs; ++q) raw[q] = __ldg(reinterpret_cast<const uint4*>(g) + q);
      } else {  // the row's tail: element loads packed into the vectors
        T tmp[kItems];
#pragma unroll
        for (int i = 0; i < kItems; ++i) tmp[i] = i < avail ? g[i] : from_float<T>(0.f);
        memcpy(raw, tmp, sizeof(raw));
      }
    } else {
#pragma unroll
      for (int i = 0; i < kItems; ++i) f[i] = i < avail ? to_float(g[i * stride]) : 0.f;
    }
  }
  // The same items from a staged shared-memory row (zero past the end already).
  __device__ __forceinline__ void load_shared(const T* s) {
    static_assert(kVec, "staged rows are read as vectors");
#pragma unroll
    for (int q = 0; q < kVecs; ++q) raw[q] = reinterpret_cast<const uint4*>(s)[q];
  }
  __device__ __forceinline__ float operator[](int i) const {
    if constexpr (kVec) return vec_elem<T>(raw[i / kPer], i % kPer);
    else return f[i];
  }
};

template <int kItems, bool kVec, typename T>
__device__ __forceinline__ void store_row_items(T* __restrict__ g, int64_t stride, int avail, const float (&v)[kItems]) {
  if constexpr (kVec) {
    if (avail >= kItems) {
      constexpr int kPer = 16 / static_cast<int>(sizeof(T));
#pragma unroll
      for (int q = 0; q < kItems / kPer; ++q) {
        T tmp[kPer];
#pragma unroll
        for (int k = 0; k < kPer; ++k) tmp[k] = from_float<T>(v[q * kPer + k]);
        uint4 r;
        memcpy(&r, tmp, sizeof(r));
        reinterpret_cast<uint4*>(g)[q] = r;
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i)
    if (i < avail) g[i * stride] = from_float<T>(v[i]);
}

// The states, kStates at a time. Per group, pass 1 folds this thread's items into h ↦ P·h + S for
// each state (P = exp2(A·ΣΔ): one exponential instead of kItems products), a shuffle scan over the
// lanes and (kWarps > 1) one barrier for the warps' totals give the state before this thread, and
// pass 2 walks the items adding C·h to y; the group's chains are interleaved item by item. hc_lane
// (lane n: state n) carries the chunk-start states. st (null: none): where this thread stores the
// states before its first item (N floats). A group's states past N (N not a multiple of
// kStates) run on a copy of the last state's rows and are dropped: they add nothing to y and set no
// carry. Staged (Tr::kStageBC and kVec): Bp and Cp point at this thread's first item in the chunk's
// shared rows (row pitch Tr::kChunk), and C is read only for pass 2, so it holds no registers before.
template <class Tr, typename T, bool kVec, int kMapSlots>
__device__ __forceinline__ void scan_state_groups(int N, const T* Bp, const T* Cp, const Strides3& B_s,
                                                  const Strides3& C_s, int avail_bc, const float* A2s,
                                                  float (&s_map)[2][2][kMapSlots], int c, int warp, int lane,
                                                  int& phase, const float (&dt)[Tr::kItems],
                                                  const float (&dtu)[Tr::kItems], float dt_sum,
                                                  float (&y)[Tr::kItems], float& hc_lane, float* __restrict__ st) {
  constexpr int kItems = Tr::kItems, kWarps = Tr::kWarps, kS = Tr::kStates, kCh = Tr::kChannels;
  constexpr int kKeep = Tr::kRecompute ? 1 : kItems;  // items whose a and bx pass 1 keeps
  constexpr bool kStaged = Tr::kStageBC && kVec;
  using Row = RowItems<T, kItems, kVec>;
  // Tr::kRollStates: a bound only known at run time, which `#pragma unroll` (no count) leaves rolled.
  const int n_end = Tr::kRollStates ? N : kScanBlockMaxState;
#pragma unroll
  for (int n0 = 0; n0 < n_end; n0 += kS) {
    if (n0 >= N) continue;  // N is uniform: every thread leaves together
    Row Bc[kS], Cc[kS];
    float A2[kS], P[kS], S[kS];
    float a[kS][kKeep], bx[kS][kKeep];
#pragma unroll
    for (int j = 0; j < kS; ++j) {
      const int n = n0 + j < N ? n0 + j : N - 1;
      if constexpr (kStaged) {
        Bc[j].load_shared(Bp + n * Tr::kChunk);
      } else {
        Bc[j].load(Bp + n * B_s.row, B_s.time, avail_bc);
        Cc[j].load(Cp + n * C_s.row, C_s.time, avail_bc);
      }
      A2[j] = A2s[n];
      P[j] = exp2f(A2[j] * dt_sum);
      S[j] = 0.f;
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i)
#pragma unroll
      for (int j = 0; j < kS; ++j) {
        const float ai = exp2f(dt[i] * A2[j]), bi = dtu[i] * Bc[j][i];
        S[j] = fmaf(ai, S[j], bi);
        if constexpr (!Tr::kRecompute) a[j][i] = ai, bx[j][i] = bi;
      }
#pragma unroll
    for (int d = 1; d < 32; d *= 2)
#pragma unroll
      for (int j = 0; j < kS; ++j) {
        const float Pu = __shfl_up_sync(kFullMask, P[j], d), Su = __shfl_up_sync(kFullMask, S[j], d);
        if (lane >= d) {
          S[j] = fmaf(P[j], Su, S[j]);
          P[j] *= Pu;
        }
      }
    float h[kS];
    const int q = phase;
    if constexpr (kWarps > 1) {
      phase ^= 1;
      if (lane == 31)
#pragma unroll
        for (int j = 0; j < kS; ++j) {
          s_map[q][0][(j * kCh + c) * kWarps + warp] = P[j];
          s_map[q][1][(j * kCh + c) * kWarps + warp] = S[j];
        }
      __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < kS; ++j) {
      float Pe = __shfl_up_sync(kFullMask, P[j], 1), Se = __shfl_up_sync(kFullMask, S[j], 1);
      if (lane == 0) Pe = 1.f, Se = 0.f;
      const float h0 = __shfl_sync(kFullMask, hc_lane, n0 + j < N ? n0 + j : 0);
      float h_warp = h0, h_end;
      if constexpr (kWarps == 1) {
        h_end = fmaf(__shfl_sync(kFullMask, P[j], 31), h0, __shfl_sync(kFullMask, S[j], 31));
      } else {
        h_end = h0;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
          h_end = fmaf(s_map[q][0][(j * kCh + c) * kWarps + w], h_end, s_map[q][1][(j * kCh + c) * kWarps + w]);
          if (w + 1 == warp) h_warp = h_end;
        }
      }
      if (n0 + j < N && lane == n0 + j) hc_lane = h_end;
      h[j] = fmaf(Pe, h_warp, Se);
      if (st != nullptr && n0 + j < N) st[n0 + j] = h[j];
      if constexpr (kStaged) Cc[j].load_shared(Cp + (n0 + j < N ? n0 + j : N - 1) * Tr::kChunk);
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i)
#pragma unroll
      for (int j = 0; j < kS; ++j) {
        if constexpr (Tr::kRecompute) h[j] = fmaf(exp2f(dt[i] * A2[j]), h[j], dtu[i] * Bc[j][i]);
        else h[j] = fmaf(a[j][i], h[j], bx[j][i]);
        if (n0 + j < N) y[i] = fmaf(Cc[j][i], h[j], y[i]);
      }
  }
}

// Copies steps [t0, t0 + kChunk) of B's and C's rows 0..N-1 (time-contiguous, 16-byte aligned) into
// dst = [B, C][kScanBlockMaxState][kChunk] with cp.async, the block's threads striding 16-byte
// pieces; steps past len are zero-filled.
template <class Tr, typename T>
__device__ __forceinline__ void stage_bc_chunk(T* dst, const T* B_g, const T* C_g, const Strides3& B_s,
                                               const Strides3& C_s, int N, int64_t t0, int64_t len) {
  constexpr int kPer = 16 / static_cast<int>(sizeof(T)), kRowVecs = Tr::kChunk / kPer;
  static_assert(Tr::kChunk % kPer == 0, "whole vectors per staged row");
  for (int i = threadIdx.x; i < 2 * N * kRowVecs; i += Tr::kThreads) {
    const int row = i / kRowVecs, v = i - row * kRowVecs;  // row: B's states, then C's
    const bool is_b = row < N;
    const int n = is_b ? row : row - N;
    const T* src = is_b ? B_g + n * B_s.row : C_g + n * C_s.row;
    const int64_t t = t0 + int64_t(v) * kPer;
    const int bytes = staged_vector_bytes(len - t, kPer, static_cast<int>(sizeof(T)));
    cp_async16(dst + ((is_b ? 0 : kScanBlockMaxState) + n) * Tr::kChunk + v * kPer, bytes > 0 ? src + t : src, bytes);
  }
}

// stage_bc_chunk's copies with each thread keeping column v = threadIdx.x mod (kChunk / kPer) and taking rows
// n0 = threadIdx.x div (kChunk / kPer), n0 + kStep, … of both B and C (kStep = the threads per column): one
// row's source and destination follow the last's by constant strides, and the column's bounds (the same for
// every row) are worked out once.
template <class Tr, typename T>
__device__ __forceinline__ void stage_bc_chunk_fixed_column(T* dst, const T* B_g, const T* C_g, const Strides3& B_s,
                                                            const Strides3& C_s, int N, int64_t t0, int64_t len) {
  constexpr FixedColumnStage kPlan(Tr::kChunk, Tr::kThreads, static_cast<int>(sizeof(T)));
  constexpr int kPer = kPlan.per, kStep = kPlan.step;
  static_assert(Tr::kChunk % kPer == 0 && Tr::kThreads % kPlan.row_vecs == 0, "whole columns, every thread one of them");
  const int v = kPlan.column(static_cast<int>(threadIdx.x)), n0 = kPlan.first_row(static_cast<int>(threadIdx.x));
  const int bytes = kPlan.bytes(v, t0, len, static_cast<int>(sizeof(T)));
  const int64_t off = bytes > 0 ? t0 + int64_t(v) * kPer : 0;  // (nothing is read at 0 bytes; the address stays in the row)
  const T* b = B_g + n0 * B_s.row + off;
  const T* c = C_g + n0 * C_s.row + off;
  unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst + n0 * Tr::kChunk + v * kPer));
  constexpr unsigned kCOffset = kScanBlockMaxState * Tr::kChunk * sizeof(T), kRowBytes = kStep * Tr::kChunk * sizeof(T);
#pragma unroll
  for (int j = 0; j < kPlan.max_copies(kScanBlockMaxState); ++j) {
    if (n0 + j * kStep >= N) break;
    cp_async16(d, b, bytes);
    cp_async16(d + kCOffset, c, bytes);
    b += kStep * B_s.row;
    c += kStep * C_s.row;
    d += kRowBytes;
  }
}

// The chunk's B and C rows into shared memory by Tr's staging (kStageFixedColumn or not).
template <class Tr, typename T>
__device__ __forceinline__ void stage_bc(T* dst, const T* B_g, const T* C_g, const Strides3& B_s, const Strides3& C_s,
                                         int N, int64_t t0, int64_t len) {
  if constexpr (Tr::kStageFixedColumn) stage_bc_chunk_fixed_column<Tr>(dst, B_g, C_g, B_s, C_s, N, t0, len);
  else stage_bc_chunk<Tr>(dst, B_g, C_g, B_s, C_s, N, t0, len);
}

// kSaveStates: also store p.states (a separate instantiation, so the inference kernels keep their
// registers: the state pointer cost the element-load kernel a 52-byte spill).
template <class Tr, typename T, class Flags, bool kVec, bool kSaveStates = false>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks) selective_scan_block_fwd_kernel(SelectiveScanParams p) {
  constexpr bool kHasZ = Flags::kHasZ, kSoftplus = Flags::kSoftplus;
  constexpr int kItems = Tr::kItems, kWarps = Tr::kWarps, kCh = Tr::kChannels;
  using Row = RowItems<T, kItems, kVec>;
  // Each warp's (P, S) for the current state (group), in two buffers that alternate with every state
  // (group), so one barrier each suffices: a buffer is written again only after the next barrier.
  __shared__ float s_map[2][2][Tr::kStates * kCh * kWarps];
  __shared__ float s_A2[kCh][kScanBlockMaxState];  // A·log2(e)
  // Staged B and C (Tr::kStageBC): [buffer][B, C][state][step of the chunk], zero past len.
  constexpr bool kStaged = Tr::kStageBC && kVec;
  extern __shared__ __align__(16) unsigned char s_stage_raw[];
  T* const s_stage = reinterpret_cast<T*>(s_stage_raw);
  constexpr int kStageBuf = 2 * kScanBlockMaxState * Tr::kChunk;  // elements per buffer
  const int N = static_cast<int>(p.dstate);
  const int c = threadIdx.x / Tr::kChannelThreads, tid = threadIdx.x % Tr::kChannelThreads;
  const int lane = tid % 32, warp = tid / 32;
  const int64_t e = int64_t(blockIdx.x) * kCh + c, b = blockIdx.y;
  const bool e_ok = e < p.dim;  // past the last channel: walks zeros, writes nothing (barriers are shared)
  const int64_t e_row = e_ok ? e : 0;  // keeps every formed address inside the tensors
  for (int i = threadIdx.x; i < kCh * kScanBlockMaxState; i += Tr::kThreads) {
    const int64_t ee = int64_t(blockIdx.x) * kCh + i / kScanBlockMaxState;
    const int n = i % kScanBlockMaxState;
    s_A2[i / kScanBlockMaxState][n] = ee < p.dim && n < N ? p.A[ee * N + n] * kLog2e : 0.f;
  }
  const auto [D, bias, m] = scan_channel_consts(p, e, e_ok);
  const auto [u_g, dt_g, z_g, B_g, C_g] = scan_input_rows<T, kHasZ>(p, b, e_row);
  T* out_g = static_cast<T*>(p.out) + b * p.out_s.batch + e_row * p.out_s.row;
  __syncthreads();  // s_A2

  // The states at the current chunk's start, the same in every warp of the channel, spread over
  // the lanes: lane n holds state n (N ≤ 16 < 32), read by a shuffle (fewer registers than an array).
  float hc_lane = 0.f;
  int phase = 0;
  if constexpr (kStaged) {
    stage_bc<Tr>(s_stage, B_g, C_g, p.B_s, p.C_s, N, 0, p.len);
    cp_async_commit();
  }

  for (int64_t t0 = 0, chunk = 0; t0 < p.len; t0 += Tr::kChunk, ++chunk) {
    if constexpr (kStaged) {
      __syncthreads();  // every channel is done with the previous chunk, whose buffer the next chunk takes
      if (t0 + Tr::kChunk < p.len)
        stage_bc<Tr>(s_stage + ((chunk + 1) & 1) * kStageBuf, B_g, C_g, p.B_s, p.C_s, N, t0 + Tr::kChunk, p.len);
      cp_async_commit();  // (possibly empty: the group count stays uniform)
      cp_async_wait_group<1>();  // this chunk's copies, issued one chunk ago
      __syncthreads();           // every thread's copies visible
    }
    const int64_t tt = t0 + int64_t(tid) * kItems;  // this thread's first step
    const int64_t left = p.len - tt;
    const int avail_bc = left <= 0 ? 0 : left >= kItems ? kItems : static_cast<int>(left);  // B and C: any channel
    const int avail = e_ok ? avail_bc : 0;
    const int64_t t_safe = avail_bc > 0 ? tt : 0;
    float dt[kItems], dtu[kItems], y[kItems];
    float dt_sum = 0.f;  // this thread's Σ Δ: its items' decay for state n is exp2(A2_n · Σ Δ)
    {
      Row uu, dd;
      uu.load(u_g + t_safe * p.u_s.time, p.u_s.time, avail);
      dd.load(dt_g + t_safe * p.delta_s.time, p.delta_s.time, avail);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        float x = dd[i] + bias;
        if constexpr (kSoftplus) x = softplus_f(x);
        dt[i] = i < avail ? x : 0.f;  // Δ = 0 past the end: the state passes unchanged
        dt_sum += dt[i];
        const float um = uu[i] * m;
        dtu[i] = dt[i] * um;
        y[i] = D * um;
      }
    }
    const T* Bp = B_g + t_safe * p.B_s.time;
    const T* Cp = C_g + t_safe * p.C_s.time;
    if constexpr (kStaged) {
      Bp = s_stage + (chunk & 1) * kStageBuf + tid * kItems;
      Cp = Bp + kScanBlockMaxState * Tr::kChunk;
    }
    // The thread whose items start a kScanChunk-step chunk stores the states before it, when asked:
    // the time-parallel backward's saved states (scan_params.h), so that a training scan could pair
    // this forward with that backward.
    float* st = kSaveStates && e_ok && tt < p.len && tt % kScanChunk == 0
                    ? p.states + ((b * p.dim + e) * p.n_chunks + tt / kScanChunk) * N
                    : nullptr;
    scan_state_groups<Tr, T, kVec>(N, Bp, Cp, p.B_s, p.C_s, avail_bc, s_A2[c], s_map, c, warp, lane, phase, dt, dtu,
                                   dt_sum, y, hc_lane, st);
    if constexpr (kHasZ) {
      Row zz;
      zz.load(z_g + t_safe * p.z_s.time, p.z_s.time, avail);
#pragma unroll
      for (int i = 0; i < kItems; ++i) y[i] *= zz[i] * sigmoid_f(zz[i]);
    }
    store_row_items<kItems, kVec>(out_g + t_safe * p.out_s.time, p.out_s.time, avail, y);
  }
  if (p.last_state != nullptr && warp == 0 && lane < N && e_ok) p.last_state[(b * p.dim + e) * N + lane] = hc_lane;
}

// Whether every (B, E, L) / (B, N, L) operand is time-contiguous with 16-byte aligned rows: the
// vector-load kernel; otherwise the element-load one.
template <typename T>
bool block_fwd_vector_layout(const SelectiveScanParams& p) {
  constexpr int64_t kPer = 16 / sizeof(T);
  auto ok = [&](const void* ptr, const Strides3& s) {
    return ptr == nullptr || (reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && s.time == 1 && s.row % kPer == 0 &&
                              s.batch % kPer == 0);
  };
  return ok(p.u, p.u_s) && ok(p.delta, p.delta_s) && ok(p.z, p.z_s) && ok(p.Bm, p.B_s) && ok(p.Cm, p.C_s) &&
         ok(p.out, p.out_s);
}

// Blocks of Tr::kChannels channels of each sequence.
template <class Tr>
dim3 block_fwd_grid(const SelectiveScanParams& p) {
  return dim3(static_cast<unsigned>((p.dim + Tr::kChannels - 1) / Tr::kChannels), static_cast<unsigned>(p.batch));
}

template <class Tr, typename T, class Flags>
void selective_scan_block_fwd_run(const SelectiveScanParams& p) {
  MCD_CHECK(p.dstate <= kScanBlockMaxState, "selective scan (block forward): N = ", p.dstate, " > ",
            kScanBlockMaxState);
  static_assert(kScanChunk % Tr::kItems == 0, "a chunk start is some thread's first item");
  MCD_CHECK(p.states == nullptr || p.n_chunks == (p.len + kScanChunk - 1) / kScanChunk,
            "selective scan (block forward): states every ", kScanChunk, " steps need n_chunks = ",
            (p.len + kScanChunk - 1) / kScanChunk);
  MCD_CHECK(p.states == nullptr || block_fwd_vector_layout<T>(p),
            "selective scan (block forward): saving states needs time-contiguous, 16-byte aligned rows");
  const dim3 grid = block_fwd_grid<Tr>(p);
  constexpr bool kWholeVectors = Tr::kItems % (16 / static_cast<int>(sizeof(T))) == 0;  // else element loads only
  if constexpr (kWholeVectors) {
    constexpr size_t kSmem = Tr::template stage_bytes<T>();
    if (p.states != nullptr)
      return launch_with_smem(&selective_scan_block_fwd_kernel<Tr, T, Flags, true, true>, grid, Tr::kThreads, kSmem,
                              p.stream, p);
    if (block_fwd_vector_layout<T>(p))
      return launch_with_smem(&selective_scan_block_fwd_kernel<Tr, T, Flags, true>, grid, Tr::kThreads, kSmem,
                              p.stream, p);
  }
  MCD_CHECK(p.states == nullptr, "selective scan (block forward): this configuration has no vector kernel to save states");
  launch_with_smem(&selective_scan_block_fwd_kernel<Tr, T, Flags, false>, grid, Tr::kThreads, 0, p.stream, p);
}

// Whether all of the vector-kernel configuration Cfg's blocks for p are resident on the device at once.
template <class Cfg, typename T, class Flags>
bool vector_blocks_fit_one_wave(const SelectiveScanParams& p) {
  return fits_one_wave<&selective_scan_block_fwd_kernel<Cfg, T, Flags, true>>(
      int64_t(block_fwd_grid<Cfg>(p).x) * p.batch, Cfg::kThreads, Cfg::template stage_bytes<T>());
}

// The block forward of p in the configuration above: 16-bit activations take BlockFwdOneWave when all
// its blocks fit on the device at once (its vector kernel's occupancy), else BlockFwdManyWaves;
// `staged` (ScanAlgorithm::kBlockForwardStaged) takes, for 16-bit vector rows, below kBlockFwdStagedMinChannels
// channels BlockFwdEightWarps where its blocks all fit at once, else BlockFwdManyWaves; from there
// BlockFwdStaged where its blocks all fit at once, else BlockFwdStagedEight where its blocks do, else
// BlockFwdStagedWide.
template <typename T, class Flags>
void selective_scan_block_fwd(const SelectiveScanParams& p, bool staged) {
  if constexpr (sizeof(T) == 2) {
    if (staged && block_fwd_vector_layout<T>(p) && p.states == nullptr) {
      if (p.batch * p.dim < kBlockFwdStagedMinChannels) {
        if (vector_blocks_fit_one_wave<BlockFwdEightWarps, T, Flags>(p))
          return selective_scan_block_fwd_run<BlockFwdEightWarps, T, Flags>(p);
        return selective_scan_block_fwd_run<BlockFwdManyWaves, T, Flags>(p);
      }
      if (vector_blocks_fit_one_wave<BlockFwdStaged, T, Flags>(p))
        return selective_scan_block_fwd_run<BlockFwdStaged, T, Flags>(p);
      if (vector_blocks_fit_one_wave<BlockFwdStagedEight, T, Flags>(p))
        return selective_scan_block_fwd_run<BlockFwdStagedEight, T, Flags>(p);
      return selective_scan_block_fwd_run<BlockFwdStagedWide, T, Flags>(p);
    }
    using One = BlockFwdOneWave;
    const dim3 grid = block_fwd_grid<One>(p);
    if (fits_one_wave<&selective_scan_block_fwd_kernel<One, T, Flags, true>>(int64_t(grid.x) * grid.y, One::kThreads, 0))
      return selective_scan_block_fwd_run<One, T, Flags>(p);
  }
  selective_scan_block_fwd_run<BlockFwdManyWaves, T, Flags>(p);
}

}  // namespace mcd::ops::cuda
