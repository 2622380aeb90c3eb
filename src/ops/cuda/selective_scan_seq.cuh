// The state-sequential selective scan (ScanAlgorithm::kStateSequential*): shared traits, shared-memory
// plan and the double-buffered tile staging of selective_scan_seq_{fwd,bwd}.cuh. See
// [Note: state-sequential scan] in docs/PERF_NOTES.md.
//
// Each thread owns one channel e and kNT of its states and walks time sequentially, so a step is
// kNT independent exp/FMA chains with no cross-lane scan; kSplit adjacent lanes share a channel
// (its N states split among them). Per tile of kSeqChunk timesteps the block stages u, Δ, z (and
// dout) for its kCh channels and B, C with cp.async, one tile ahead of the compute, then a "prep"
// pass turns them into fp32 shared arrays (softplus(Δ + bias), Δ·u', ...) once per (t, e) rather
// than once per lane.
#pragma once

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/scan_params.h"
#include "ops/cuda/selective_scan_common.cuh"  // ScanFlags

namespace mcd::ops::cuda {

template <int kThreads_, int kSplit_, int kNT_>
struct SeqTraits {
  static constexpr int kThreads = kThreads_;  // threads per block
  static constexpr int kSplit = kSplit_;      // lanes per channel
  static constexpr int kNT = kNT_;            // states per lane
  static constexpr int kCh = kThreads / kSplit;
  static constexpr int kT = kSeqChunk;
  static constexpr int kMaxN = kSplit * kNT;  // states a channel can hold
  static constexpr int kWarps = kThreads / 32;
  static_assert(kNT % 2 == 0, "states are read as float4 (or float2)");
  static_assert(32 % kSplit == 0 && kThreads % 32 == 0, "a channel's lanes share one warp");
};

// The production shape: four lanes per channel, four states each, 128 threads = 32 channels.
using SeqQuad = SeqTraits<128, 4, 4>;
// kStateSequentialEightLanes: eight lanes per channel, two states each, 128 threads = 16 channels.
using SeqEight = SeqTraits<128, 8, 2>;
static_assert(SeqEight::kCh == kSeqEightLaneChannels, "the eight-lane blocks are its partial slices");

// How a block's threads split a tile's per-(t, e) and per-(t, n) items in the prep and epilogue:
// each thread keeps one channel pc (kThreads is a multiple of kCh) at steps pt0 + j·kStride, and
// one state pn at steps pt0n + j·kStrideN, so its per-channel constants stay in registers.
template <class Tr>
struct PrepSplit {
  static constexpr int kStride = Tr::kThreads / Tr::kCh, kItems = Tr::kT / kStride;
  static constexpr int kStrideN = Tr::kThreads / Tr::kMaxN, kItemsN = Tr::kT / kStrideN;
  static_assert(Tr::kThreads % Tr::kCh == 0 && Tr::kT % kStride == 0 && Tr::kThreads % Tr::kMaxN == 0 &&
                    Tr::kT % kStrideN == 0,
                "prep items split evenly");
  int pc, pt0, pn, pt0n;
  __device__ explicit PrepSplit(int tid)
      : pc(tid % Tr::kCh), pt0(tid / Tr::kCh), pn(tid % Tr::kMaxN), pt0n(tid / Tr::kMaxN) {}
};

// One strided (rows × time) operand of a block's tile: a row is a channel (or a state), `g`
// points at (row 0, time 0) of this block. How it is staged depends on its strides:
//   kRowFast:  row stride 1 (the model's channel-contiguous views): raw tile [t][rows];
//   kTimeFast: time stride 1 ((B, E, L) contiguous): raw tile [row][kT + pad];
//   kDirect:   anything else, or misaligned: not staged, the prep pass reads global memory.
// Staged tiles hold the raw dtype; entries past the valid rows or past len are zero.
enum class TileMode : int { kDirect, kRowFast, kTimeFast };

template <typename T, int kT>
struct TileOperand {
  static constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16 bytes
  static constexpr int kTPitch = kT + kVec;                      // kTimeFast row pitch
  const T* g = nullptr;
  int64_t s_row = 0, s_time = 0;
  int rows = 0;        // rows of the tile (compile-time channel count or N)
  int rows_valid = 0;  // rows that exist (the last block of channels may be partial)
  TileMode mode = TileMode::kDirect;

  // Elements a staged copy of this operand needs (the larger of the two raw layouts).
  __host__ __device__ static constexpr int64_t staged_elems(int rows) { return int64_t(rows) * kTPitch; }

  __device__ void init(const T* g_, int64_t s_row_, int64_t s_time_, int rows_, int rows_valid_) {
    g = g_;
    s_row = s_row_;
    s_time = s_time_;
    rows = rows_;
    rows_valid = rows_valid_;
    const bool aligned = reinterpret_cast<uintptr_t>(g) % 16 == 0;
    if (aligned && s_row == 1 && (rows * int64_t(sizeof(T))) % 16 == 0 && (s_time * int64_t(sizeof(T))) % 16 == 0)
      mode = TileMode::kRowFast;
    else if (aligned && s_time == 1 && (s_row * int64_t(sizeof(T))) % 16 == 0)
      mode = TileMode::kTimeFast;
    else
      mode = TileMode::kDirect;
  }
  __device__ __forceinline__ bool staged() const { return mode != TileMode::kDirect; }

  // Issues the cp.async copies of tile [t0, t0 + kT) into `raw` (nothing for kDirect). kRows > 0:
  // rows is known to be kRows (a channel tile), so the index split is a shift, not a division.
  template <int kThreads, int kRows = 0>
  __device__ void stage(T* raw, int64_t t0, int64_t len) const {
    if (mode == TileMode::kRowFast) {
      // A compile-time row count makes the split of the copies over the threads compile-time too
      // (state tiles: the usual N = 16 takes that path).
      if constexpr (kRows > 0) stage_row_fast<kThreads, kRows>(raw, t0, len);
      else if (rows == 16) stage_row_fast<kThreads, 16>(raw, t0, len);
      else stage_row_fast<kThreads, 0>(raw, t0, len);
    } else if (mode == TileMode::kTimeFast) {
      constexpr int per_row = kT / kVec;
      for (int i = threadIdx.x; i < per_row * rows; i += kThreads) {
        const int r = i / per_row, c0 = (i % per_row) * kVec;
        const int64_t tt = t0 + c0;
        int64_t bytes = (len - tt) * int64_t(sizeof(T));
        bytes = r < rows_valid ? (bytes < 0 ? 0 : (bytes > 16 ? 16 : bytes)) : 0;
        const T* src = bytes > 0 ? g + r * s_row + tt : g;
        cp_async16(raw + r * kTPitch + c0, src, static_cast<int>(bytes));
      }
    }
  }

  // The kRowFast copies: 16-byte chunks, per_t of them per timestep.
  template <int kThreads, int kRows>
  __device__ __forceinline__ void stage_row_fast(T* raw, int64_t t0, int64_t len) const {
    const int per_t = (kRows > 0 ? kRows : rows) / kVec;
    auto copy = [&](int i) {
      const int t = i / per_t, r0 = (i % per_t) * kVec;
      const int64_t tt = t0 + t;
      int bytes = (rows_valid - r0) * int(sizeof(T));
      bytes = tt < len ? (bytes < 0 ? 0 : (bytes > 16 ? 16 : bytes)) : 0;
      const T* src = bytes > 0 ? g + r0 + tt * s_time : g;
      cp_async16(raw + t * per_t * kVec + r0, src, bytes);
    };
    if constexpr (kRows > 0) {
      constexpr int kItems = kRows / kVec * kT;
#pragma unroll
      for (int k = 0; k < (kItems + kThreads - 1) / kThreads; ++k) {
        const int i = threadIdx.x + k * kThreads;
        if (kItems % kThreads == 0 || i < kItems) copy(i);
      }
    } else {
      for (int i = threadIdx.x; i < per_t * kT; i += kThreads) copy(i);
    }
  }

  // Element (row r, time t0 + t) as fp32, from the staged tile or (kDirect) global memory. With
  // kStaged (the caller checked staged() for the whole tile) there is no branch on the mode.
  template <bool kStaged = false>
  __device__ __forceinline__ float at(const T* raw, int r, int t, int64_t t0, int64_t len) const {
    if (kStaged || mode != TileMode::kDirect) return to_float(raw[mode == TileMode::kRowFast ? t * rows + r : r * kTPitch + t]);
    return (r < rows_valid && t0 + t < len) ? to_float(g[r * s_row + (t0 + t) * s_time]) : 0.f;
  }
};

// The value of p, hidden from the optimiser: it cannot recompute p from the values it was made of,
// so a pointer formed once per tile stays in a register (or spills) instead of being rebuilt with
// 64-bit multiplies at every use.
template <typename P>
__device__ __forceinline__ P* opaque(P* p) {
  asm volatile("" : "+l"(p));
  return p;
}

// Runs f(BoolTag<true>) when `all_staged`, else f(BoolTag<false>): one uniform branch per tile
// instead of one per element, and loops the compiler can unroll.
template <bool B>
struct BoolTag {
  static constexpr bool value = B;
};
template <class F>
__device__ __forceinline__ void with_staged(bool all_staged, F&& f) {
  if (all_staged) f(BoolTag<true>{});
  else f(BoolTag<false>{});
}

// Carves dynamic shared memory in 16-byte-aligned pieces; the host computes the same total by
// running the same sequence with base = nullptr.
struct SmemCarver {
  char* base;
  size_t used = 0;
  template <typename U>
  __host__ __device__ U* take(int64_t count) {
    used = (used + 15) / 16 * 16;
    U* p = reinterpret_cast<U*>(base + used);
    used += size_t(count) * sizeof(U);
    return p;
  }
};

// The two cp.async stages of a block's raw operand tiles: operands [0, kChannelOps) are channel
// tiles (kChannels rows), the others state tiles (N rows: B, C). Stage 1 mirrors stage 0 at
// + stage_elems (the same piece sizes, so one offset serves every operand).
template <typename T, int kT, int kOps, int kChannelOps, int kChannels>
struct StagedTiles {
  using Op = TileOperand<T, kT>;
  T* raw[kOps];
  int64_t stage_elems;

  __host__ __device__ void carve(SmemCarver& sc, int channels, int N) {
    T* second = nullptr;
    for (int st = 0; st < 2; ++st)
      for (int k = 0; k < kOps; ++k) {
        T* piece = sc.take<T>(Op::staged_elems(k < kChannelOps ? channels : N));
        if (st == 0) raw[k] = piece;
        else if (k == 0) second = piece;
      }
    stage_elems = second - raw[0];
  }
  __device__ __forceinline__ T* at(int st, int k) const { return raw[k] + st * stage_elems; }

  // Issues every operand's copies of tile [t0, t0 + kT) into stage st (operand `skip`, if any, is
  // absent: z without a gate) and commits them as one group.
  template <int kThreads>
  __device__ void stage(const Op (&op)[kOps], int st, int64_t t0, int64_t len, int skip) const {
#pragma unroll
    for (int k = 0; k < kOps; ++k)
      if (k != skip) {
        if (k < kChannelOps) op[k].template stage<kThreads, kChannels>(at(st, k), t0, len);
        else op[k].template stage<kThreads>(at(st, k), t0, len);
      }
    cp_async_commit();
  }
};

// A channel operand (B, E, L) of batch row b from channel e0 on, or a state operand (B, N, L).
template <typename T, int kT>
__device__ __forceinline__ void init_channel_operand(TileOperand<T, kT>& op, const void* base, const Strides3& s,
                                                     int64_t b, int64_t e0, int channels, int rows) {
  op.init(static_cast<const T*>(base) + b * s.batch + e0 * s.row, s.row, s.time, channels, rows);
}
template <typename T, int kT>
__device__ __forceinline__ void init_state_operand(TileOperand<T, kT>& op, const void* base, const Strides3& s,
                                                   int64_t b, int N) {
  op.init(static_cast<const T*>(base) + b * s.batch, s.row, s.time, N, N);
}

// v[0..kNT) = p[0..kNT) through 16-byte shared loads (8-byte ones when kNT % 4 != 0; p aligned).
template <int kNT>
__device__ __forceinline__ void load_f4(const float* p, float (&v)[kNT]) {
  if constexpr (kNT % 4 == 0) {
#pragma unroll
    for (int q = 0; q < kNT / 4; ++q) {
      const float4 x = reinterpret_cast<const float4*>(p)[q];
      v[4 * q] = x.x;
      v[4 * q + 1] = x.y;
      v[4 * q + 2] = x.z;
      v[4 * q + 3] = x.w;
    }
  } else {
#pragma unroll
    for (int q = 0; q < kNT / 2; ++q) {
      const float2 x = reinterpret_cast<const float2*>(p)[q];
      v[2 * q] = x.x;
      v[2 * q + 1] = x.y;
    }
  }
}

// A lane's kNT saved states, states[n0 … n0 + kNT) of one (channel, checkpoint) row of N: 16-byte
// accesses when N and kNT allow (the row start is then 16-byte aligned), else per element; entries
// past N are skipped (store) or zero (load).
template <int kNT>
__device__ __forceinline__ void store_states(float* row, const float (&h)[kNT], int n0, int N) {
  if constexpr (kNT % 4 == 0) {
    if (N % 4 == 0) {
#pragma unroll
      for (int i = 0; i < kNT; i += 4)
        if (n0 + i < N) *reinterpret_cast<float4*>(row + n0 + i) = make_float4(h[i], h[i + 1], h[i + 2], h[i + 3]);
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kNT; ++i)
    if (n0 + i < N) row[n0 + i] = h[i];
}
template <int kNT>
__device__ __forceinline__ void load_states(const float* row, float (&h)[kNT], int n0, int N) {
  if constexpr (kNT % 4 == 0) {
    if (N % 4 == 0) {
#pragma unroll
      for (int i = 0; i < kNT; i += 4) {
        const float4 x = n0 + i < N ? *reinterpret_cast<const float4*>(row + n0 + i) : make_float4(0.f, 0.f, 0.f, 0.f);
        h[i] = x.x;
        h[i + 1] = x.y;
        h[i + 2] = x.z;
        h[i + 3] = x.w;
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kNT; ++i) h[i] = n0 + i < N ? row[n0 + i] : 0.f;
}

// Reduce-scatter of v[0..kV) over the kV lanes that differ in the low log2(kV) bits of the lane
// index (a channel's lanes): afterwards v[0] of lane l holds the sum of element l % kV.
template <int kV>
__device__ __forceinline__ void reduce_scatter_low(float (&v)[kV], int lane) {
#pragma unroll
  for (int m = kV / 2; m >= 1; m /= 2) {
    const bool upper = (lane & m) != 0;
#pragma unroll
    for (int j = 0; j < m; ++j) {
      const float send = upper ? v[j] : v[j + m];
      const float keep = upper ? v[j + m] : v[j];
      v[j] = keep + __shfl_xor_sync(kFullMask, send, m);
    }
  }
}

// Butterfly reduce-scatter of v[0..kV) over the lanes that differ in bits [kLowBit, 5) of the
// lane index: afterwards each lane holds, in v[0..kV >> levels), the warp-sums of the elements
// starting at reduce_scatter_offset(lane). Costs kV/2 + kV/4 + ... shuffles instead of
// kV · levels for plain reductions.
template <int kV, int kLowBit>
__device__ __forceinline__ void reduce_scatter(float (&v)[kV], int lane) {
  int len = kV;
#pragma unroll
  for (int bit = 4; bit >= kLowBit; --bit) {
    const int m = 1 << bit;
    const bool upper = (lane & m) != 0;
    const int half = len / 2;
#pragma unroll
    for (int j = 0; j < kV / 2; ++j) {
      if (j < half) {
        const float send = upper ? v[j] : v[j + half];
        const float keep = upper ? v[j + half] : v[j];
        v[j] = keep + __shfl_xor_sync(kFullMask, send, m);
      }
    }
    len = half;
  }
}
template <int kV, int kLowBit>
__device__ __forceinline__ int reduce_scatter_offset(int lane) {
  int off = 0, len = kV;
#pragma unroll
  for (int bit = 4; bit >= kLowBit; --bit) {
    len /= 2;
    if (lane & (1 << bit)) off += len;
  }
  return off;
}

}  // namespace mcd::ops::cuda
