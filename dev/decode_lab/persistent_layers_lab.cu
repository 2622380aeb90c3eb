// The batch-64 decode step's Mamba layers as ONE persistent kernel (a lab; no LibTorch), against the library's
// chain of six kernels per layer (add_norm, cuBLAS in_proj, conv step, x_proj on cuBLAS or narrow_linear, the scan
// step with dt_proj inside, cuBLAS out_proj) on the same weights, both replayed from CUDA graphs.
//
// Why: at batch 64 a 130M token is ~0.77 ms (H200) for ~0.56 GB of weights and states (a ~0.12 ms traffic floor);
// each of the ~145 kernels per token does a few µs of latency-bound work (cuBLAS's products take ~4.5 µs at any of
// the layer's sizes; three own products never beat them at in_proj / out_proj). The weights never depend on the
// token, so a kernel that lives through all layers can request layer l's weight slices (and its states) while layer
// l − 1 still computes, and pays only its arithmetic and the synchronisation between phases.
//
// Layout: G clusters of 8 blocks, one block per SM, 256 threads at 130M and 384 at 370M (so a thread's share of the
// states stays ~3 × 16 registers), 150 / 211 KB of shared memory each (G = 16 where they can all be resident, 15 on
// an H100 80GB HBM3; at 130M 12 is timed too). Block b of B = 8G owns channels [b·E/B, (b + 1)·E/B), rank r of
// cluster q the inner slice [KS·r, KS·(r + 1)) (KS = E / 8) and cluster q out_proj's 8-column tiles
// [q·(D/8)/G, (q + 1)·(D/8)/G). Warps: 4 row tiles × (warps / 4) column groups, no split of K (nothing to add up
// between warps). Per layer, four phases separated by grid barriers:
//   1 rows:     block m < 64: residual[m] += hidden[m]; h[m] = rmsnorm(residual[m])·w            → h (global)
//   2 channels: in_proj's x and z columns of the block's channels over h, staged in K-chunks of 128 (two buffers;
//               tensor cores), then the conv step of those channels (conv state in registers)  → xc (global)
//   3 x_proj:   each cluster forms all of x_dbl (rank r: its inner slice; partial products meet over distributed
//               shared memory — rank r adds rows [8r, 8r + 8) and writes the sums back into every rank, in place),
//               then dt_proj + softplus and the state update of the block's channels (state in registers, loaded a
//               layer ahead), D skip, SiLU(z) gate                                                → y (global)
//   4 out_proj: rank r's inner slice of y against the cluster's columns, partial products meet over DSMEM → hidden
// The intermediates are rounded to bf16 where the library's kernels write bf16 (xz, xc, x_dbl, y, out, h), so the
// float64 reference below (same rounding points) differs only by fp32 summation order and fast exp.
// Inputs as a library op would take them: a table of per-layer pointers in the kernel's parameters (the model's
// weights and each layer's conv / SSM state, used in place), the token ids with the embedding table, 1–64 rows.
// Weight slices are requested with cp.async a phase or more ahead: in_proj's at phase 3 of the layer before,
// x_proj's at the end of phase 2, out_proj's in phase 3 once x_proj's products are done; the SSM and conv states
// into registers right after the previous layer's scan.
//
// Predictions: a grid barrier ≤ 1.5 µs; the 24 (48) layers ≤ 0.5× the library chain's time at 130M (370M), i.e. a
// 130M batch-64 token ≤ ~0.4 ms with the embedding and head (mamba-ssm: ~0.85 ms). Measured on an H100 (thirty-seventh
// session, docs/results/2026-12-07d_persistent_layers/): a barrier 1.64 µs; the best variant 1.24× (130M) and 1.30×
// (370M) the chain's time — failed; ~20 µs of a 35 µs 130M layer is synchronisation (sub-phase stamps, Nsight Compute).
//
//   nvcc -std=c++17 -O3 -arch=sm_90 -lineinfo --expt-relaxed-constexpr -I src -I dev dev/decode_lab/persistent_layers_lab.cu \
//        src/ops/cuda/decode_step.cu dev/gemm_lab/narrow_linear.cu src/ops/cuda/add_norm.cu -lcublas \
//        -o persistent_layers_lab
//   ./persistent_layers_lab [--reps N] [--check-layers L]
#include <cooperative_groups.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "decode_lab/graph_timing.cuh"
#include "decode_lab/library_chain.cuh"
#include "gemm_lab/narrow_linear_params.h"
#include "ops/cuda/add_norm_params.h"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_step_params.h"
#include "ops/cuda/mma_bf16.cuh"

namespace {

using bf16 = __nv_bfloat16;
namespace cu = mcd::ops::cuda;
namespace cg = cooperative_groups;

constexpr int kRows = 64, kPad = 8;
constexpr int kConvW = 4;  // conv width; the state keeps the newest kConvW − 1 inputs

// kThreads: 256 at 130M; 384 at 370M, so each thread's share of the (row, channel) states stays ~3 × 16 registers.
struct Shape130M {
  static constexpr int D = 768, E = 1536, N = 16, R = 48, L = 24, kThreads = 256;
  static constexpr const char* name = "130M";
};
struct Shape370M {
  static constexpr int D = 1024, E = 2048, N = 16, R = 64, L = 48, kThreads = 384;
  static constexpr const char* name = "370M";
};

// kCluster blocks per cluster, kBlocks in all: as many clusters of 8 as can be resident at once (an H100 80GB HBM3
// holds 15 with this kernel's shared memory, not 16; the host asks). Block b owns channels [b·E/kBlocks,
// (b + 1)·E/kBlocks) (at most C), cluster q out_proj's 8-column tiles [q·TD/kClusters, (q + 1)·TD/kClusters).
// Warps: 4 row tiles × G column groups (G = warps / 4); group g takes the 8-column tiles nt ≡ g (mod G).
template <class S, int kClusterSize, int kBlockCount>
struct Dims {
  static constexpr int kCluster = kClusterSize, kBlocks = kBlockCount, kClusters = kBlocks / kCluster;
  static constexpr int kThreads = S::kThreads, kGroups = kThreads / 128;
  static constexpr int D = S::D, E = S::E, N = S::N, R = S::R;
  static constexpr int C = (E + kBlocks - 1) / kBlocks;  // channels per block, at most
  static constexpr int NTI = (2 * C + 7) / 8;             // in_proj's 8-column tiles: x columns, z columns, unused
  static constexpr int LDZ = 8 * NTI;
  static constexpr int XN = R + 2 * N;     // x_proj's outputs
  static constexpr int KS = E / kCluster;  // a rank's inner slice (x_proj, out_proj)
  static constexpr int TD = D / 8;                               // out_proj's 8-column tiles
  static constexpr int NTO = (TD + kClusters - 1) / kClusters;   // per cluster, at most
  static constexpr int OC = 8 * NTO;                             // out_proj's columns per cluster, at most
  static constexpr int KC = 128, LDC = KC + kPad;                // in_proj's h staged in K-chunks of 128, two buffers
  static constexpr int LDH = D + kPad, LDK = KS + kPad;  // smem row strides (bf16): rows 16 B apart mod 128 B
  static constexpr int PAIRS = (kRows * C + kThreads - 1) / kThreads;  // (row, channel) pairs per thread, at most
  static constexpr int NTD = (C + 7) / 8, LDR = R + kPad;  // dt_proj's 8-column tiles; x_dbl[:, :R]'s bf16 stride
  static_assert(kRows % kCluster == 0 && kThreads % 128 == 0, "rows shared by the ranks, 4 row tiles per group");
  static_assert(E % kCluster == 0 && XN % 8 == 0 && D % KC == 0, "tile sizes");
  static_assert(KS % 16 == 0 && N == 16, "splits");
  static constexpr size_t mx(size_t a, size_t b) { return a > b ? a : b; }
  static constexpr size_t pad16(size_t b) { return (b + 15) / 16 * 16; }
  // Shared memory (bytes), every region 16-byte aligned:
  //   work: phase 2 two h chunks; phases 3 and 4 the (64, KS) slice of xc or y
  //   XD:   phase 2 in_proj's output; phase 3 the cluster's x_proj partial products, then (in place) x_dbl;
  //         phase 4 out_proj's partial products
  // (phase 3, after x_proj's products, kDtMma: x_dbl[:, :R] as bf16 (64, LDR), then dt (64, 8·NTD) fp32)
  static constexpr size_t oDT = pad16(size_t(kRows) * LDR * 2);
  static constexpr size_t kWork = mx(mx(size_t(2) * kRows * LDC * 2, size_t(kRows) * LDK * 2),
                                     oDT + size_t(kRows) * 8 * NTD * 4);
  static constexpr size_t oXD = 0 + kWork;
  static constexpr size_t kXD = size_t(kRows) * mx(mx(XN, LDZ), OC) * 4;
  static constexpr size_t oWin = oXD + kXD;                    // (LDZ, LDH) bf16: x rows, z rows of the block's channels
  static constexpr size_t oWx = oWin + size_t(LDZ) * LDH * 2;  // (XN, LDK) bf16, then out_proj's (OC, LDK)
  static constexpr size_t oXZ = oWx + mx(XN, OC) * LDK * 2;    // (64, LDZ) fp32: in_proj's x and z columns
  static constexpr size_t oXC = oXZ + size_t(kRows) * LDZ * 4; // (64, C) fp32: the conv step's output
  // The layer's small per-channel weights: conv (C, 4) bf16; conv bias, dt bias, D (C each) as fp32 (plain loads: a
  // block's channels need not start 4-byte aligned); A = −exp(A_log) (C, N) fp32 and dt_proj (C, R) bf16.
  static constexpr size_t oConvW = oXC + size_t(kRows) * C * 4;
  static constexpr size_t oConvB = oConvW + pad16(C * kConvW * 2);
  static constexpr size_t oDtB = oConvB + pad16(C * 4);
  static constexpr size_t oDsk = oDtB + pad16(C * 4);
  static constexpr size_t oAlog = oDsk + pad16(C * 4);
  static constexpr size_t oWdt = oAlog + pad16(C * N * 4);
  static constexpr size_t oRed = oWdt + pad16(8 * NTD * R * 2);  // the norm's per-warp sums (W_dt: 8·NTD rows)
  static constexpr size_t kSmem = oRed + 64;
};

// One layer's weights (nn.Linear layout (out, in)) and decode state, used in place — the form a library op would
// take from the model's parameters and LayerStates. The table travels in the kernel's parameters (CUDA ≥ 12.1 allows
// 32 KB of them), so a captured graph holds it and nothing is copied to the device per step.
constexpr int kMaxLayers = 64;
struct LayerPointers {
  const bf16 *norm_w, *w_in, *conv_w, *conv_b, *w_x, *w_dt, *dt_b, *a_log, *d_skip, *w_out;
  bf16* conv_state;  // (rows, E, kConvW − 1)
  float* ssm_state;  // (rows, E, N) fp32
};
struct PersistentParams {
  int layers = 0, rows = 0;  // rows ≤ 64: the batch
  float eps = 1e-5f;
  const int64_t* tokens = nullptr;  // (rows)
  const bf16* embedding = nullptr;  // (V, D): layer 0's hidden is embedding[tokens[m]], its residual starts at zero
  float* residual = nullptr;        // (rows, D) fp32
  bf16* hidden = nullptr;           // (rows, D): each layer's out_proj (the last one's is the step's output)
  bf16 *h = nullptr, *xc = nullptr, *y = nullptr;  // scratch (64, D), (64, E), (64, E); rows past `rows` unread
  unsigned* counter = nullptr;                      // grid barrier, zero at launch
  unsigned long long* stamps = nullptr;             // (L, 4) globaltimer after each barrier (block 0), or null
  // (L, kSub) clock64 of block 0's thread 0 at the points kSubNames lists, then (globaltimer, clock64) at the
  // kernel's start and end (4 more), so cycles convert to ns; or null
  long long* sub = nullptr;
  int variant = 0;  // kStatesLate | kWinLate (below): where the next layer's states and in_proj slice are requested
  LayerPointers layer[kMaxLayers];
};

// Variants (bits of PersistentParams::variant), timed side by side:
//   kStatesLate: the next layer's SSM / conv states are loaded into registers at the start of phase 4 instead of at
//                the end of phase 3 (which then ends with the layer's state stores only);
//   kWinLate:    the next layer's in_proj slice is requested in phase 4 after y's slice instead of at the start of
//                phase 3, so phase 4 waits for y and out_proj's slice only (cp.async groups complete in order: with
//                the slice requested in phase 3, phase 4's wait covered it too).
//   kDtMma:      dt_proj (64 rows × the block's channels, K = R) as one tensor-core product of x_dbl's first R
//                columns (a bf16 copy written by the x_dbl reduction) and the block's W_dt rows, instead of a
//                48- / 64-long FMA chain per (row, channel) in the scan loop.
constexpr int kStatesLate = 1, kWinLate = 2, kDtMma = 4, kVariants = 8;
// Sub-phase points (block 0, thread 0; "sync" where a block or cluster barrier precedes the stamp).
constexpr int kSub = 16;
const char* const kSubNames[kSub] = {
    "1 start (weights requested)", "1 norm done", "2 start (grid barrier)", "2 in_proj K loop (sync)",
    "2 conv step (thread 0)", "3 start (grid barrier)", "3 xc + x_proj slice waited (sync)",
    "3 x_proj products stored (sync)", "3 cluster barrier 1", "3 x_dbl reduced (cluster barrier 2)",
    "3 scan step (thread 0)", "3 next states requested", "4 start (grid barrier)",
    "4 y + out_proj slice waited (sync)", "4 products + cluster barrier", "4 sums written (thread 0)"};

__device__ __forceinline__ float bf16r(float x) { return __bfloat162float(__float2bfloat16(x)); }

__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(a), "l"(gmem));
}
// rows × cols bf16 (cols a multiple of 8, both sides 16-byte aligned rows) global → shared, 16-byte pieces; rows
// from valid_rows on are zero-filled (nothing read).
__device__ __forceinline__ void copy_tile(bf16* s, int lds, const bf16* g, size_t ldg, int rows, int cols,
                                          int valid_rows = 1 << 30) {
  const int pieces = cols / 8;
  for (int i = int(threadIdx.x); i < rows * pieces; i += int(blockDim.x)) {
    const int r = i / pieces, c = 8 * (i % pieces);
    const bool ok = r < valid_rows;
    cu::cp_async16(s + r * lds + c, ok ? g + r * ldg + c : g, ok ? 16 : 0);
  }
}
// n bf16 (n even, 4-byte aligned) global → shared in 4-byte pieces.
__device__ __forceinline__ void copy_small(bf16* s, const bf16* g, int n) {
  for (int i = int(threadIdx.x); i < n / 2; i += int(blockDim.x)) cp_async4(s + 2 * i, g + 2 * i);
}

// Grid barrier on a counter that only grows: barrier k (1, 2, …) returns once k·gridDim.x blocks arrived. All blocks
// are resident (one per SM, checked on the host), so spinning cannot starve the ones still to arrive.
__device__ __forceinline__ void grid_sync(unsigned* counter, unsigned& k) {
  ++k;
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned target = k * gridDim.x;
    __threadfence();
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(counter) : "memory");
    unsigned v;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(counter) : "memory");
    } while (v < target);
    __threadfence();
  }
  __syncthreads();
}

// Tensor-core products of bf16 operands in shared memory: C (64, 8·NT) += A (64, k1 − k0) · B (8·NT, k1 − k0)ᵀ for
// the columns k0…k1 of A (a_k0) and of B (b_k0), k1 − k0 a multiple of 16. Warp w: rows 16·(w % 4) …, the tiles
// nt ≡ w / 4 (mod G), held as acc[j] for nt = G·j + w / 4.
template <int NT, int G>
struct WarpTiles {
  static constexpr int J = (NT + G - 1) / G;
  float acc[J][4];
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int j = 0; j < J; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
  }
  __device__ __forceinline__ void accumulate(const bf16* A, int lda, int a_k0, const bf16* B, int ldb, int b_k0, int len) {
    const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, rt = warp % 4, grp = warp / 4;
    const bf16* a_row = A + (16 * rt + lane % 16) * lda + 8 * (lane / 16) + a_k0;
    const bf16* b_row = B + (lane % 8) * ldb + 8 * ((lane / 8) % 2) + b_k0;
    for (int k = 0; k < len; k += 16) {
      uint32_t a[4];
      cu::ldmatrix_x4(a, a_row + k);
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int nt = G * j + grp;
        if (nt < NT) {
          uint32_t b[2];
          cu::ldmatrix_x2(b, b_row + 8 * nt * ldb + k);
          cu::mma_bf16_16x8x16(acc[j], a, b[0], b[1]);
        }
      }
    }
  }
  // out (64, 8·NT) fp32, row-major with row stride 8·NT.
  __device__ __forceinline__ void store(float* out) const {
    const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, rt = warp % 4, grp = warp / 4;
    const int g = lane / 4, t = lane % 4, r0 = 16 * rt + g;
    constexpr int LD = 8 * NT;
#pragma unroll
    for (int j = 0; j < J; ++j) {
      const int nt = G * j + grp;
      if (nt < NT) {
        const int c = 8 * nt + 2 * t;
        out[r0 * LD + c] = acc[j][0];
        out[r0 * LD + c + 1] = acc[j][1];
        out[(r0 + 8) * LD + c] = acc[j][2];
        out[(r0 + 8) * LD + c + 1] = acc[j][3];
      }
    }
  }
};

template <class S, int kCl, int kNB>
__global__ void __launch_bounds__(S::kThreads, 1) persistent_layers_kernel(const __grid_constant__ PersistentParams p) {
  using Dm = Dims<S, kCl, kNB>;
  constexpr int kCluster = Dm::kCluster, kThreads = Dm::kThreads, G = Dm::kGroups;
  constexpr int D = Dm::D, E = Dm::E, N = Dm::N, R = Dm::R, C = Dm::C, XN = Dm::XN, KS = Dm::KS, OC = Dm::OC;
  constexpr int LDH = Dm::LDH, LDK = Dm::LDK, LDZ = Dm::LDZ, LDC = Dm::LDC, KC = Dm::KC, PAIRS = Dm::PAIRS;
  constexpr int CW = kConvW - 1;
  extern __shared__ __align__(16) unsigned char smem[];
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = int(cluster.block_rank()), q = int(blockIdx.x) / kCluster, blk = int(blockIdx.x);
  const int e0 = blk * E / kNB, Cb = (blk + 1) * E / kNB - e0, tid = int(threadIdx.x);  // this block's channels
  const int oc0 = 8 * (q * Dm::TD / Dm::kClusters), OCq = 8 * ((q + 1) * Dm::TD / Dm::kClusters) - oc0;  // its columns
  bf16* work = reinterpret_cast<bf16*>(smem);
  float* XD = reinterpret_cast<float*>(smem + Dm::oXD);
  bf16* Win = reinterpret_cast<bf16*>(smem + Dm::oWin);
  bf16* Wx = reinterpret_cast<bf16*>(smem + Dm::oWx);
  bf16* Wout = Wx;  // out_proj's slice lands where x_proj's was, requested once x_proj's products are done
  float* XZ = reinterpret_cast<float*>(smem + Dm::oXZ);
  float* XC = reinterpret_cast<float*>(smem + Dm::oXC);
  bf16* sConvW = reinterpret_cast<bf16*>(smem + Dm::oConvW);
  float* sConvB = reinterpret_cast<float*>(smem + Dm::oConvB);
  float* sDtB = reinterpret_cast<float*>(smem + Dm::oDtB);
  float* sDsk = reinterpret_cast<float*>(smem + Dm::oDsk);
  float* sA = reinterpret_cast<float*>(smem + Dm::oAlog);
  bf16* sWdt = reinterpret_cast<bf16*>(smem + Dm::oWdt);
  float* sRed = reinterpret_cast<float*>(smem + Dm::oRed);
  unsigned bar = 0;
  auto stamp = [&](int l, int phase) {
    if (p.stamps != nullptr && blk == 0 && tid == 0) {
      unsigned long long t;
      asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
      p.stamps[l * 4 + phase] = t;
    }
  };
  auto sub = [&](int l, int i) {
    if (p.sub != nullptr && blk == 0 && tid == 0) p.sub[l * kSub + i] = clock64();
  };
  auto request_win = [&](int l) {  // x rows then z rows of the block's channels
    copy_tile(Win, LDH, p.layer[l].w_in + size_t(e0) * D, D, Cb, D);
    copy_tile(Win + Cb * LDH, LDH, p.layer[l].w_in + size_t(E + e0) * D, D, Cb, D);
  };
  const int rows = p.rows;
  // The states of the thread's (row, channel) pairs: pair j is (m, c) = divmod(tid + kThreads·j, Cb) while
  // tid + kThreads·j < rows·Cb.
  float st[PAIRS][N];
  bf16 cst[PAIRS][CW];
  auto load_states = [&](int l) {
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int pr = tid + kThreads * j, m = pr / Cb, c = pr % Cb;
      if (pr >= rows * Cb) continue;
      const float4* s4 = reinterpret_cast<const float4*>(p.layer[l].ssm_state + (size_t(m) * E + e0 + c) * N);
#pragma unroll
      for (int v = 0; v < N / 4; ++v) {
        const float4 x = s4[v];
        st[j][4 * v] = x.x;
        st[j][4 * v + 1] = x.y;
        st[j][4 * v + 2] = x.z;
        st[j][4 * v + 3] = x.w;
      }
      const bf16* cs = p.layer[l].conv_state + (size_t(m) * E + e0 + c) * CW;
#pragma unroll
      for (int k = 0; k < CW; ++k) cst[j][k] = cs[k];
    }
  };
  const bool states_late = (p.variant & kStatesLate) != 0, win_late = (p.variant & kWinLate) != 0;
  const bool dt_mma = (p.variant & kDtMma) != 0;
  bf16* XDb = work;                                                     // phase 3 (kDtMma), after x_proj
  float* DT = reinterpret_cast<float*>(smem + Dm::oDT);                 // the same
  if (p.sub != nullptr && blk == 0 && tid == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    p.sub[p.layers * kSub] = (long long)t;
    p.sub[p.layers * kSub + 1] = clock64();
  }
  request_win(0);
  cu::cp_async_commit();
  load_states(0);
  for (int l = 0; l < p.layers; ++l) {
    // ---- Phase 1: the residual add and the norm, one row per block (the others only request weights).
    const LayerPointers& lp = p.layer[l];
    copy_small(sConvW, lp.conv_w + size_t(e0) * kConvW, Cb * kConvW);
    copy_small(sWdt, lp.w_dt + size_t(e0) * R, Cb * R);
    cu::cp_async_commit();
    sub(l, 0);
    for (int i = tid; i < Cb; i += kThreads) {  // read in phases 2–3, after the barrier below
      sConvB[i] = __bfloat162float(lp.conv_b[e0 + i]);
      sDtB[i] = __bfloat162float(lp.dt_b[e0 + i]);
      sDsk[i] = __bfloat162float(lp.d_skip[e0 + i]);
    }
    for (int i = tid; i < Cb * N; i += kThreads)  // A = −exp(A_log), formed once per layer (the scan's expression)
      sA[i] = -__expf(__bfloat162float(lp.a_log[size_t(e0) * N + i]));
    if (blk < rows) {
      const int m = blk;
      constexpr int PER = (D + kThreads - 1) / kThreads;
      float r[PER];
      float ss = 0.f;
      const bf16* hid = l == 0 ? p.embedding + size_t(p.tokens[m]) * D : p.hidden + size_t(m) * D;
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int d = tid + kThreads * i;
        r[i] = 0.f;
        if (d < D) {
          r[i] = __bfloat162float(hid[d]) + (l == 0 ? 0.f : p.residual[size_t(m) * D + d]);
          p.residual[size_t(m) * D + d] = r[i];
          ss += r[i] * r[i];
        }
      }
      ss = cu::warp_sum(ss);
      if (tid % 32 == 0) sRed[tid / 32] = ss;
      __syncthreads();
      float tot = 0.f;
#pragma unroll
      for (int w = 0; w < kThreads / 32; ++w) tot += sRed[w];
      const float rstd = rsqrtf(tot / float(D) + p.eps);
      const bf16* nw = lp.norm_w;
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int d = tid + kThreads * i;
        if (d < D) p.h[size_t(m) * D + d] = __float2bfloat16(r[i] * rstd * __bfloat162float(nw[d]));
      }
    }
    sub(l, 1);
    grid_sync(p.counter, bar);
    stamp(l, 0);
    sub(l, 2);
    // ---- Phase 2: in_proj of the block's channels over h in K-chunks (two buffers), then their conv step.
    {
      WarpTiles<Dm::NTI, G> t;
      t.zero();
      copy_tile(work, LDC, p.h, D, kRows, KC, rows);
      cu::cp_async_commit();
      constexpr int kChunks = D / KC;
      for (int ch = 0; ch < kChunks; ++ch) {
        if (ch + 1 < kChunks) {
          copy_tile(work + ((ch + 1) % 2) * kRows * LDC, LDC, p.h + (ch + 1) * KC, D, kRows, KC, rows);
          cu::cp_async_commit();
          cu::cp_async_wait_group<1>();  // chunk ch (and everything older: in_proj's slice, the small weights)
        } else {
          cu::cp_async_wait_group<0>();
        }
        __syncthreads();
        t.accumulate(work + (ch % 2) * kRows * LDC, LDC, 0, Win, LDH, ch * KC, KC);
        __syncthreads();  // the buffer is refilled two chunks on
      }
      sub(l, 3);
      t.store(XZ);
    }
    copy_tile(Wx, LDK, lp.w_x + size_t(rank) * KS, E, XN, KS);  // for phase 3
    cu::cp_async_commit();
    __syncthreads();
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int pr = tid + kThreads * j, m = pr / Cb, c = pr % Cb;
      if (pr >= rows * Cb) continue;
      const bf16 xb = __float2bfloat16(XZ[m * LDZ + c]);  // in_proj writes bf16
      float acc = sConvB[c];
#pragma unroll
      for (int k = 0; k < CW; ++k) acc = fmaf(__bfloat162float(sConvW[c * kConvW + k]), __bfloat162float(cst[j][k]), acc);
      acc = fmaf(__bfloat162float(sConvW[c * kConvW + CW]), __bfloat162float(xb), acc);
      acc *= cu::sigmoid_f(acc);
      const bf16 u = __float2bfloat16(acc);
#pragma unroll
      for (int k = 0; k + 1 < CW; ++k) cst[j][k] = cst[j][k + 1];
      cst[j][CW - 1] = xb;
      bf16* cs = p.layer[l].conv_state + (size_t(m) * E + e0 + c) * CW;
#pragma unroll
      for (int k = 0; k < CW; ++k) cs[k] = cst[j][k];
      p.xc[size_t(m) * E + e0 + c] = u;
      XC[m * C + c] = __bfloat162float(u);
    }
    sub(l, 4);
    grid_sync(p.counter, bar);
    stamp(l, 1);
    sub(l, 5);
    // ---- Phase 3: x_proj in each cluster (rank r: inner slice r), dt_proj, the state update, the gate.
    copy_tile(work, LDK, p.xc + size_t(rank) * KS, E, kRows, KS, rows);
    cu::cp_async_commit();
    if (l + 1 < p.layers && !win_late) request_win(l + 1);
    cu::cp_async_commit();
    cu::cp_async_wait_group<1>();  // x_proj's slice and xc's (the next in_proj slice may still be on its way)
    __syncthreads();
    sub(l, 6);
    {
      WarpTiles<XN / 8, G> t;
      t.zero();
      t.accumulate(work, LDK, 0, Wx, LDK, 0, KS);
      t.store(XD);
    }
    __syncthreads();  // Wx is free
    sub(l, 7);
    copy_tile(Wout, LDK, lp.w_out + size_t(oc0) * E + size_t(rank) * KS, E, OCq, KS);
    cu::cp_async_commit();
    cluster.sync();
    sub(l, 8);
    {  // rank r sums rows [8r, 8r + 8) over the ranks in rank order and writes the sums back into every rank's XD
       // (each entry has one reader and writer: this thread), which then holds x_dbl
      constexpr int kRowsEach = kRows / kCluster;
      for (int i = tid; i < kRowsEach * XN; i += kThreads) {
        const int idx = rank * kRowsEach * XN + i;
        float v = 0.f;
#pragma unroll
        for (int s = 0; s < kCluster; ++s) v += cluster.map_shared_rank(XD, s)[idx];
        v = bf16r(v);  // x_proj writes bf16
#pragma unroll
        for (int s = 0; s < kCluster; ++s) cluster.map_shared_rank(XD, s)[idx] = v;
        const int col = idx % XN;
        if (dt_mma && col < R) {
          const bf16 vb = __float2bfloat16(v);
#pragma unroll
          for (int s = 0; s < kCluster; ++s) cluster.map_shared_rank(XDb, s)[(idx / XN) * Dm::LDR + col] = vb;
        }
      }
    }
    cluster.sync();
    if (dt_mma) {  // dt_proj of the block's channels: (64, R) · W_dt slice (8·NTD, R)ᵀ (rows past Cb: unused)
      WarpTiles<Dm::NTD, G> t;
      t.zero();
      t.accumulate(XDb, Dm::LDR, 0, sWdt, R, 0, R);
      t.store(DT);
      __syncthreads();
    }
    sub(l, 9);
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int pr = tid + kThreads * j, m = pr / Cb, c = pr % Cb;
      if (pr >= rows * Cb) continue;
      const float* xd = XD + m * XN;
      float dt;
      if (dt_mma) {
        dt = DT[m * 8 * Dm::NTD + c] + sDtB[c];
      } else {
        dt = sDtB[c];
#pragma unroll 8
        for (int k = 0; k < R; ++k) dt = fmaf(xd[k], __bfloat162float(sWdt[c * R + k]), dt);
      }
      dt = cu::softplus_f(dt);
      const float u = XC[m * C + c];
      const float z = bf16r(XZ[m * LDZ + Cb + c]);
      const float du = dt * u;
      float yv = 0.f;
#pragma unroll
      for (int n = 0; n < N; ++n) {
        const float a = sA[c * N + n];
        st[j][n] = fmaf(__expf(dt * a), st[j][n], du * xd[R + n]);
        yv = fmaf(st[j][n], xd[R + N + n], yv);
      }
      yv = fmaf(sDsk[c], u, yv);
      yv *= z * cu::sigmoid_f(z);
      p.y[size_t(m) * E + e0 + c] = __float2bfloat16(yv);
      float4* s4 = reinterpret_cast<float4*>(p.layer[l].ssm_state + (size_t(m) * E + e0 + c) * N);
#pragma unroll
      for (int v = 0; v < N / 4; ++v) s4[v] = make_float4(st[j][4 * v], st[j][4 * v + 1], st[j][4 * v + 2], st[j][4 * v + 3]);
    }
    sub(l, 10);
    if (l + 1 < p.layers && !states_late) load_states(l + 1);
    sub(l, 11);
    grid_sync(p.counter, bar);
    stamp(l, 2);
    sub(l, 12);
    // ---- Phase 4: out_proj, rank r's inner slice against the cluster's columns; partial products over DSMEM.
    copy_tile(work, LDK, p.y + size_t(rank) * KS, E, kRows, KS, rows);
    cu::cp_async_commit();
    if (win_late) {  // groups: …, out_proj's slice, y's, the next in_proj slice: wait for all but the last
      if (l + 1 < p.layers) request_win(l + 1);
      cu::cp_async_commit();
      cu::cp_async_wait_group<1>();
    } else {
      cu::cp_async_wait_all();  // y's slice and out_proj's (the next in_proj slice, requested a phase earlier, too)
    }
    if (l + 1 < p.layers && states_late) load_states(l + 1);
    __syncthreads();
    sub(l, 13);
    {
      WarpTiles<Dm::NTO, G> t;  // columns past OCq: unused
      t.zero();
      t.accumulate(work, LDK, 0, Wout, LDK, 0, KS);
      t.store(XD);
    }
    cluster.sync();
    sub(l, 14);
    {
      constexpr int kRowsEach = kRows / kCluster;
      for (int i = tid; i < kRowsEach * OCq; i += kThreads) {
        const int m = rank * kRowsEach + i / OCq, c = i % OCq;
        float v = 0.f;
#pragma unroll
        for (int s = 0; s < kCluster; ++s) v += cluster.map_shared_rank(XD, s)[m * OC + c];
        if (m < rows) p.hidden[size_t(m) * D + oc0 + c] = __float2bfloat16(v);
      }
    }
    sub(l, 15);
    grid_sync(p.counter, bar);  // also: no block leaves (or reuses XD) while its cluster still reads it
    stamp(l, 3);
  }
  cu::cp_async_wait_all();
  if (p.sub != nullptr && blk == 0 && tid == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    p.sub[p.layers * kSub + 2] = (long long)t;
    p.sub[p.layers * kSub + 3] = clock64();
  }
}

__global__ void barrier_kernel(unsigned* counter, int n) {
  unsigned bar = 0;
  for (int i = 0; i < n; ++i) grid_sync(counter, bar);
}

// ---------------------------------------------------------------------------------------------------------------
// Host: weights, the float64 reference, the library's chain, timing.

float host_bf16(float x) { return __bfloat162float(__float2bfloat16(x)); }

template <class S>
struct HostModel {
  static constexpr int D = S::D, E = S::E, N = S::N, R = S::R, XN = R + 2 * N, CW = kConvW - 1;
  int L;
  static constexpr int V = 256;  // a small vocabulary: the tokens repeat, as a batch's may
  std::vector<bf16> norm_w, w_in, conv_w, conv_b, w_x, w_dt, dt_b, a_log, d_skip, w_out, vocab, emb, conv_state;
  std::vector<int64_t> tokens;  // (64): row m's token; emb = vocab[tokens] (64, D)
  std::vector<float> ssm_state;
  explicit HostModel(int layers) : L(layers) {
    std::mt19937 gen(1234);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::uniform_real_distribution<float> ud(0.f, 1.f);
    auto fill = [&](std::vector<bf16>& v, size_t n, const std::function<float()>& f) {
      v.resize(n);
      for (auto& x : v) x = __float2bfloat16(f());
    };
    fill(norm_w, size_t(L) * D, [&] { return 1.f + 0.1f * nd(gen); });
    fill(w_in, size_t(L) * 2 * E * D, [&] { return nd(gen) / std::sqrt(float(D)); });
    fill(conv_w, size_t(L) * E * kConvW, [&] { return 0.5f * nd(gen); });
    fill(conv_b, size_t(L) * E, [&] { return 0.1f * nd(gen); });
    fill(w_x, size_t(L) * XN * E, [&] { return nd(gen) / std::sqrt(float(E)); });
    fill(w_dt, size_t(L) * E * R, [&] { return 0.5f * nd(gen) / std::sqrt(float(R)); });
    fill(dt_b, size_t(L) * E, [&] {  // softplus⁻¹ of dt log-uniform in [0.001, 0.1] (Mamba's initialisation)
      const float dt = std::exp(std::log(0.001f) + ud(gen) * (std::log(0.1f) - std::log(0.001f)));
      return dt + std::log(-std::expm1(-dt));
    });
    a_log.resize(size_t(L) * E * N);
    for (size_t i = 0; i < a_log.size(); ++i) a_log[i] = __float2bfloat16(std::log(float(i % N + 1)));
    fill(d_skip, size_t(L) * E, [&] { return 1.f + 0.1f * nd(gen); });
    fill(w_out, size_t(L) * D * E, [&] { return nd(gen) / std::sqrt(float(E)); });
    fill(vocab, size_t(V) * D, [&] { return nd(gen); });
    tokens.resize(kRows);
    for (auto& t : tokens) t = int64_t(gen() % V);
    emb.resize(size_t(kRows) * D);
    for (int m = 0; m < kRows; ++m)
      std::copy_n(vocab.begin() + tokens[m] * D, D, emb.begin() + size_t(m) * D);
    fill(conv_state, size_t(L) * kRows * E * CW, [&] { return nd(gen); });
    ssm_state.resize(size_t(L) * kRows * E * N);
    for (auto& x : ssm_state) x = 0.5f * nd(gen);
  }
};

template <class S>
struct DeviceModel {
  using HM = HostModel<S>;
  bf16 *norm_w, *w_in, *conv_w, *conv_b, *w_x, *w_dt, *dt_b, *a_log, *d_skip, *w_out, *emb, *vocab;
  int64_t* tokens;
  template <class T>
  static T* upload(const std::vector<T>& v) {
    T* d;
    MCD_CUDA_CHECK(cudaMalloc(&d, v.size() * sizeof(T)));
    MCD_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
  }
  explicit DeviceModel(const HM& h)
      : norm_w(upload(h.norm_w)), w_in(upload(h.w_in)), conv_w(upload(h.conv_w)), conv_b(upload(h.conv_b)),
        w_x(upload(h.w_x)), w_dt(upload(h.w_dt)), dt_b(upload(h.dt_b)), a_log(upload(h.a_log)),
        d_skip(upload(h.d_skip)), w_out(upload(h.w_out)), emb(upload(h.emb)), vocab(upload(h.vocab)),
        tokens(upload(h.tokens)) {}
};

// Float64 reference of `layers` layers with the kernels' bf16 rounding points. Updates the states in place;
// returns hidden (the last out_proj) and residual.
template <class S>
void reference(const HostModel<S>& hm, int layers, std::vector<float>& ssm, std::vector<float>& conv,
               std::vector<double>& hidden, std::vector<double>& residual) {
  constexpr int D = S::D, E = S::E, N = S::N, R = S::R, XN = R + 2 * N, CW = kConvW - 1;
  auto f = [](bf16 x) { return double(__bfloat162float(x)); };
  auto rb = [](double x) { return double(host_bf16(float(x))); };
  hidden.assign(size_t(kRows) * D, 0.0);
  residual.assign(size_t(kRows) * D, 0.0);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = f(hm.emb[i]);
  std::vector<double> h(size_t(kRows) * D), xz(size_t(kRows) * 2 * E), xc(size_t(kRows) * E), xd(size_t(kRows) * XN),
      y(size_t(kRows) * E), wrow(std::max(D, E));
  // out (64, n_out) = bf16(in (64, n_in) · Wᵀ) with W (n_out, n_in): the three products' reference.
  const auto product = [&](const std::vector<double>& in, int n_in, const bf16* W, int n_out, std::vector<double>& out) {
    for (int o = 0; o < n_out; ++o) {
      for (int i = 0; i < n_in; ++i) wrow[i] = f(W[size_t(o) * n_in + i]);
      for (int m = 0; m < kRows; ++m) {
        double sum = 0.0;
        for (int i = 0; i < n_in; ++i) sum += in[size_t(m) * n_in + i] * wrow[i];
        out[size_t(m) * n_out + o] = rb(sum);
      }
    }
  };
  for (int l = 0; l < layers; ++l) {
    for (int m = 0; m < kRows; ++m) {
      double ss = 0.0;
      for (int d = 0; d < D; ++d) {
        const size_t i = size_t(m) * D + d;
        residual[i] = (l == 0 ? 0.0 : residual[i]) + hidden[i];
        ss += residual[i] * residual[i];
      }
      const double rstd = 1.0 / std::sqrt(ss / D + 1e-5);
      for (int d = 0; d < D; ++d)
        h[size_t(m) * D + d] = rb(residual[size_t(m) * D + d] * rstd * f(hm.norm_w[size_t(l) * D + d]));
    }
    product(h, D, hm.w_in.data() + size_t(l) * 2 * E * D, 2 * E, xz);
    for (int m = 0; m < kRows; ++m)
      for (int e = 0; e < E; ++e) {
        float* cs = conv.data() + ((size_t(l) * kRows + m) * E + e) * CW;
        const bf16* w = hm.conv_w.data() + (size_t(l) * E + e) * kConvW;
        const double x = xz[size_t(m) * 2 * E + e];
        double acc = f(hm.conv_b[size_t(l) * E + e]);
        for (int k = 0; k < CW; ++k) acc += f(w[k]) * cs[k];
        acc += f(w[CW]) * x;
        acc = acc / (1.0 + std::exp(-acc));
        for (int k = 0; k + 1 < CW; ++k) cs[k] = cs[k + 1];
        cs[CW - 1] = float(x);
        xc[size_t(m) * E + e] = rb(acc);
      }
    product(xc, E, hm.w_x.data() + size_t(l) * XN * E, XN, xd);
    for (int m = 0; m < kRows; ++m)
      for (int e = 0; e < E; ++e) {
        double dt = f(hm.dt_b[size_t(l) * E + e]);
        for (int k = 0; k < R; ++k) dt += xd[size_t(m) * XN + k] * f(hm.w_dt[(size_t(l) * E + e) * R + k]);
        dt = dt > 20.0 ? dt : std::log1p(std::exp(dt));
        const double u = xc[size_t(m) * E + e], z = xz[size_t(m) * 2 * E + E + e];
        double yv = 0.0;
        float* s = ssm.data() + ((size_t(l) * kRows + m) * E + e) * N;
        for (int n = 0; n < N; ++n) {
          const double a = -std::exp(f(hm.a_log[(size_t(l) * E + e) * N + n]));
          const double v = std::exp(dt * a) * double(s[n]) + dt * u * xd[size_t(m) * XN + R + n];
          s[n] = float(v);
          yv += v * xd[size_t(m) * XN + R + N + n];
        }
        yv += f(hm.d_skip[size_t(l) * E + e]) * u;
        yv *= z / (1.0 + std::exp(-z));
        y[size_t(m) * E + e] = rb(yv);
      }
    product(y, E, hm.w_out.data() + size_t(l) * D * E, D, hidden);
  }
}

// max |got − ref| / rms(ref), and the fraction of entries further than 2⁻⁸·rms (about one bf16 step).
struct Err {
  double max_rel = 0.0, frac_far = 0.0;
  bool finite = true;
};
template <class G>
Err compare(const G& got, const std::vector<double>& ref) {
  double ss = 0.0;
  for (double r : ref) ss += r * r;
  const double rms = std::sqrt(ss / double(ref.size())) + 1e-30;
  Err e;
  size_t far = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = double(got[i]);
    e.finite = e.finite && std::isfinite(g);
    const double d = std::fabs(g - ref[i]) / rms;
    e.max_rel = std::max(e.max_rel, d);
    far += d > std::ldexp(1.0, -8);
  }
  e.frac_far = double(far) / double(ref.size());
  return e;
}


// 0: checked and timed, 1: the check failed, 2: the kNB / kCl clusters cannot be resident at once.
template <class S, int kCl, int kNB>
int run_shape(int reps, int check_layers, cudaStream_t s, cublasHandle_t cb) {
  using Dm = Dims<S, kCl, kNB>;
  constexpr int kCluster = Dm::kCluster, kClusters = Dm::kClusters, kBlocks = Dm::kBlocks, kThreads = Dm::kThreads;
  constexpr int D = S::D, E = S::E, N = S::N, R = S::R, XN = Dm::XN, CW = kConvW - 1;
  constexpr int L = S::L;
  std::printf("shape %s: D %d, E %d, N %d, R %d, %d layers, %d rows; %d blocks of %d threads, clusters of %d, shared "
              "memory %zu bytes per block\n", S::name, D, E, N, R, L, kRows, kBlocks, kThreads, kCluster, Dm::kSmem);
  char label[48];
  std::snprintf(label, sizeof label, "%s on %d blocks", S::name, kBlocks);
  const HostModel<S> hm(L);
  const DeviceModel<S> dm(hm);
  auto kernel = persistent_layers_kernel<S, kCl, kNB>;
  MCD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Dm::kSmem)));
  {  // every cluster must be resident at once, or the grid barrier would wait forever
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(kBlocks);
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = Dm::kSmem;
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = kCluster;
    attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
    config.attrs = &attr;
    config.numAttrs = 1;
    int clusters = 0;
    MCD_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &config));
    std::printf("resident clusters of %d: %d (need %d)\n", kCluster, clusters, kClusters);
    if (clusters < kClusters) return 2;
  }
  float *ssm, *resid, *ssm_lib, *resid_lib;
  bf16 *conv, *hidden, *h, *xc, *y, *conv_lib, *hidden_lib, *h_lib, *xz_lib, *xc_lib, *xd_lib, *y_lib;
  unsigned* counter;
  unsigned long long* stamps;
  long long* subs;
  float *rstd, *emb_f;
  const size_t n_ssm = size_t(L) * kRows * E * N, n_conv = size_t(L) * kRows * E * CW;
  MCD_CUDA_CHECK(cudaMalloc(&ssm, n_ssm * 4));
  MCD_CUDA_CHECK(cudaMalloc(&ssm_lib, n_ssm * 4));
  MCD_CUDA_CHECK(cudaMalloc(&conv, n_conv * 2));
  MCD_CUDA_CHECK(cudaMalloc(&conv_lib, n_conv * 2));
  MCD_CUDA_CHECK(cudaMalloc(&resid, size_t(kRows) * D * 4));
  MCD_CUDA_CHECK(cudaMalloc(&resid_lib, size_t(kRows) * D * 4));
  MCD_CUDA_CHECK(cudaMalloc(&hidden, size_t(kRows) * D * 2));
  MCD_CUDA_CHECK(cudaMalloc(&hidden_lib, size_t(kRows) * D * 2));
  MCD_CUDA_CHECK(cudaMalloc(&h, size_t(kRows) * D * 2));
  MCD_CUDA_CHECK(cudaMalloc(&h_lib, size_t(kRows) * D * 2));
  MCD_CUDA_CHECK(cudaMalloc(&xc, size_t(kRows) * E * 2));
  MCD_CUDA_CHECK(cudaMalloc(&y, size_t(kRows) * E * 2));
  MCD_CUDA_CHECK(cudaMalloc(&xz_lib, size_t(kRows) * 2 * E * 2));
  MCD_CUDA_CHECK(cudaMalloc(&xc_lib, size_t(kRows) * E * 2));
  MCD_CUDA_CHECK(cudaMalloc(&xd_lib, size_t(kRows) * XN * 2));
  MCD_CUDA_CHECK(cudaMalloc(&y_lib, size_t(kRows) * E * 2));
  MCD_CUDA_CHECK(cudaMalloc(&counter, 4));
  MCD_CUDA_CHECK(cudaMalloc(&stamps, size_t(L) * 4 * 8));
  MCD_CUDA_CHECK(cudaMalloc(&subs, (size_t(L) * kSub + 4) * 8));
  MCD_CUDA_CHECK(cudaMalloc(&rstd, size_t(kRows) * 4));
  {
    std::vector<float> ef(hm.emb.size());
    for (size_t i = 0; i < ef.size(); ++i) ef[i] = __bfloat162float(hm.emb[i]);
    emb_f = DeviceModel<S>::upload(ef);
  }
  auto reset_states = [&] {
    MCD_CUDA_CHECK(cudaMemcpy(ssm, hm.ssm_state.data(), n_ssm * 4, cudaMemcpyHostToDevice));
    MCD_CUDA_CHECK(cudaMemcpy(ssm_lib, hm.ssm_state.data(), n_ssm * 4, cudaMemcpyHostToDevice));
    MCD_CUDA_CHECK(cudaMemcpy(conv, hm.conv_state.data(), n_conv * 2, cudaMemcpyHostToDevice));
    MCD_CUDA_CHECK(cudaMemcpy(conv_lib, hm.conv_state.data(), n_conv * 2, cudaMemcpyHostToDevice));
  };
  static_assert(L <= kMaxLayers, "the pointer table's size");
  PersistentParams pp;
  pp.rows = kRows;
  pp.tokens = dm.tokens;
  pp.embedding = dm.vocab;
  for (int l = 0; l < L; ++l)
    pp.layer[l] = {dm.norm_w + size_t(l) * D, dm.w_in + size_t(l) * 2 * E * D, dm.conv_w + size_t(l) * E * kConvW,
                   dm.conv_b + size_t(l) * E, dm.w_x + size_t(l) * XN * E, dm.w_dt + size_t(l) * E * R,
                   dm.dt_b + size_t(l) * E, dm.a_log + size_t(l) * E * N, dm.d_skip + size_t(l) * E,
                   dm.w_out + size_t(l) * D * E, conv + size_t(l) * kRows * E * CW, ssm + size_t(l) * kRows * E * N};
  pp.residual = resid;
  pp.hidden = hidden;
  pp.h = h;
  pp.xc = xc;
  pp.y = y;
  pp.counter = counter;
  auto persistent = [&](int layers, unsigned long long* st, int rows = kRows, int variant = 0, long long* sb = nullptr) {
    MCD_CUDA_CHECK(cudaMemsetAsync(counter, 0, 4, s));
    PersistentParams q = pp;
    q.layers = layers;
    q.rows = rows;
    q.stamps = st;
    q.sub = sb;
    q.variant = variant;
    cu::launch_in_clusters(kernel, dim3(kBlocks), kThreads, Dm::kSmem, s, unsigned(kCluster), false, q);
  };
  // The library's chain (dev/decode_lab/library_chain.cuh: what the graph decode runs at batch 64), on its own
  // state copies.
  const mcd::dev::ChainShape chain_shape{D, E, N, R, kConvW};
  const mcd::dev::ChainScratch chain_scratch{h_lib, xz_lib, xc_lib, xd_lib, y_lib, rstd};
  auto library = [&](int layers, bool narrow) {
    for (int l = 0; l < layers; ++l) {
      const mcd::dev::ChainWeights w{dm.norm_w + size_t(l) * D, dm.w_in + size_t(l) * 2 * E * D,
                                     dm.conv_w + size_t(l) * E * kConvW, dm.conv_b + size_t(l) * E,
                                     dm.w_x + size_t(l) * XN * E, dm.w_dt + size_t(l) * E * R,
                                     dm.dt_b + size_t(l) * E, dm.a_log + size_t(l) * E * N,
                                     dm.d_skip + size_t(l) * E, dm.w_out + size_t(l) * D * E};
      mcd::dev::library_layer(chain_shape, w, kRows, l == 0 ? emb_f : resid_lib, l == 0 ? nullptr : hidden_lib,
                              resid_lib, hidden_lib, conv_lib + size_t(l) * kRows * E * CW,
                              ssm_lib + size_t(l) * kRows * E * N, chain_scratch, narrow, s, cb);
    }
  };
  bool ok = true;
  // ---- Check: `check_layers` layers of both against the float64 reference from the same states, each variant.
  std::vector<float> ssm_ref(hm.ssm_state.begin(), hm.ssm_state.begin() + size_t(check_layers) * kRows * E * N);
  std::vector<float> conv_ref(size_t(check_layers) * kRows * E * CW);
  for (size_t i = 0; i < conv_ref.size(); ++i) conv_ref[i] = __bfloat162float(hm.conv_state[i]);
  std::vector<double> hid_ref, res_ref;
  reference<S>(hm, check_layers, ssm_ref, conv_ref, hid_ref, res_ref);
  for (int variant = 0; variant < kVariants; ++variant) {
    reset_states();
    persistent(check_layers, nullptr, kRows, variant);
    library(check_layers, false);
    MCD_CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<bf16> g_hid(size_t(kRows) * D), l_hid(g_hid.size()), g_conv(conv_ref.size()), l_conv(conv_ref.size());
    std::vector<float> g_res(size_t(kRows) * D), l_res(g_res.size()), g_ssm(ssm_ref.size()), l_ssm(ssm_ref.size());
    MCD_CUDA_CHECK(cudaMemcpy(g_hid.data(), hidden, g_hid.size() * 2, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(l_hid.data(), hidden_lib, l_hid.size() * 2, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(g_res.data(), resid, g_res.size() * 4, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(l_res.data(), resid_lib, l_res.size() * 4, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(g_ssm.data(), ssm, g_ssm.size() * 4, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(l_ssm.data(), ssm_lib, l_ssm.size() * 4, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(g_conv.data(), conv, g_conv.size() * 2, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(l_conv.data(), conv_lib, l_conv.size() * 2, cudaMemcpyDeviceToHost));
    std::vector<float> f_hid(g_hid.size()), f_lhid(g_hid.size()), f_conv(g_conv.size()), f_lconv(g_conv.size());
    for (size_t i = 0; i < g_hid.size(); ++i) f_hid[i] = __bfloat162float(g_hid[i]), f_lhid[i] = __bfloat162float(l_hid[i]);
    for (size_t i = 0; i < g_conv.size(); ++i) f_conv[i] = __bfloat162float(g_conv[i]), f_lconv[i] = __bfloat162float(l_conv[i]);
    std::vector<double> ssm_d(ssm_ref.begin(), ssm_ref.end()), conv_d(conv_ref.begin(), conv_ref.end());
    // Both paths round at the same points (bf16 intermediates); they differ in fp32 summation order and fast exp,
    // and a changed order flips some bf16 roundings, which the following layers carry on. Call B (thirty-seventh
    // session) measured the library chain itself at 17-33 % of the last out_proj's entries beyond 2^-8·rms of the
    // float64 reference after 3 random layers, so an absolute bound says nothing; the criterion is comparative: the
    // persistent kernel within 1.5x the library chain's distance on both measures (or the absolute 2^-4 / 1 %).
    const auto close_as_library = [](const Err& e, const Err& lib) {
      return e.finite && e.max_rel <= std::max(1.0 / 16, 1.5 * lib.max_rel) &&
             e.frac_far <= std::max(0.01, 1.5 * lib.frac_far);
    };
    double lib_worst = 0.0, lib_far = 0.0;
    const struct {
      const char* name;
      Err persistent, library;
    } rows[] = {{"hidden (last out_proj)", compare(f_hid, hid_ref), compare(f_lhid, hid_ref)},
                {"residual", compare(g_res, res_ref), compare(l_res, res_ref)},
                {"ssm state", compare(g_ssm, ssm_d), compare(l_ssm, ssm_d)},
                {"conv state", compare(f_conv, conv_d), compare(f_lconv, conv_d)}};
    for (const auto& r : rows) {
      const bool good = close_as_library(r.persistent, r.library);
      ok = ok && good;
      lib_worst = std::max(lib_worst, r.library.max_rel);
      lib_far = std::max(lib_far, r.library.frac_far);
      std::printf("check %s variant %d, %d layers %-24s persistent max %.3e·rms, %.4f %% beyond 2^-8; library max "
                  "%.3e·rms, %.4f %%: %s\n",
                  label, variant, check_layers, r.name, r.persistent.max_rel, 100 * r.persistent.frac_far,
                  r.library.max_rel, 100 * r.library.frac_far, good ? "ok" : "FAILED");
    }
    // A batch of 7 (rows past it masked): its rows as close to the reference, the other rows' states untouched.
    constexpr int kFew = 7;
    reset_states();
    persistent(check_layers, nullptr, kFew, variant);
    MCD_CUDA_CHECK(cudaStreamSynchronize(s));
    MCD_CUDA_CHECK(cudaMemcpy(g_hid.data(), hidden, size_t(kFew) * D * 2, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(g_res.data(), resid, size_t(kFew) * D * 4, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(g_ssm.data(), ssm, g_ssm.size() * 4, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(g_conv.data(), conv, g_conv.size() * 2, cudaMemcpyDeviceToHost));
    std::vector<float> few_hid, few_res, few_ssm, few_conv;
    std::vector<double> ref_hid, ref_res, ref_ssm, ref_conv;
    for (size_t i = 0; i < size_t(kFew) * D; ++i) {
      few_hid.push_back(__bfloat162float(g_hid[i]));
      ref_hid.push_back(hid_ref[i]);
      few_res.push_back(g_res[i]);
      ref_res.push_back(res_ref[i]);
    }
    bool untouched = true;
    for (int l = 0; l < check_layers; ++l)
      for (int m = 0; m < kRows; ++m) {
        const size_t s0 = (size_t(l) * kRows + m) * E * N, c0 = (size_t(l) * kRows + m) * E * CW;
        for (size_t i = 0; i < size_t(E) * N; ++i) {
          if (m < kFew) few_ssm.push_back(g_ssm[s0 + i]), ref_ssm.push_back(ssm_d[s0 + i]);
          else untouched = untouched && g_ssm[s0 + i] == hm.ssm_state[s0 + i];
        }
        for (size_t i = 0; i < size_t(E) * CW; ++i) {
          if (m < kFew) few_conv.push_back(__bfloat162float(g_conv[c0 + i])), ref_conv.push_back(conv_d[c0 + i]);
          else untouched = untouched && !std::memcmp(&g_conv[c0 + i], &hm.conv_state[c0 + i], 2);
        }
      }
    const Err few[] = {compare(few_hid, ref_hid), compare(few_res, ref_res), compare(few_ssm, ref_ssm),
                       compare(few_conv, ref_conv)};
    bool good = untouched;
    double worst = 0.0, far = 0.0;
    Err lib_bound;
    lib_bound.max_rel = lib_worst;
    lib_bound.frac_far = lib_far;
    for (const Err& e : few) {
      good = good && close_as_library(e, lib_bound);
      worst = std::max(worst, e.max_rel);
      far = std::max(far, e.frac_far);
    }
    ok = ok && good;
    std::printf("check %s variant %d, %d layers, batch %d: worst max %.3e·rms, %.4f %% beyond 2^-8; states of rows "
                "%d-63 %s: %s\n",
                label, variant, check_layers, kFew, worst, 100 * far, kFew, untouched ? "untouched" : "CHANGED",
                good ? "ok" : "FAILED");
  }
  // ---- Timing: tokens of all L layers, each token from the same embeddings (the states evolve).
  reset_states();
  for (int variant = 0; variant < kVariants; ++variant) {
    std::vector<unsigned long long> st(size_t(L) * 4);
    std::vector<long long> sb(size_t(L) * kSub + 4);
    persistent(L, stamps, kRows, variant, subs);
    MCD_CUDA_CHECK(cudaStreamSynchronize(s));
    persistent(L, stamps, kRows, variant, subs);
    MCD_CUDA_CHECK(cudaStreamSynchronize(s));
    MCD_CUDA_CHECK(cudaMemcpy(st.data(), stamps, st.size() * 8, cudaMemcpyDeviceToHost));
    MCD_CUDA_CHECK(cudaMemcpy(sb.data(), subs, sb.size() * 8, cudaMemcpyDeviceToHost));
    double phase[4] = {0, 0, 0, 0};
    for (int l = 1; l < L; ++l)
      for (int ph = 0; ph < 4; ++ph) {
        const unsigned long long prev = ph == 0 ? st[size_t(l - 1) * 4 + 3] : st[size_t(l) * 4 + ph - 1];
        phase[ph] += double(st[size_t(l) * 4 + ph] - prev) / 1000.0;
      }
    std::printf("phases %s variant %d (block 0's barrier exits, mean over layers 1-%d, us): norm %.2f, in_proj+conv "
                "%.2f, x_proj+scan %.2f, out_proj %.2f; layer %.2f\n",
                label, variant, L - 1, phase[0] / (L - 1), phase[1] / (L - 1), phase[2] / (L - 1), phase[3] / (L - 1),
                (phase[0] + phase[1] + phase[2] + phase[3]) / (L - 1));
    // Block 0's thread 0, clock64 between consecutive points (the first: from the previous layer's last point),
    // converted with the cycles per ns it ran at over the whole kernel.
    const double ns = double(sb[size_t(L) * kSub + 2] - sb[size_t(L) * kSub]);
    const double cyc_per_ns = double(sb[size_t(L) * kSub + 3] - sb[size_t(L) * kSub + 1]) / ns;
    std::printf("subphases %s variant %d (block 0 thread 0, mean over layers 1-%d, us; %.3f cycles/ns):", label,
                variant, L - 1, cyc_per_ns);
    for (int i = 0; i < kSub; ++i) {
      double sum = 0.0;
      for (int l = 1; l < L; ++l) {
        const long long prev = i == 0 ? sb[size_t(l - 1) * kSub + kSub - 1] : sb[size_t(l) * kSub + i - 1];
        sum += double(sb[size_t(l) * kSub + i] - prev);
      }
      std::printf("%s [%s] %.2f", i ? "," : "", kSubNames[i], sum / (L - 1) / cyc_per_ns / 1000.0);
    }
    std::printf("\n");
  }
  double t_var[kVariants];
  for (int variant = 0; variant < kVariants; ++variant)
    t_var[variant] = mcd::dev::graph_us(s, reps, [&](int) { persistent(L, nullptr, kRows, variant); });
  const double t_lib = mcd::dev::graph_us(s, reps, [&](int) { library(L, false); });
  const double t_lib_narrow = mcd::dev::graph_us(s, reps, [&](int) { library(L, true); });
  const double t_pers2 = mcd::dev::graph_us(s, reps, [&](int) { persistent(L, nullptr, kRows, 0); });
  const double t_best = *std::min_element(t_var, t_var + kVariants);
  std::printf("time %s batch %d, %d layers per token (graph, median of 5 replays of %d tokens): persistent by variant "
              "(bits: 1 states late, 2 in_proj slice late, 4 dt_proj on tensor cores)", label, kRows, L, reps);
  for (int v = 0; v < kVariants; ++v) std::printf("%s %d: %.1f", v ? "," : "", v, t_var[v]);
  std::printf(" (0 again: %.1f) us; library chain (cuBLAS x_proj) %.1f us, library chain (narrow_linear x_proj) "
              "%.1f us; ratio best persistent / library %.3f\n",
              t_pers2, t_lib, t_lib_narrow, t_best / std::min(t_lib, t_lib_narrow));
  const int best_variant = int(std::min_element(t_var, t_var + kVariants) - t_var);
  {  // The token's tail as the model runs it, beside either: the final add + norm and the LM head's product
     // (cuBLAS, 64 × D → 50,280 bf16; the model's fused argmax head is of the same order), so the sums compare with
     // `profile`'s per-token decode time and mamba-ssm's (~0.85 ms at 130M on these cards).
    constexpr int kVocab = 50280;
    bf16 *head_w, *normed_f, *logits;
    MCD_CUDA_CHECK(cudaMalloc(&head_w, size_t(kVocab) * D * 2));
    MCD_CUDA_CHECK(cudaMemset(head_w, 0, size_t(kVocab) * D * 2));
    MCD_CUDA_CHECK(cudaMalloc(&normed_f, size_t(kRows) * D * 2));
    MCD_CUDA_CHECK(cudaMalloc(&logits, size_t(kRows) * kVocab * 2));
    auto tail = [&](float* res, bf16* pending) {
      mcd::dev::add_norm_bf16(kRows, D, res, pending, dm.norm_w, res, normed_f, rstd, s);
      mcd::dev::linear_bf16(cb, head_w, normed_f, logits, kRows, D, kVocab);
    };
    const double tp =
        mcd::dev::graph_us(s, reps, [&](int) { persistent(L, nullptr, kRows, best_variant); tail(resid, hidden); });
    const double tl = mcd::dev::graph_us(s, reps, [&](int) { library(L, false); tail(resid_lib, hidden_lib); });
    std::printf("time %s batch %d, whole token (layers + final norm + head product, graph): persistent (variant %d) "
                "%.1f us, library chain %.1f us; ratio %.3f\n", label, kRows, best_variant, tp, tl, tp / tl);
    for (void* ptr : {(void*)head_w, (void*)normed_f, (void*)logits}) MCD_CUDA_CHECK(cudaFree(ptr));
  }
  {
    const int n = 2000;
    auto bk = barrier_kernel;
    const double t = mcd::dev::graph_us(s, 5, [&](int) {
      MCD_CUDA_CHECK(cudaMemsetAsync(counter, 0, 4, s));
      cu::launch_in_clusters(bk, dim3(kBlocks), kThreads, Dm::kSmem, s, unsigned(kCluster), false, counter, n);
    });
    std::printf("time grid barrier (%d blocks in clusters of %d): %.3f us each (%d per launch)\n", kBlocks, kCluster,
                t / n, n);
  }
  for (void* ptr : {(void*)ssm, (void*)ssm_lib, (void*)conv, (void*)conv_lib, (void*)resid, (void*)resid_lib,
                    (void*)hidden, (void*)hidden_lib, (void*)h, (void*)h_lib, (void*)xc, (void*)y, (void*)xz_lib,
                    (void*)xc_lib, (void*)xd_lib, (void*)y_lib, (void*)counter, (void*)stamps, (void*)subs, (void*)rstd, (void*)emb_f})
    MCD_CUDA_CHECK(cudaFree(ptr));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20, check_layers = 3;
  bool with96 = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--check-layers") && i + 1 < argc) check_layers = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--with-96")) with96 = true;
  }
  cudaDeviceProp prop{};
  MCD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  cudaStream_t s;
  MCD_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t cb;
  cublasCreate(&cb);
  cublasSetStream(cb, s);
  // Every resident layout: 16 clusters of 8 where they fit, else 15 (uneven channel split); at 130M with --with-96
  // also 12 (16 channels each; 1.3 % slower than 15 in call B).
  int r = run_shape<Shape130M, 8, 128>(reps, check_layers, s, cb);
  if (r == 2) r = run_shape<Shape130M, 8, 120>(reps, check_layers, s, cb);
  const int r96 = with96 ? run_shape<Shape130M, 8, 96>(reps, check_layers, s, cb) : 0;
  int r370 = run_shape<Shape370M, 8, 128>(reps, check_layers, s, cb);
  if (r370 == 2) r370 = run_shape<Shape370M, 8, 120>(reps, check_layers, s, cb);
  const bool ok = r == 0 && r96 == 0 && r370 == 0;
  cublasDestroy(cb);
  std::printf("%s\n", ok ? "check: all ok" : "check: FAILED");
  return ok ? 0 : 1;
}
