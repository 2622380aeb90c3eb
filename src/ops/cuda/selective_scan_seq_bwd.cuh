// State-sequential selective-scan backward (ScanAlgorithm::kStateSequential*; see selective_scan_seq.cuh and
// [Note: state-sequential scan] in docs/PERF_NOTES.md). Tiles of kSeqChunk steps run in reverse;
// each lane owns one channel and kNT states, so the reverse recurrence
//   dh_t = dy_t·C_t + exp(Δ_{t+1}A)·dh_{t+1}
// carries in registers across the whole sequence. Per tile:
//   stage (cp.async, the next earlier tile) → prep (Δ, u', dy = dout·SiLU(z), B, C in fp32, and
//   the gate factors of dz and of the recomputed output over the read raw tile) →
//   pass 1: forward from the saved tile-start state, keeping the state every kSub steps in shared
//           memory →
//   pass 2: per sub-tile (last first): recompute its kSub states in registers, then walk them
//           backwards (exp(ΔA) recomputed) accumulating dA (registers), y = C·h, Σ_n dh·B and
//           Σ_n A·dh·h_{t−1}a (per step, summed over the channel's lanes) and the per-(t, n) dB,
//           dC terms, which a butterfly reduce-scatter sums over the warp's channels and shared
//           memory over the block's warps. After every kSplit steps each lane of a channel
//           finishes one of them: du, dΔ, dz (and the forward's output again when p.out is set,
//           so a caller need not keep it) go to global memory, dD, dΔ-bias, dmask accumulate →
//   dB/dC out (atomics, or per-block partials in deterministic mode).
// No per-step arrays besides the prep's three: 54 KB of shared memory and ≤ 128 registers, so
// four blocks (16 warps) fit on an SM. A SeqBwdPlan trades memory and registers for recomputation
// where the GPU has room (three blocks per SM, ≤ 168 registers): the one-wave plans keep the
// recompute's exp(ΔA) in registers for the walk and one dB/dC plane per warp; the dense one also
// reads a state saved by the forward every kSub steps (no pass 1) and, in the shared memory that
// frees, exchanges the per-step sums (SeqBwdSmem::xpose, lsum) instead of shuffling them.
#pragma once

#include <type_traits>

#include "ops/cuda/selective_scan_seq.cuh"

namespace mcd::ops::cuda {

// What a backward plan recomputes, and the occupancy it is compiled for. A plan is one of the
// named specs below (kDense, kKeepA, kMinBlocks) with the derived choices added.
template <class Spec>
struct SeqBwdPlan : Spec {
  using Spec::kDense;       // states saved every kSub steps (kStateSequentialDense): no pass 1
  using Spec::kKeepA;       // the walk reuses the recompute's exp(ΔA) (+32 registers)
  using Spec::kMinBlocks;   // __launch_bounds__: blocks per SM
  using Spec::kWarps;       // warps per block (the traits' kWarps; the kernel checks)
  // Every warp writes its dB/dC sums into its own plane (plain stores: a shared-memory float
  // atomicAdd is a compare-and-swap loop on sm_90), and the block adds the planes in warp order.
  // An SM of at most twelve warps (three 4-warp blocks) holds a plane per warp for a whole tile
  // (kTilePlanes, one flush per tile); with more, the planes hold one sub-tile and are flushed after each.
  static constexpr bool kTilePlanes = Spec::kMinBlocks * Spec::kWarps <= 12;
  // With the dense states there is no pass-1 array either, and the shared memory left takes the
  // per-step sums out of the shuffle network (see SeqBwdSmem::xpose and lsum).
  static constexpr bool kSmemSums = Spec::kDense && kTilePlanes;
};
// ScanAlgorithm::kStateSequential: sparse states, four blocks per SM (≤ 128 registers).
struct SeqBwdFourPerSm {
  static constexpr bool kDense = false, kKeepA = false;
  static constexpr int kMinBlocks = 4, kWarps = 4;
};
// kStateSequentialOneWave: sparse states, three blocks per SM, exp(ΔA) kept for the walk.
struct SeqBwdOneWave {
  static constexpr bool kDense = false, kKeepA = true;
  static constexpr int kMinBlocks = kSeqFatBlocksPerSm, kWarps = 4;
};
// kStateSequentialDense: dense states (no pass 1), three blocks per SM, exp(ΔA) kept.
struct SeqBwdOneWaveDense {
  static constexpr bool kDense = true, kKeepA = true;
  static constexpr int kMinBlocks = kSeqFatBlocksPerSm, kWarps = 4;
};
// kStateSequentialEightLanes (SeqEight's lanes): sparse states, six blocks per SM (≤ 80 registers;
// lab version 10, which at full widths lost to SeqQuad and at small B·E wins).
struct SeqBwdEightLanes {
  static constexpr bool kDense = false, kKeepA = false;
  static constexpr int kMinBlocks = 6, kWarps = 4;
};

template <class Tr, typename T>
struct SeqBwdSmem {
  static constexpr int kSub = kSeqSub;  // steps recomputed in registers at a time (kSub × kNT of them)
  static constexpr int kSlots = 2 * Tr::kMaxN;  // dB then dC per state
  static constexpr int kRedPitch = kSlots + 1;  // tile planes: [kT][kRedPitch] per warp
  static constexpr int kSubPitch = kSlots + 4;  // sub-tile planes: [kSub][kSubPitch] per warp (conflict-free flush)
  StagedTiles<T, Tr::kT, 6, 4, Tr::kCh> tiles;  // u, Δ, z, dout, B, C (state tiles sized for kMaxN)
  float *dt, *um, *dy;             // [kT][kCh]
  float *B, *C;                    // [kT][kMaxN]
  float* ckpt;                     // [kT / kSub][kNT][kThreads]: pass 1's states (absent when dense)
  // dB/dC sums of the block's warps, one plane per warp (SeqBwdPlan::kTilePlanes).
  float* red;
  // kSmemSums (4 lanes per channel, 8 channels per warp, kSlots = 32 = one slot per lane):
  // xpose, per warp [8 channels][kXPitch]: each lane stores its kNT dB and kNT dC terms of a step,
  //   then lane l adds slot l over the 8 channels (instead of a shuffle reduce-scatter);
  // lsum, per warp [kSplit steps][kLsPitch]: each lane stores its (Σ dh·B, Σ A·dh·h a, y)
  //   partials of a step as a float4 at [step % kSplit][lane]; every kSplit steps the lane that
  //   finishes step j adds its channel's kSplit partials (instead of three shuffle sums per step).
  // The pitches keep the 16-byte stores and the reads conflict-free.
  static constexpr int kXPitch = 48, kLsPitch = 33 * 4;
  float *xpose, *lsum;
  // The finishing factors of a tile, [2][kT][kCh] fp32 (dz's and the output's gate factors), take
  // the place of stage st's raw Δ … C pieces once the prep has read them (u stays: dmask reads it).
  // The pieces are contiguous (their sizes are multiples of 16 bytes) and hold at least that much.
  using Tiles = StagedTiles<T, Tr::kT, 6, 4, Tr::kCh>;
  static constexpr int64_t kFinBytes = 2 * Tr::kT * Tr::kCh * int64_t(sizeof(float));
  static_assert((3 * Tiles::Op::staged_elems(Tr::kCh) + 2 * Tiles::Op::staged_elems(Tr::kMaxN)) * int64_t(sizeof(T)) >=
                    kFinBytes,
                "the finishing factors fit in a stage's raw Δ … C pieces");
  static_assert(Tiles::Op::staged_elems(Tr::kCh) * sizeof(T) % 16 == 0 &&
                    Tiles::Op::staged_elems(Tr::kMaxN) * sizeof(T) % 16 == 0,
                "raw pieces are contiguous");
  __device__ __forceinline__ float* fin(int st) const { return reinterpret_cast<float*>(tiles.at(st, 1)); }
  __host__ __device__ static SeqBwdSmem carve(char* base, int N, bool tile_planes, bool dense, bool smem_sums,
                                              size_t* bytes) {
    SmemCarver sc{base};
    SeqBwdSmem s;
    s.tiles.carve(sc, Tr::kCh, Tr::kMaxN);
    s.dt = sc.take<float>(Tr::kT * Tr::kCh);
    s.um = sc.take<float>(Tr::kT * Tr::kCh);
    s.dy = sc.take<float>(Tr::kT * Tr::kCh);
    s.B = sc.take<float>(Tr::kT * Tr::kMaxN);
    s.C = sc.take<float>(Tr::kT * Tr::kMaxN);
    s.ckpt = sc.take<float>(dense ? 0 : (Tr::kT / kSub) * Tr::kNT * Tr::kThreads);
    s.red = sc.take<float>(Tr::kWarps * (tile_planes ? Tr::kT * kRedPitch : kSub * kSubPitch));
    s.xpose = sc.take<float>(smem_sums ? Tr::kWarps * (32 / Tr::kSplit) * kXPitch : 0);
    s.lsum = sc.take<float>(smem_sums ? Tr::kWarps * Tr::kSplit * kLsPitch : 0);
    if (bytes != nullptr) *bytes = sc.used;
    return s;
  }
};

// kSegmented: the time-segmented backward ([Note: time-segmented backward] below; blockIdx.z is the
// segment), a separate instantiation so that the one-walk kernels keep their registers (the
// eight-lane one, capped at 80, spilled 12–32 bytes with the segment logic compiled in).
template <class Tr, class Plan, typename T, class Flags, bool kSegmented = false>
__global__ void __launch_bounds__(Tr::kThreads, Plan::kMinBlocks) selective_scan_seq_bwd_kernel(SelectiveScanParams p) {
  constexpr bool kHasZ = Flags::kHasZ, kSoftplus = Flags::kSoftplus, kDeterministic = Flags::kDeterministic;
  constexpr int kT = Tr::kT, kCh = Tr::kCh, kNT = Tr::kNT, kSplit = Tr::kSplit;
  constexpr int kThreads = Tr::kThreads, kMaxN = Tr::kMaxN;
  using Sm = SeqBwdSmem<Tr, T>;
  constexpr int kSub = Sm::kSub, kSlots = Sm::kSlots, kRedPitch = Sm::kRedPitch;
  constexpr int kLowBit = kSplit == 1 ? 0 : kSplit == 2 ? 1 : kSplit == 4 ? 2 : kSplit == 8 ? 3 : 4;
  constexpr int kLeft = (2 * kNT) >> (5 - kLowBit);  // dB/dC values a lane keeps after the reduce-scatter
  static_assert(kLeft >= 1, "the reduce-scatter needs 2·kNT ≥ channels per warp");
  static_assert(kSub % kSplit == 0, "a channel's lanes take one step each of a group of kSplit steps");
  static_assert(Tr::kWarps == Plan::kWarps, "the plan's shared-memory choices assume the traits' warps per block");
  using Op = TileOperand<T, kT>;
  extern __shared__ __align__(16) char smem_raw[];
  const int N = static_cast<int>(p.dstate);
  constexpr bool kTilePlanes = Plan::kTilePlanes;
  const Sm sm = Sm::carve(smem_raw, N, kTilePlanes, Plan::kDense, Plan::kSmemSums, nullptr);
  constexpr bool kSmemSums = Plan::kSmemSums;
  static_assert(!kSmemSums || (kSplit == 4 && kNT == 4 && kSlots == 32), "the shared-memory sums assume 4 × 4 lanes");
  static_assert(!kSmemSums || kTilePlanes, "the shared-memory sums write tile planes");

  const int64_t b = blockIdx.y;
  const int64_t e0 = static_cast<int64_t>(blockIdx.x) * kCh;
  const int rows = static_cast<int>(p.dim - e0 < kCh ? p.dim - e0 : kCh);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int c = tid / kSplit, sg = tid % kSplit, n0 = sg * kNT;
  const bool e_ok = c < rows;
  const int seg = kSegmented ? static_cast<int>(blockIdx.z) : 0;  // this block's time segment
  // Channel c's constants, for the per-step gradients this lane finishes (see pass 2).
  const float m = (p.mask != nullptr && e_ok) ? p.mask[e0 + c] : 1.f;
  const float D = (p.D != nullptr && e_ok) ? p.D[e0 + c] : 0.f;
  // Where this lane's finished gradients go: per tile a pointer to (b, e0 + c, t0) of each output,
  // kept in a register (see opaque()), and inside the tile 32-bit offsets te·time (the host checks
  // that they fit).
  auto tile_ptr = [&](void* base, const Strides3& s, int64_t t0) {
    return opaque(static_cast<T*>(base) + b * s.batch + (e0 + c) * s.row + t0 * s.time);
  };
  // Prep role (see PrepSplit): channel pc, state pn.
  using Split = PrepSplit<Tr>;
  constexpr int kPrepStride = Split::kStride, kItemsCh = Split::kItems;
  constexpr int kPrepStrideN = Split::kStrideN, kItemsN = Split::kItemsN;
  const Split split(tid);
  const int pc = split.pc, pt0 = split.pt0, pn = split.pn, pt0n = split.pt0n;
  const bool pc_ok = pc < rows;
  const float pbias = (p.delta_bias != nullptr && pc_ok) ? p.delta_bias[e0 + pc] : 0.f;
  const float pm = (p.mask != nullptr && pc_ok) ? p.mask[e0 + pc] : 1.f;

  // dB, dC of steps [tb, tb + kSteps) of the tile at t0: add the warps' planes (rows w·kSteps + q,
  // row pitch `pitch`) in warp order, then one atomic (or deterministic partial) per (n, t). A
  // thread takes step q = tid % kSteps and slots tid / kSteps + k·kStride (dB first, then dC).
  auto flush = [&](int64_t t0, int tb, auto steps_tag, int pitch) {
    constexpr int kSteps = decltype(steps_tag)::value, kStride = kThreads / kSteps;
    static_assert(kThreads % kSteps == 0 && kMaxN % kStride == 0, "a thread's slots split into dB and dC");
    const int q = tid % kSteps, slot0 = tid / kSteps;
    const int64_t t = t0 + tb + q;
    if (t >= p.len) return;
    const int64_t row0 = (kDeterministic ? blockIdx.x * p.batch * N * p.len : 0) + b * N * p.len + t;
    float* const dB_t = (kDeterministic ? p.dB_part : p.dB) + row0;
    float* const dC_t = (kDeterministic ? p.dC_part : p.dC) + row0;
#pragma unroll
    for (int k = 0; k < kSlots / kStride; ++k) {
      constexpr int kPerHalf = kMaxN / kStride;
      const int n = slot0 + (k % kPerHalf) * kStride, slot = slot0 + k * kStride;
      if (n >= N) continue;
      float sum = 0.f;
#pragma unroll
      for (int w = 0; w < Tr::kWarps; ++w) sum += sm.red[(w * kSteps + q) * pitch + slot];
      float* const dst = (k < kPerHalf ? dB_t : dC_t) + n * p.len;
      if constexpr (kDeterministic) *dst = sum;
      else atomicAdd(dst, sum);
    }
  };

  Op op[6];
  init_channel_operand(op[0], p.u, p.u_s, b, e0, kCh, rows);
  init_channel_operand(op[1], p.delta, p.delta_s, b, e0, kCh, rows);
  if constexpr (kHasZ) init_channel_operand(op[2], p.z, p.z_s, b, e0, kCh, rows);
  init_channel_operand(op[3], p.dout, p.dout_s, b, e0, kCh, rows);
  init_state_operand(op[4], p.Bm, p.B_s, b, N);
  init_state_operand(op[5], p.Cm, p.C_s, b, N);

  // A2 = A·log2(e): exp(ΔA) = 2^(Δ·A2); dΔ's A·(…) term is summed with A2 and rescaled once.
  float A2[kNT], r[kNT], dA[kNT];
#pragma unroll
  for (int i = 0; i < kNT; ++i) {
    const int n = n0 + i;
    A2[i] = (e_ok && n < N) ? p.A[(e0 + c) * N + n] * kLog2e : 0.f;
    r[i] = 0.f;  // exp(Δ_{t+1}A)·dh_{t+1}, flowing backwards
    dA[i] = 0.f;
  }
  // Entering segment seg: r = g_k + P_k·r over the later segments k = segments − 1 … seg + 1 (from
  // r = 0 after the last step), the carries selective_scan_seq_bwd_carry_kernel left.
  if (kSegmented && e_ok)
    for (int64_t k = p.segments - 1; k > seg; --k) {
      const int64_t o = ((k - 1) * p.batch + b) * p.dim * N + (e0 + c) * N;
#pragma unroll
      for (int i = 0; i < kNT; ++i)
        if (n0 + i < N) r[i] = fmaf(p.carry_p[o + n0 + i], r[i], p.carry_g[o + n0 + i]);
    }
  float dD_acc = 0.f, dbias_acc = 0.f, dm_acc = 0.f;  // channel c, the steps this lane finishes

  auto raw = [&](int st, int k) { return sm.tiles.at(st, k); };
  // Every operand this call reads is staged (the model's layouts are): the prep then takes the
  // branch-free element access.
  const bool all_staged = op[0].staged() && op[1].staged() && (!kHasZ || op[2].staged()) && op[3].staged() &&
                          op[4].staged() && op[5].staged();
  auto stage = [&](int64_t tile, int st) {
    sm.tiles.template stage<kThreads>(op, st, tile * kT, p.len, kHasZ ? -1 : 2);
  };

  const int64_t n_tiles = (p.len + kT - 1) / kT;
  // kSegmented: segment seg's tiles [tile_begin, tile_end), never empty (the host sizes the
  // segments by scan_time_segments); else all tiles.
  const int64_t tile_begin = kSegmented ? seg * p.segment_tiles : 0;
  const int64_t tile_end =
      !kSegmented ? n_tiles : tile_begin + p.segment_tiles < n_tiles ? tile_begin + p.segment_tiles : n_tiles;
  // This lane's saved states of channel c: row j is the state before step j · (spacing). The
  // dense plan loads the next sub-tile's start state one sub-tile ahead (sub-tiles and tiles run
  // in reverse).
  constexpr int kSubs = kT / kSub;
  const float* states_c = p.states + (b * p.dim + e0 + (e_ok ? c : 0)) * p.n_chunks * N;
  auto load_row = [&](int64_t j, float (&v)[kNT]) {
    if (e_ok && j >= 0 && j < p.n_chunks) {
      load_states(states_c + j * N, v, n0, N);
    } else {
#pragma unroll
      for (int i = 0; i < kNT; ++i) v[i] = 0.f;
    }
  };
  auto load_ckpt = [&](int64_t tile, int s, float (&v)[kNT]) { load_row(tile * kSubs + s, v); };
  float next_h[kNT];
  if constexpr (Plan::kDense) load_ckpt(tile_end - 1, kSubs - 1, next_h);
  stage(tile_end - 1, static_cast<int>((tile_end - 1) & 1));
  for (int64_t tile = tile_end - 1; tile >= tile_begin; --tile) {
    const int st = static_cast<int>(tile & 1);
    const int64_t t0 = tile * kT;
    cp_async_wait_all();
    __syncthreads();  // this tile is staged; the later tile's dB/dC sums are out
    if (tile > tile_begin) stage(tile - 1, st ^ 1);

    // Prep: Δ, u', dy = dout·SiLU(z), B, C in fp32, once per (t, e) and (t, n); and the gate
    // factors the finishing needs (dz = y·dout·σ(z)(1 + z(1 − σ(z))), out = y·SiLU(z)), which go
    // where the raw tile was once every thread has read it.
    const int tvalid = p.len - t0 < kT ? static_cast<int>(p.len - t0) : kT;  // steps inside the sequence
    float fin_z[kItemsCh], fin_o[kItemsCh];
    with_staged(all_staged, [&](auto staged_tag) {
      constexpr bool kS = decltype(staged_tag)::value;
#pragma unroll
      for (int j = 0; j < kItemsCh; ++j) {
        const int t = pt0 + j * kPrepStride, i = t * kCh + pc;
        const bool ok = pc_ok && t < tvalid;
        float x = op[1].template at<kS>(raw(st, 1), pc, t, t0, p.len) + pbias;
        if constexpr (kSoftplus) x = softplus_f(x);
        sm.dt[i] = ok ? x : 0.f;
        sm.um[i] = op[0].template at<kS>(raw(st, 0), pc, t, t0, p.len) * pm;
        float g = op[3].template at<kS>(raw(st, 3), pc, t, t0, p.len);
        if constexpr (kHasZ) {
          const float zz = op[2].template at<kS>(raw(st, 2), pc, t, t0, p.len), sz = sigmoid_f(zz);
          fin_o[j] = zz * sz;
          fin_z[j] = g * sz * fmaf(zz, 1.f - sz, 1.f);
          g *= fin_o[j];
        }
        sm.dy[i] = ok ? g : 0.f;
      }
#pragma unroll
      for (int j = 0; j < kItemsN; ++j) {
        const int t = pt0n + j * kPrepStrideN, i = t * kMaxN + pn;
        sm.B[i] = pn < N ? op[4].template at<kS>(raw(st, 4), pn, t, t0, p.len) : 0.f;
        sm.C[i] = pn < N ? op[5].template at<kS>(raw(st, 5), pn, t, t0, p.len) : 0.f;
      }
    });
    T* const du_t = tile_ptr(p.du, p.du_s, t0);
    T* const dd_t = tile_ptr(p.ddelta, p.ddelta_s, t0);
    T* const dz_t = kHasZ ? tile_ptr(p.dz, p.dz_s, t0) : nullptr;
    T* const out_t = p.out != nullptr ? tile_ptr(p.out, p.out_s, t0) : nullptr;
    float* const fz = sm.fin(st);     // [kT][kCh]: dz's factor
    float* const fo = fz + kT * kCh;  // [kT][kCh]: SiLU(z)
    if constexpr (kHasZ) {
      __syncthreads();  // every raw element is read
#pragma unroll
      for (int j = 0; j < kItemsCh; ++j) {
        const int i = (pt0 + j * kPrepStride) * kCh + pc;
        fz[i] = fin_z[j];
        fo[i] = fin_o[j];
      }
    }
    __syncthreads();

    // Pass 1: forward from the saved state, keeping the state every kSub steps.
    if constexpr (!Plan::kDense) {
      float h[kNT];
      load_row(tile, h);  // one state per tile
#pragma unroll 2
      for (int t = 0; t < kT; ++t) {
        if (t % kSub == 0) {
#pragma unroll
          for (int i = 0; i < kNT; ++i) sm.ckpt[((t / kSub) * kNT + i) * kThreads + tid] = h[i];
        }
        const float dt = sm.dt[t * kCh + c];
        const float dtu = dt * sm.um[t * kCh + c];
        float Bv[kNT];
        load_f4(sm.B + t * kMaxN + n0, Bv);
#pragma unroll
        for (int i = 0; i < kNT; ++i) h[i] = fmaf(exp2f(dt * A2[i]), h[i], dtu * Bv[i]);
      }
    }

    // Pass 2: sub-tiles in reverse. The states of a sub-tile are recomputed into registers, then
    // walked backwards (exp(ΔA) recomputed: registers are the scarcer resource). Per step the
    // channel's lanes sum y = C·h, Σ_n dh·B and Σ_n A·dh·h_{t−1}a; lane sg keeps those of the
    // steps ≡ sg (mod kSplit), and after each group of kSplit steps every lane finishes one step
    // of its channel: du, dΔ, dz (and the recomputed output) go straight to global memory.
    for (int s = kT / kSub - 1; s >= 0; --s) {
      float hp[kSub + 1][kNT];
      if constexpr (Plan::kDense) {
#pragma unroll
        for (int i = 0; i < kNT; ++i) hp[0][i] = next_h[i];
        if (s > 0) load_ckpt(tile, s - 1, next_h);
        else load_ckpt(tile - 1, kSubs - 1, next_h);
      } else {
#pragma unroll
        for (int i = 0; i < kNT; ++i) hp[0][i] = sm.ckpt[(s * kNT + i) * kThreads + tid];
      }
      float av[Plan::kKeepA ? kSub : 1][kNT];  // exp(ΔA) of the sub-tile's steps (kKeepA)
#pragma unroll
      for (int q = 0; q < kSub; ++q) {
        const int t = s * kSub + q;
        const float dt = sm.dt[t * kCh + c];
        const float dtu = dt * sm.um[t * kCh + c];
        float Bv[kNT];
        load_f4(sm.B + t * kMaxN + n0, Bv);
#pragma unroll
        for (int i = 0; i < kNT; ++i) {
          const float a = exp2f(dt * A2[i]);
          if constexpr (Plan::kKeepA) av[q][i] = a;
          hp[q + 1][i] = fmaf(a, hp[q][i], dtu * Bv[i]);
        }
      }
      float my_gdu = 0.f, my_gdt = 0.f, my_y = 0.f;
#pragma unroll
      for (int q = kSub - 1; q >= 0; --q) {
        const int t = s * kSub + q;
        const float dt = sm.dt[t * kCh + c];
        const float dtu = dt * sm.um[t * kCh + c];
        const float dy = sm.dy[t * kCh + c];
        float gdu = 0.f, gdt = 0.f, y = 0.f;
        float v[2 * kNT];  // dB terms, then dC terms, of this lane's states
        float Bv[kNT], Cv[kNT];
        load_f4(sm.B + t * kMaxN + n0, Bv);
        load_f4(sm.C + t * kMaxN + n0, Cv);
#pragma unroll
        for (int i = 0; i < kNT; ++i) {
          float a;
          if constexpr (Plan::kKeepA) a = av[q][i];
          else a = exp2f(dt * A2[i]);
          const float dh = fmaf(dy, Cv[i], r[i]);
          const float t1 = dh * (hp[q][i] * a);  // dh · exp(ΔA) · h_{t−1}
          dA[i] = fmaf(t1, dt, dA[i]);
          gdt = fmaf(A2[i], t1, gdt);
          gdu = fmaf(dh, Bv[i], gdu);
          y = fmaf(Cv[i], hp[q + 1][i], y);
          v[i] = dh * dtu;
          v[kNT + i] = dy * hp[q + 1][i];
          r[i] = a * dh;
        }
        if constexpr (kSmemSums) {
          float* ls = sm.lsum + warp * (kSplit * Sm::kLsPitch);
          *reinterpret_cast<float4*>(ls + (q % kSplit) * Sm::kLsPitch + lane * 4) = make_float4(gdu, gdt, y, 0.f);
          // dB/dC over the warp's 8 channels: lane l adds slot l.
          float* xb = sm.xpose + warp * (8 * Sm::kXPitch);
          const int cw = lane / kSplit;
          *reinterpret_cast<float4*>(xb + cw * Sm::kXPitch + n0) = make_float4(v[0], v[1], v[2], v[3]);
          *reinterpret_cast<float4*>(xb + cw * Sm::kXPitch + kMaxN + n0) = make_float4(v[4], v[5], v[6], v[7]);
          __syncwarp();
          float x8[8];
#pragma unroll
          for (int k = 0; k < 8; ++k) x8[k] = xb[k * Sm::kXPitch + lane];
          __syncwarp();  // read before the next step overwrites
          // A pairwise tree (3 dependent adds, not 7), in a fixed order.
          const float sum = ((x8[0] + x8[1]) + (x8[2] + x8[3])) + ((x8[4] + x8[5]) + (x8[6] + x8[7]));
          sm.red[(warp * kT + t) * kRedPitch + lane] = sum;
          if (q % kSplit == 0) {  // this group's partials are in: the lane finishing step q + sg adds them
            const float* src = ls + sg * Sm::kLsPitch + cw * kSplit * 4;
            float4 x4[kSplit];
#pragma unroll
            for (int l = 0; l < kSplit; ++l) x4[l] = *reinterpret_cast<const float4*>(src + l * 4);
            my_gdu = (x4[0].x + x4[1].x) + (x4[2].x + x4[3].x);
            my_gdt = ((x4[0].y + x4[1].y) + (x4[2].y + x4[3].y)) * (1.f / kLog2e);
            my_y = (x4[0].z + x4[1].z) + (x4[2].z + x4[3].z);
            __syncwarp();  // read before the next group overwrites
          }
        } else {
#pragma unroll
          for (int d = kSplit / 2; d >= 1; d /= 2) {
            gdu += __shfl_xor_sync(kFullMask, gdu, d);
            gdt += __shfl_xor_sync(kFullMask, gdt, d);
            y += __shfl_xor_sync(kFullMask, y, d);
          }
          if (q % kSplit == sg) {
            my_gdu = gdu;
            my_gdt = gdt * (1.f / kLog2e);
            my_y = y;
          }
          // Sum the dB/dC terms over the warp's channels; each lane keeps kLeft of them.
          reduce_scatter<2 * kNT, kLowBit>(v, lane);
          const int off = reduce_scatter_offset<2 * kNT, kLowBit>(lane);
#pragma unroll
          for (int k = 0; k < kLeft; ++k) {
            const int idx = off + k;  // into this lane's v: dB for idx < kNT, else dC
            const int slot = idx < kNT ? n0 + idx : kMaxN + n0 + (idx - kNT);
            if constexpr (kTilePlanes) sm.red[(warp * kT + t) * kRedPitch + slot] = v[k];
            else sm.red[(warp * kSub + q) * Sm::kSubPitch + slot] = v[k];
          }
        }
        if (q % kSplit == 0) {  // steps q … q + kSplit − 1 are summed: finish step q + sg
          const int te = s * kSub + q + sg, i = te * kCh + c;
          if (e_ok && te < tvalid) {
            const float dte = sm.dt[i], ume = sm.um[i], dye = sm.dy[i];
            const float u_raw = p.mask != nullptr ? op[0].at(raw(st, 0), c, te, t0, p.len) : 0.f;  // dmask only
            const float du = fmaf(dye, D, dte * my_gdu);  // ∂/∂u' (before the mask)
            float dpre = fmaf(ume, my_gdu, my_gdt);       // ∂/∂Δ
            if constexpr (kSoftplus) dpre *= sigmoid_from_softplus(dte);
            du_t[te * static_cast<int>(p.du_s.time)] = from_float<T>(du * m);
            dd_t[te * static_cast<int>(p.ddelta_s.time)] = from_float<T>(dpre);
            const float yf = my_y + D * ume;  // the forward's y before the gate
            if constexpr (kHasZ) {
              dz_t[te * static_cast<int>(p.dz_s.time)] = from_float<T>(yf * fz[i]);
              if (out_t != nullptr) out_t[te * static_cast<int>(p.out_s.time)] = from_float<T>(yf * fo[i]);
            } else if (out_t != nullptr) {
              out_t[te * static_cast<int>(p.out_s.time)] = from_float<T>(yf);
            }
            dD_acc = fmaf(dye, ume, dD_acc);
            dbias_acc += dpre;
            dm_acc = fmaf(u_raw, du, dm_acc);
          }
        }
      }
      if constexpr (!kTilePlanes) {  // this sub-tile's dB, dC out; the planes are free again after
        __syncthreads();
        flush(t0, s * kSub, std::integral_constant<int, kSub>{}, Sm::kSubPitch);
        __syncthreads();
      }
    }
    if constexpr (kTilePlanes) {
      __syncthreads();
      flush(t0, 0, std::integral_constant<int, kT>{}, kRedPitch);
    }
  }

  // dA: each lane owns (e, n0 … n0 + kNT − 1) of this batch row.
  const int64_t pb = p.param_grads_atomic ? 0 : kSegmented ? seg * p.batch + b : b;  // the partials' (segment, batch) row
  if (e_ok) {
    float* row = p.dA_part + (pb * p.dim + e0 + c) * N;
    if (p.param_grads_atomic) {
#pragma unroll
      for (int i = 0; i < kNT; ++i)
        if (n0 + i < N) atomicAdd(row + n0 + i, dA[i]);
    } else {
      store_states(row, dA, n0, N);
    }
  }
  // Per-channel sums over the channel's kSplit lanes, in a fixed order.
#pragma unroll
  for (int d = kSplit / 2; d >= 1; d /= 2) {
    dD_acc += __shfl_xor_sync(kFullMask, dD_acc, d);
    dbias_acc += __shfl_xor_sync(kFullMask, dbias_acc, d);
    dm_acc += __shfl_xor_sync(kFullMask, dm_acc, d);
  }
  if (sg == 0 && e_ok) {
    const int64_t o = pb * p.dim + e0 + c;
    if (p.dD_part != nullptr) put_param_grad(p.dD_part + o, dD_acc, p.param_grads_atomic);
    if (p.ddelta_bias_part != nullptr) put_param_grad(p.ddelta_bias_part + o, dbias_acc, p.param_grads_atomic);
    if (p.dmask_part != nullptr) put_param_grad(p.dmask_part + o, dm_acc, p.param_grads_atomic);
  }
}

// [Note: time-segmented backward] At small B·E every block of the backward walks all of L, so its
// time is one block's sequential latency whatever the width (PERF_NOTES, "Thirteenth session").
// The adjoint recurrence of pass 2, dh_t = dy_t·C_t + r and r = exp(Δ_t A)·dh_t, is affine in the r
// that enters a run of steps from the right: walking segment k's steps from r = 0 leaves g_k, and
// entering with r leaves g_k + P_k·r, P_k = Π exp(Δ_t A) over the segment. So this kernel forms
// (g_k, P_k) for every segment but the first (one exponential and two FMAs per (t, n); no states,
// no gradients), and the backward kernel runs the segments side by side (blockIdx.z), each from
// its saved chunk states (the forward's, as before) and the carry r = g + P·r composed over the
// later segments. The gradients of each step are those of the one walk up to the order of fp32
// operations in the carries; dA, dD, dΔ-bias and dmask get per-(segment, batch) partials.
// The autograd nodes' choice of segments: scan_params.h scan_backward_time_segments.
//
// The carry kernel: a block of kCarryChannels channels of one batch row and one segment walks the
// segment's steps backwards in groups of kCarryGroup. Per group, the block stages into shared memory
// each (t, e)'s Δ = softplus(δ + bias) and dy = dout·SiLU(z) (formed once per step, not per state;
// threads of consecutive channels read consecutive addresses of the channel-last layout) and C at the
// group's steps (once for the block, not per channel); the loads of the next group are issued before
// this group's walk. Then each channel's kCarryLanes lanes walk the group, a lane taking kCarryStates
// states (one shared (Δ, dy) and one C vector per step for four chains, which also run side by side).
// The first version formed (Δ, dy) per (t, n) (36 % of the segmented backward's time at 130M 75 %
// pruned, "Twenty-second session" trace); the second, a lane per state reading its own C and pair per
// step, issued about 15 instructions per (t, n) by a count of its operations (not profiled) and took
// 244 µs a layer for the dense-state backward's 3 carries at 130M 25 % pruned ("Twenty-eighth
// session"). The chain's fp32 operations per (t, n) —
// a = 2^(Δ·A·log2 e), dh = fma(dy, C, r), r = a·dh, P = P·a — are the first version's, in the same
// order: the same carries, bit for bit.
constexpr int kCarryThreads = 128;
constexpr int kCarryLanes = 4;   // lanes per channel
constexpr int kCarryStates = 4;  // states per lane
constexpr int kCarryChannels = kCarryThreads / kCarryLanes;
constexpr int kCarryGroup = 16;  // steps staged at a time
constexpr int kCarryPrepRows = kCarryThreads / kCarryChannels;        // threads per channel in the prep
constexpr int kCarryPrepSteps = kCarryGroup / kCarryPrepRows;         // steps each of them forms
constexpr int kCarryCLoads = kCarryGroup * kCarryLanes * kCarryStates / kCarryThreads;  // C values per thread
static_assert(kSeqMaxState <= kCarryLanes * kCarryStates && SeqEight::kMaxN <= kCarryLanes * kCarryStates &&
                  SeqQuad::kMaxN <= kCarryLanes * kCarryStates,
              "a chain per state of the segmented backwards' channels");
static_assert(kCarryStates == 4, "a lane reads its states' C as one float4");
static_assert(kCarryGroup % kCarryPrepRows == 0 && (kCarryGroup * kCarryLanes * kCarryStates) % kCarryThreads == 0,
              "the prep and the C staging split evenly");
template <typename T, class Flags>
__global__ void __launch_bounds__(kCarryThreads) selective_scan_seq_bwd_carry_kernel(SelectiveScanParams p) {
  constexpr bool kHasZ = Flags::kHasZ, kSoftplus = Flags::kSoftplus;
  constexpr int kStates = kCarryLanes * kCarryStates;
  __shared__ float2 s_step[kCarryGroup][kCarryChannels];  // (Δ, dy) of the group's steps, per channel
  __shared__ __align__(16) float s_C[kCarryGroup][kStates];  // C of the group's steps, per state
  const int N = static_cast<int>(p.dstate);
  const int tid = threadIdx.x;
  const int64_t e0 = int64_t(blockIdx.x) * kCarryChannels, b = blockIdx.y, k = int64_t(blockIdx.z) + 1;
  const int64_t per = p.segment_tiles * kSeqChunk;
  const int64_t t_begin = k * per, t_end = t_begin + per < p.len ? t_begin + per : p.len;
  // Walk role: channel ch, states n0 … n0 + kCarryStates − 1.
  const int ch = tid / kCarryLanes, n0 = (tid % kCarryLanes) * kCarryStates;
  const int64_t e = e0 + ch;
  const bool e_ok = e < p.dim;
  float A2[kCarryStates], r[kCarryStates], P[kCarryStates];
#pragma unroll
  for (int i = 0; i < kCarryStates; ++i) {
    A2[i] = e_ok && n0 + i < N ? p.A[e * N + n0 + i] * kLog2e : 0.f;
    r[i] = 0.f;
    P[i] = 1.f;
  }
  // Prep role: channel pc (consecutive threads, consecutive channels), steps pr, pr + kCarryPrepRows, …
  const int pc = tid % kCarryChannels, pr = tid / kCarryChannels;
  const bool pc_ok = e0 + pc < p.dim;
  const int64_t pe = pc_ok ? e0 + pc : 0;  // every formed address inside the tensors
  const float bias = p.delta_bias != nullptr && pc_ok ? p.delta_bias[pe] : 0.f;
  const T* const dl = static_cast<const T*>(p.delta) + b * p.delta_s.batch + pe * p.delta_s.row;
  const T* const go = static_cast<const T*>(p.dout) + b * p.dout_s.batch + pe * p.dout_s.row;
  const T* const zg = kHasZ ? static_cast<const T*>(p.z) + b * p.z_s.batch + pe * p.z_s.row : nullptr;
  const T* const Cg = static_cast<const T*>(p.Cm) + b * p.C_s.batch;
  struct Raw {  // one group's loads of this thread
    float delta[kCarryPrepSteps], dout[kCarryPrepSteps], z[kCarryPrepSteps], C[kCarryCLoads];
  };
  auto load = [&](int64_t g0, int count, Raw& v) {
#pragma unroll
    for (int i = 0; i < kCarryPrepSteps; ++i) {
      const int j = pr + i * kCarryPrepRows;
      v.delta[i] = v.dout[i] = v.z[i] = 0.f;
      if (pc_ok && j < count) {
        const int64_t t = g0 + j;
        v.delta[i] = to_float(dl[t * p.delta_s.time]);
        v.dout[i] = to_float(go[t * p.dout_s.time]);
        if constexpr (kHasZ) v.z[i] = to_float(zg[t * p.z_s.time]);
      }
    }
#pragma unroll
    for (int i = 0; i < kCarryCLoads; ++i) {
      const int m = tid + i * kCarryThreads, j = m / kStates, n = m % kStates;
      v.C[i] = j < count && n < N ? to_float(Cg[n * p.C_s.row + (g0 + j) * p.C_s.time]) : 0.f;
    }
  };
  auto group_start = [&](int64_t g_end) { return g_end - kCarryGroup > t_begin ? g_end - kCarryGroup : t_begin; };
  Raw raw;
  if (t_end > t_begin) load(group_start(t_end), static_cast<int>(t_end - group_start(t_end)), raw);
  for (int64_t g_end = t_end; g_end > t_begin; g_end -= kCarryGroup) {
    const int64_t g0 = group_start(g_end);
    const int count = static_cast<int>(g_end - g0);
    // This thread's steps of the group: Δ and dy as the backward's prep forms them.
    float x[kCarryPrepSteps], dy[kCarryPrepSteps], C[kCarryCLoads];
#pragma unroll
    for (int i = 0; i < kCarryPrepSteps; ++i) {
      x[i] = raw.delta[i] + bias;
      if constexpr (kSoftplus) x[i] = softplus_f(x[i]);
      dy[i] = raw.dout[i];
      if constexpr (kHasZ) dy[i] *= raw.z[i] * sigmoid_f(raw.z[i]);
    }
#pragma unroll
    for (int i = 0; i < kCarryCLoads; ++i) C[i] = raw.C[i];
    if (g0 > t_begin) load(group_start(g0), static_cast<int>(g0 - group_start(g0)), raw);  // the next group's
    __syncthreads();  // the previous group's walk has read the shared pieces
#pragma unroll
    for (int i = 0; i < kCarryPrepSteps; ++i) s_step[pr + i * kCarryPrepRows][pc] = make_float2(x[i], dy[i]);
#pragma unroll
    for (int i = 0; i < kCarryCLoads; ++i) {
      const int m = tid + i * kCarryThreads;
      s_C[m / kStates][m % kStates] = C[i];
    }
    __syncthreads();
    // Steps count − 1 … 0 of the group.
#pragma unroll
    for (int j = kCarryGroup - 1; j >= 0; --j) {
      if (j < count) {
        const float2 v = s_step[j][ch];
        const float4 c = *reinterpret_cast<const float4*>(&s_C[j][n0]);
        const float cv[kCarryStates] = {c.x, c.y, c.z, c.w};
#pragma unroll
        for (int i = 0; i < kCarryStates; ++i) {
          const float a = exp2f(v.x * A2[i]);
          const float dh = fmaf(v.y, cv[i], r[i]);
          r[i] = a * dh;
          P[i] *= a;
        }
      }
    }
  }
  if (e_ok) {
    const int64_t o = ((k - 1) * p.batch + b) * p.dim * N + e * N;
#pragma unroll
    for (int i = 0; i < kCarryStates; ++i)
      if (n0 + i < N) {
        p.carry_g[o + n0 + i] = r[i];
        p.carry_p[o + n0 + i] = P[i];
      }
  }
}

// Plan: SeqBwdPlan<one of the specs above>; Flags: ScanFlags (selective_scan_common.cuh).
template <class Tr, class Plan, typename T, class Flags>
void selective_scan_seq_bwd_run(const SelectiveScanParams& p) {
  // Deterministic partial slices are one block's channels: scan_slice_channels of the algorithm.
  static_assert(!Flags::kDeterministic || Tr::kCh == kSeqBwdChannels || Tr::kCh == kSeqEightLaneChannels,
                "deterministic slices are a block's channels");
  MCD_CHECK(!Flags::kDeterministic || scan_slice_channels(p.algorithm) == Tr::kCh, "selective scan: algorithm ",
            scan_algorithm_name(p.algorithm), " slices ", scan_slice_channels(p.algorithm), " channels, its blocks ",
            Tr::kCh);
  size_t smem = 0;
  SeqBwdSmem<Tr, T>::carve(nullptr, static_cast<int>(p.dstate), Plan::kTilePlanes, Plan::kDense, Plan::kSmemSums,
                            &smem);
  // Time segments: the eight-lane, segmented and dense-state algorithms' only
  // (scan_algorithm_takes_time_segments), as many as the host's scan_time_segments gives, with carry
  // buffers. (kStateSequential's backward compiles its segmented kernel for kStateSequentialSegmented,
  // and refuses segments of its own; kStateSequentialOneWave takes none.)
  constexpr bool kCanSegment = std::is_same_v<Tr, SeqEight> || std::is_same_v<Plan, SeqBwdPlan<SeqBwdFourPerSm>> ||
                               Plan::kDense;
  MCD_CHECK(p.segments == 1 || (kCanSegment && p.segments == scan_time_segments(p.len, p.segments) &&
                                 p.segment_tiles == scan_tiles_per_time_segment(p.len, p.segments) &&
                                 p.carry_g != nullptr && p.carry_p != nullptr),
            "selective scan: ", p.segments, " time segments over L = ", p.len, " for ",
            scan_algorithm_name(p.algorithm),
            " (each a non-empty run of tiles, with carry buffers; the eight-lane, segmented and dense-state",
            " algorithms only)");
  const dim3 grid(static_cast<unsigned>((p.dim + Tr::kCh - 1) / Tr::kCh), static_cast<unsigned>(p.batch),
                  static_cast<unsigned>(p.segments));
  if constexpr (kCanSegment) {
    if (p.segments > 1) {
      // The carries first: kCarryLanes lanes per channel (N ≤ kSeqMaxState ≤ kCarryLanes: the launch checked
      // scan_algorithm_supports), a grid row per batch row, a layer per segment but the first.
      const dim3 carry_grid(static_cast<unsigned>((p.dim + kCarryChannels - 1) / kCarryChannels),
                            static_cast<unsigned>(p.batch), static_cast<unsigned>(p.segments - 1));
      selective_scan_seq_bwd_carry_kernel<T, Flags><<<carry_grid, kCarryThreads, 0, p.stream>>>(p);
      MCD_CUDA_CHECK(cudaGetLastError());
      launch_with_smem(&selective_scan_seq_bwd_kernel<Tr, Plan, T, Flags, true>, grid, Tr::kThreads, smem, p.stream, p);
      return;
    }
  }
  launch_with_smem(&selective_scan_seq_bwd_kernel<Tr, Plan, T, Flags>, grid, Tr::kThreads, smem, p.stream, p);
}

}  // namespace mcd::ops::cuda
