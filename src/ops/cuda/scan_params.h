// Parameters of one selective-scan call on CUDA, forward and backward: sizes, 64-bit strides,
// raw pointers and flags, filled by the host op (ops/cuda/selective_scan_cuda.cpp) and read by
// the kernels (ops/cuda/selective_scan_{fwd,bwd}.cuh). See [Note: scan kernel layout] in
// docs/PERF_NOTES.md for the work split.
#pragma once

#include "ops/cuda/params_common.h"
#include "ops/options.h"  // ScanPlan (torch-free)

namespace mcd::ops::cuda {

constexpr int kScanChunk = 128;     // time-parallel algorithms: timesteps per chunk (one saved state each)
constexpr int kScanChannels = 8;    // time-parallel algorithms: channels per block (the dB/dC partial slices)
constexpr int kScanMaxState = 64;   // largest N the kernels accept (shared memory bound)
constexpr int kSeqChunk = 32;       // state-sequential: timesteps per tile (and per saved state, sparse plans)
constexpr int kSeqSub = 8;          // state-sequential: backward sub-tile (the dense plan saves a state each)
constexpr int kSeqBwdChannels = 32;  // state-sequential: channels per backward block (dB/dC partial slices)
constexpr int kSeqEightLaneChannels = 16;  // kStateSequentialEightLanes: channels per block (its partial slices)
constexpr int kSeqMaxState = 16;     // state-sequential algorithms take N ≤ 16
constexpr int kSeqFatBlocksPerSm = 3;  // one-wave backwards: blocks per SM (≤ 168 registers)
constexpr int kScanBlockMaxState = 16;  // the block forward takes N ≤ 16 (the chunk-start states in registers)

// The production scan algorithms (a forward and a backward kernel that agree on the saved states).
// The numbers are the kernel-lab versions they were in docs/PERF_NOTES.md, whose other versions
// were removed (the notes keep their measurements). See [Note: scan algorithm choice].
enum class ScanAlgorithm : int {
  kTimeParallel = 0,   // (5) 16 lanes per channel scan a 128-step chunk over time; any N ≤ 64
  kTimeParallelWide,   // (6) the same with 32 lanes per channel: more threads for few channels
  kStateSequential,    // (8) each of 4 lanes walks time with 4 of the channel's states (N ≤ 16),
                       //     a state saved every 32 steps; backward at four blocks per SM
  kStateSequentialOneWave,  // (11) kStateSequential's forward; backward at three blocks per SM
                            //      (fits one wave when B·⌈E/32⌉ ≤ 3·SMs), keeping exp(ΔA) for the walk
  kStateSequentialDense,    // (12) as kStateSequentialOneWave, with a state saved every 8 steps
                            //      (4× the saved-state memory), so the backward runs no pass 1; in time
                            //      segments where its blocks fill a wave badly (dense_backward_time_segments)
  kStateSequentialEightLanes,  // (53) 8 lanes per channel with 2 states each, forward and backward (six
                               //      80-register backward blocks per SM): twice the warps of the
                               //      four-lane kernels, for B·E that leave the GPU under-occupied
  kStateSequentialSegmented,   // kStateSequentialEightLanes' forward (a state saved every 32 steps, the
                               //      layout kStateSequential's backward reads) with kStateSequential's
                               //      four-lane backward run in time segments: at small B·E the
                               //      segments, not more lanes, give the backward its blocks
  kBlockForward,  // (20) forward only, inference: a block of warps per channel splits its time
                  //      (selective_scan_block_fwd.cuh); N ≤ 16, time-contiguous operands
  kBlockForwardStaged,  // (45) kBlockForward with each chunk's B and C staged in shared memory, for
                        //      16-bit vector operands whose blocks all fit at once (otherwise it runs
                        //      kBlockForward's kernels); not chosen by default (not yet faster)
};
constexpr int kScanAlgorithmCount = 9;
// The algorithms with a backward are 0 … kTrainableScanAlgorithmCount − 1; the block forwards have none.
constexpr int kTrainableScanAlgorithmCount = 7;
inline bool scan_algorithm_has_backward(ScanAlgorithm a) { return static_cast<int>(a) < kTrainableScanAlgorithmCount; }

inline const char* scan_algorithm_name(ScanAlgorithm a) {
  switch (a) {
    case ScanAlgorithm::kTimeParallel: return "time_parallel";
    case ScanAlgorithm::kTimeParallelWide: return "time_parallel_wide";
    case ScanAlgorithm::kStateSequential: return "state_sequential";
    case ScanAlgorithm::kStateSequentialOneWave: return "state_sequential_one_wave";
    case ScanAlgorithm::kStateSequentialDense: return "state_sequential_dense";
    case ScanAlgorithm::kStateSequentialEightLanes: return "state_sequential_eight_lanes";
    case ScanAlgorithm::kStateSequentialSegmented: return "state_sequential_segmented";
    case ScanAlgorithm::kBlockForward: return "block_forward";
    case ScanAlgorithm::kBlockForwardStaged: return "block_forward_staged";
  }
  return "?";
}
inline bool scan_algorithm_is_sequential(ScanAlgorithm a) {
  return a == ScanAlgorithm::kStateSequential || a == ScanAlgorithm::kStateSequentialOneWave ||
         a == ScanAlgorithm::kStateSequentialDense || a == ScanAlgorithm::kStateSequentialEightLanes ||
         a == ScanAlgorithm::kStateSequentialSegmented;
}
// Whether an algorithm takes N states (the state-sequential ones hold N ≤ kSeqMaxState in registers).
inline bool scan_algorithm_supports(ScanAlgorithm a, int64_t dstate) {
  if (a == ScanAlgorithm::kBlockForward || a == ScanAlgorithm::kBlockForwardStaged)
    return dstate >= 1 && dstate <= kScanBlockMaxState;
  return dstate >= 1 && dstate <= (scan_algorithm_is_sequential(a) ? kSeqMaxState : kScanMaxState);
}

// Below kBlockFwdStagedMinChannels channels (B·E), kBlockForwardStaged runs the block forward with eight
// warps per channel where all their blocks fit at once (BlockFwdEightWarps, since the fortieth session), else
// four (BlockFwdManyWaves; selective_scan_block_fwd.cuh): one warp per channel walking the whole
// chunk leaves the SMs short of warps there, more splitting its time win (dev/scan_lab, H100, bf16, B = 1,
// L = 4096, µs, nineteenth session: E = 384 39.9 against 64.8 for the staged version 45, E = 512 42.4 against
// 65.3). The pruned models' prefill widths: 130M at 75 % 384, 370M at 75 % 512, 130M at 50 % 768.
// From 768 on the staged kernels: since their B and C are staged by fixed columns (thirty-third session) the
// staged version 79 beats every narrower configuration at E = 768 (dev/scan_lab/narrow_variants.cu, H100,
// thirty-ninth session, two rounds: 72.9 / 71.8 µs against 77.9 / 77.9 for two warps per channel, version 30,
// which ran there in the thirty-eighth session, and 87.2 / 87.4 for BlockFwdManyWaves; at E = 512 version 34
// stays the fastest, 48.4 / 48.9 against 61.9 / 61.7). In the model: 130M half-width 1 x 4096 graph prefill
// 3.115 → 3.043 ms, 0.758 → 0.743 of dense (docs/results/2026-12-07h_staged_at_768/).
constexpr int64_t kBlockFwdStagedMinChannels = 768;

// [Note: scan algorithm choice] The one place an algorithm is chosen, once per forward call by the
// host op (from the shape and the device's SM count); the autograd node keeps the choice for the
// backward. Every algorithm has a deterministic backward (dB/dC partials summed in slice order),
// so deterministic mode never changes the choice.
// - N ≤ 16 and 2560 ≤ B·E ≤ 6144 (pruned widths: 130M at 75 % is B·E = 3,072, 370M 4,096, 130M
//   at 50 % 6,144): kStateSequentialEightLanes. The four-lane kernels give such widths fewer than
//   two 32-channel blocks per SM; eight lanes of two states double the warps. dev/scan_lab on an
//   H200 (fp32, L = 2048, N = 16, fwd / bwd µs; PERF_NOTES "Thirteenth session"): at B·E = 3,072
//   its forward 207 against 270 (time-parallel, the choice before) and the eight-lane backward (lab
//   version 10) 603 against 620; 4,096: 208 / 601 against dense's 326 / 625; 6,144: 236 / 698
//   against 414 / 775. The 8 × 2048 training step (`profile`, bf16, same process as dense): 130M
//   at 75 % 44.5 → 39.9 ms, at 50 % 49.3 → 46.9, 370M at 75 % 80.2 → 78.7. At B·E = 8,192 the lab
//   still favoured it (fwd+bwd 1,125 against 1,190) but 370M's step at 50 % went 102.7 → 107.0 ms, and
//   at 12,288 (the dense 130M step) the four-lane kernels win in the lab too, so from 6,145 on the
//   four-lane choices below stay.
// - Other B·E < 4096 (the state-sequential kernels' 32-channel blocks cannot fill the GPU):
//   kTimeParallelWide below B·E = 2560, else kTimeParallel; for any N > 16 the same two, split at
//   B·E = 4096. Measured on an H200 with dev/scan_lab (fwd+bwd, L = 2048, N = 16; PERF_NOTES):
//   B·E = 2048 wide 725 µs / time-parallel 817 / dense 944.
// - Otherwise kStateSequentialDense when the backward's 32-channel blocks fit one wave at three
//   per SM (B·⌈E/32⌉ ≤ 3·SMs; the GPU is under-occupied, so the backward takes the registers of a
//   three-block SM and the forward saves 4× the states so that nothing is recomputed twice);
//   kStateSequential when there are more blocks than that (four 128-register blocks per SM).
// - ScanPlan::kLowMemory replaces kStateSequentialDense by kStateSequentialOneWave: the same
//   backward occupancy without the dense states (130M at 8 × 2048: ~3.6 GB less for ~4 % time).
//   kStateSequentialEightLanes saves a state every 32 steps, as kStateSequentialOneWave, under
//   either plan.
// - Within that range, kStateSequentialSegmented (the same forward, the four-lane backward in 4 time
//   segments) at B·E ≤ kNarrowFourLanesMaxWidth, kStateSequentialEightLanes above — the ops option
//   scan_narrow_backward's auto (ops/options.h); eight_lanes forces the eight-lane backward across the
//   range, four_lanes the segmented algorithm at every B·E ≥ 2,560 (above 6,144 too, in place of the
//   dense-state and four-lane algorithms: the A/B switch for the widths where those leave SMs idle, such
//   as 130M at 25 %, B·E = 9,216: 288 dense-state blocks fill 0.73 of a wave; measured there in the
//   twenty-sixth session, H200: the pruned step 58.5 against 55.0 ms under auto, so auto keeps dense-state).
//   The 8 × 2048 training step, dense vs pruned, one process per option, two rounds each (H200,
//   twenty-fifth session; PERF_NOTES): 370M 75 % (B·E = 4,096) 0.4500 / 0.4503 of dense with eight
//   lanes against 0.4178 / 0.4180 with four; 130M 75 % (3,072) 0.5436 / 0.5434 against 0.5224 / 0.5221;
//   130M 50 % (6,144) 0.7380 / 0.7380 against 0.7428 / 0.7429, so eight lanes stay above 4,096.
// sm_count 0 (unknown) never picks the one-wave algorithms.
constexpr int64_t kNarrowFourLanesMaxWidth = 4096;
inline ScanAlgorithm choose_scan_algorithm(int64_t batch, int64_t dim, int64_t dstate, int sm_count, ScanPlan plan,
                                           NarrowScanBackward narrow = NarrowScanBackward::kAuto) {
  if (dstate > kSeqMaxState)
    return batch * dim < 4096 ? ScanAlgorithm::kTimeParallelWide : ScanAlgorithm::kTimeParallel;
  // Forced four lanes reach past the narrow widths too (an A/B switch at the 130M 25 % width: loses there).
  if (narrow == NarrowScanBackward::kFourLanes && batch * dim >= 2560) return ScanAlgorithm::kStateSequentialSegmented;
  if (batch * dim >= 2560 && batch * dim <= 6144)
    return narrow == NarrowScanBackward::kAuto && batch * dim <= kNarrowFourLanesMaxWidth
               ? ScanAlgorithm::kStateSequentialSegmented
               : ScanAlgorithm::kStateSequentialEightLanes;
  if (batch * dim < 4096)
    return batch * dim < 2560 ? ScanAlgorithm::kTimeParallelWide : ScanAlgorithm::kTimeParallel;
  const int64_t blocks = batch * ((dim + kSeqBwdChannels - 1) / kSeqBwdChannels);
  if (blocks > int64_t(kSeqFatBlocksPerSm) * sm_count) return ScanAlgorithm::kStateSequential;
  return plan == ScanPlan::kLowMemory ? ScanAlgorithm::kStateSequentialOneWave : ScanAlgorithm::kStateSequentialDense;
}

// An inference forward (no saved states, so no backward to agree with) takes the fastest forward
// alone:
// - kBlockForwardStaged when every (B, E, L) and (B, N, L) operand is time-contiguous (the layout of
//   the model's channel-major prefill, model/mamba.h), N ≤ 16 and B·E < 4096: the other algorithms
//   leave most SMs idle there [measured: docs/PERF_NOTES.md, "Sixth session"]. Its B and C rows
//   staged in shared memory took (1, 4096, 1536) bf16 from 114.8 / 115.9 µs (kBlockForward) to
//   107.4 / 108.7 µs (H200, "Tenth session"); where its blocks do not fit one wave, or the rows are
//   not 16-bit vectors, it runs kBlockForward's own configurations.
// - Otherwise, where the pair's choice is kTimeParallelWide for N ≤ 16 and 1024 ≤ B·E < 2560 (a
//   prefill at B = 1 in the channel-last layout: 130M's E = 1536, 370M's 2048), kTimeParallel,
//   whose 16 lanes × 8 steps need fewer scan levels per step: bench_ops on an H200,
//   (1, 4096, 1536), two runs in one call: forward 390.1 / 381.4 µs against 495.0 / 473.3 µs (the
//   backward favours wide: fwd+bwd 1,562 / 1,521 against 1,661 / 1,622 µs, so training keeps it).
//   Unmeasured elsewhere, so unchanged there.
inline ScanAlgorithm choose_scan_forward_algorithm(int64_t batch, int64_t dim, int64_t dstate, int sm_count,
                                                   ScanPlan plan, bool time_contiguous) {
  if (time_contiguous && dstate <= kScanBlockMaxState && batch * dim < 4096) return ScanAlgorithm::kBlockForwardStaged;
  // (The narrow widths' backward choice does not matter here: both run the eight-lane forward.)
  const ScanAlgorithm a = choose_scan_algorithm(batch, dim, dstate, sm_count, plan, NarrowScanBackward::kEightLanes);
  const bool prefill_like = dstate <= kSeqMaxState && batch * dim >= 1024;
  return a == ScanAlgorithm::kTimeParallelWide && prefill_like ? ScanAlgorithm::kTimeParallel : a;
}

// Timesteps between the saved states, and channels per dB/dC partial slice, of an algorithm: the
// forward and backward must agree, and the host allocates by them.
inline int64_t scan_state_chunk(ScanAlgorithm a) {
  return a == ScanAlgorithm::kStateSequentialDense ? kSeqSub : scan_algorithm_is_sequential(a) ? kSeqChunk : kScanChunk;
}
inline int64_t scan_slice_channels(ScanAlgorithm a) {
  if (a == ScanAlgorithm::kStateSequentialEightLanes) return kSeqEightLaneChannels;
  return scan_algorithm_is_sequential(a) ? kSeqBwdChannels : kScanChannels;
}
// Which backward takes time segments (ScanBackwardOptions::time_segments): the eight-lane one, the
// segmented one and the dense-state one, the algorithms whose blocks can leave SMs idle while one block's
// walk over L is the whole time.
inline bool scan_algorithm_takes_time_segments(ScanAlgorithm a) {
  return a == ScanAlgorithm::kStateSequentialEightLanes || a == ScanAlgorithm::kStateSequentialSegmented ||
         a == ScanAlgorithm::kStateSequentialDense;
}
// The backward's time segments the autograd nodes ask for: 8 for the eight-lane backward at
// B·E ≤ 4,096, 4 for the segmented one, the dense-state one's by its wave fill (below), else 1.
// bench_ops, model layout with the pruned models' own dt_rank, fwd+bwd µs (the forward, ~190 µs, walks
// once):
//   first carry kernel (Δ and dy formed per (t, n); H200, fourteenth session): (8, 2048, 384, R 48)
//   — 130M with 75 % of its channels pruned — one walk 795, 4 segments 698, 8 704; (8, 2048, 512,
//   R 64) — 370M at 75 % — 796 against 844 / 850.
//   second carry kernel (Δ and dy once per (t, e); H100, twenty-third session): E = 384 one walk
//   810.5, segments 2 / 4 / 8: 773.9 / 653.4 / 636.8; E = 512 801.2 against 860.8 / 773.8 / 740.1;
//   (8, 2048, 768, R 48) — 130M at 50 % — 925.4 against 1,058.0 / 1,068.3 / 1,015.1 (one walk).
// The forward's segments lost everywhere measured (184 → 249 µs at 3,072), so the forward walks once.
// kStateSequentialSegmented (chosen at B·E ≤ 4,096, or anywhere in the range under four_lanes) asks for
// 4, which at B·E = 4,096 gives its four-lane backward 512 32-channel blocks, about one wave at four per
// SM — the occupancy of the dense 370M step's backward, whose whole walk over L = 2,048 takes ~1,230 µs
// (H100); predicted ~¼ of that plus the carry pass against ~550 µs for the eight-lane backward in 8;
// measured in the 370M 75 % step: −4.8 ms, 48 layers × ~99 µs (H100, twenty-fourth session).
// kStateSequentialDense (chosen where its B·⌈E/32⌉ blocks fit one wave at kSeqFatBlocksPerSm per SM):
// a block's walk takes longer on an SM holding three than on one holding two (H100, bench_ops fwd+bwd
// minus fwd, 8 × 2048: 884 µs at E = 1,152 — 288 blocks, 24 SMs with three — against 744 at E = 1,024,
// 256 blocks, two per SM at most), and the most loaded SM sets the kernel's time. So where the one walk
// puts a third block on some SMs but fills under 3/4 of the wave (130M at 25 % pruned: 288 of 396 slots on
// 132 SMs), s segments make s·blocks blocks of 1/s of the walk each in ⌈s·blocks / slots⌉ full waves:
// dense_backward_time_segments takes the s ≤ 4 with the fewest walks ⌈s·blocks / slots⌉ / s, and only
// when that is at most 0.8 of the one walk (the carry pass must be paid for): 288 blocks → 4 segments in
// 3 waves (measured fwd+bwd 1,201 → 1,142 µs with the third carry kernel, "Twenty-eighth session"). At
// two blocks per SM or fewer (256: 370M at 50 % pruned) splitting lost at every count (1,020 against
// 1,053–1,098 µs), and 384 (dense 130M) needs 4 waves for 4 segments: one walk both.
// sm_count 0 (unknown): 1.
inline int64_t dense_backward_time_segments(int64_t batch, int64_t dim, int sm_count) {
  const int64_t blocks = batch * ((dim + kSeqBwdChannels - 1) / kSeqBwdChannels);
  const int64_t slots = int64_t(kSeqFatBlocksPerSm) * sm_count;
  if (slots <= 0 || blocks <= 2 * int64_t(sm_count)) return 1;
  const int64_t one = (blocks + slots - 1) / slots;  // waves of one walk each
  int64_t best = 1, best_waves = one;                 // a split's time: waves / segments walks
  for (int64_t s = 2; s <= 4; ++s) {
    const int64_t waves = (s * blocks + slots - 1) / slots;
    if (waves * best < best_waves * s) best = s, best_waves = waves;  // waves/s < best_waves/best
  }
  return 5 * best_waves <= 4 * one * best ? best : 1;  // at most 0.8 of the one walk's time
}
inline int64_t scan_backward_time_segments(ScanAlgorithm a, int64_t batch, int64_t dim, int sm_count) {
  if (a == ScanAlgorithm::kStateSequentialSegmented) return 4;
  if (a == ScanAlgorithm::kStateSequentialDense) return dense_backward_time_segments(batch, dim, sm_count);
  return a == ScanAlgorithm::kStateSequentialEightLanes && batch * dim <= 4096 ? 8 : 1;
}
// The state-sequential backward's time segments when `wanted` are asked for over len steps: runs of
// tiles_per_time_segment whole kSeqChunk tiles, as many as make every segment non-empty (≤ wanted).
inline int64_t scan_tiles_per_time_segment(int64_t len, int64_t wanted) {
  const int64_t tiles = (len + kSeqChunk - 1) / kSeqChunk;
  const int64_t w = wanted < 1 ? 1 : wanted;
  return tiles < 1 ? 1 : (tiles + w - 1) / w;
}
inline int64_t scan_time_segments(int64_t len, int64_t wanted) {
  const int64_t tiles = (len + kSeqChunk - 1) / kSeqChunk;
  const int64_t per = scan_tiles_per_time_segment(len, wanted);
  return tiles < 1 ? 1 : (tiles + per - 1) / per;
}
// Saved states per channel over len steps, and dB/dC partial slices over dim channels.
inline int64_t scan_state_count(ScanAlgorithm a, int64_t len) {
  return (len + scan_state_chunk(a) - 1) / scan_state_chunk(a);
}
inline int64_t scan_slice_count(ScanAlgorithm a, int64_t dim) {
  return (dim + scan_slice_channels(a) - 1) / scan_slice_channels(a);
}

struct SelectiveScanParams {
  DType dtype = DType::kFloat32;
  int64_t batch = 0, dim = 0, len = 0, dstate = 0;  // B, E, L, N
  ScanAlgorithm algorithm = ScanAlgorithm::kTimeParallel;  // chosen by the host op (choose_scan_algorithm)
  int64_t n_chunks = 0;  // ceil(L / scan_state_chunk(algorithm)): saved states per channel

  // Inputs in `dtype`, any strides. z may be null.
  const void* u = nullptr;      Strides3 u_s;      // (B, E, L)
  const void* delta = nullptr;  Strides3 delta_s;  // (B, E, L), before bias and softplus
  const void* z = nullptr;      Strides3 z_s;      // (B, E, L)
  const void* Bm = nullptr;     Strides3 B_s;      // (B, N, L)
  const void* Cm = nullptr;     Strides3 C_s;      // (B, N, L)
  // fp32, contiguous. D, delta_bias and mask may be null.
  const float* A = nullptr;           // (E, N)
  const float* D = nullptr;           // (E)
  const float* delta_bias = nullptr;  // (E)
  const float* mask = nullptr;        // (E): u' = mask ⊙ u feeds the scan and the D skip
  bool delta_softplus = true;
  bool deterministic = false;  // backward: dB/dC through per-slice partials, no atomics

  // Forward outputs. In the backward, a non-null out receives the forward's output again
  // (recomputed from the saved states), for callers that do not keep it.
  void* out = nullptr;  Strides3 out_s;  // (B, E, L) in dtype
  float* states = nullptr;       // (B, E, n_chunks, N) state at each chunk start, or null
  float* last_state = nullptr;   // (B, E, N) h_L, or null

  // Backward: dout in, gradients out. `states` must hold the forward's chunk-start states.
  const void* dout = nullptr;  Strides3 dout_s;  // (B, E, L)
  void* du = nullptr;          Strides3 du_s;
  void* ddelta = nullptr;      Strides3 ddelta_s;
  void* dz = nullptr;          Strides3 dz_s;    // null when z is
  float* dB = nullptr;         // (B, N, L) fp32; zero-filled by the host in atomic mode
  float* dC = nullptr;         // (B, N, L) fp32
  float* dB_part = nullptr;    // deterministic: (ceil(E / scan_slice_channels(algorithm)), B, N, L)
  float* dC_part = nullptr;
  // dA, dD, dΔ-bias, dmask: per-(segment, batch) partials (segments·B, E, N) / (segments·B, E)
  // summed by the host in a fixed order, or (param_grads_atomic, the non-deterministic default) one
  // zero-filled (E, N) / (E) row that every batch adds into atomically.
  bool param_grads_atomic = false;
  float* dA_part = nullptr;
  float* dD_part = nullptr;
  float* ddelta_bias_part = nullptr;
  float* dmask_part = nullptr;
  // The backwards that take time segments (scan_algorithm_takes_time_segments): the time split into
  // `segments` runs of whole kSeqChunk tiles (scan_time_segments), walked side by side, each entering
  // with the adjoint the later ones pass it. carry_g / carry_p: (segments − 1, B, E, N) fp32, written
  // by a first kernel for segments 1 … segments − 1 (selective_scan_seq_bwd.cuh, [Note: time-segmented
  // backward]). (A forward split the same way lost at every width measured: docs/PERF_NOTES.md,
  // "Fourteenth session".)
  int64_t segments = 1;
  int64_t segment_tiles = 0;  // tiles per segment: scan_tiles_per_time_segment(len, segments)
  float* carry_g = nullptr;
  float* carry_p = nullptr;

  cudaStream_t stream = nullptr;  // LibTorch's current stream, passed by the host op
};

// Launch on p.stream and check the launch; throw mcd::Error on a CUDA error.
void selective_scan_fwd(const SelectiveScanParams& p);
void selective_scan_bwd(const SelectiveScanParams& p);

}  // namespace mcd::ops::cuda
