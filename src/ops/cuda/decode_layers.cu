// All Mamba layers of one decode token for a batch of 1–64 rows as ONE persistent kernel (issue 14; parameters and
// why: decode_layers_params.h; semantics: ops/decode_layers.h; first measured as dev/decode_lab/
// persistent_layers_lab.cu). Plain CUDA, no LibTorch.
//
// Layout: G clusters of 8 blocks, one block per SM (G = 16 where they are all resident, else 15: an H100 holds 15),
// 256 threads at the 130M widths and 384 at 370M. Block b of B = 8G owns channels [b·E/B, (b + 1)·E/B), rank r of
// cluster q the inner slice [KS·r, KS·(r + 1)) (KS = E / 8) and cluster q out_proj's 8-column tiles
// [q·(D/8)/G, (q + 1)·(D/8)/G). Per layer four phases separated by grid barriers:
//   1 rows:     block m < rows: residual[m] += pending[m] (layer 0: the embedding row); h[m] = rmsnorm(·)·w  → h
//   2 channels: in_proj's x and z columns of the block's channels over h (K-chunks of 128, two buffers, tensor
//               cores), then the conv step of those channels (conv state in registers)            → xc
//   3 x_proj:   each cluster forms all of x_dbl (rank r: its inner slice; partial products meet over distributed
//               shared memory, added in place by the rank owning the rows), then dt_proj + softplus, the state
//               update of the block's channels (state in registers, loaded a layer ahead), D skip, SiLU(z) gate → y
//   4 out_proj: rank r's inner slice of y against the cluster's columns, partial products over DSMEM → pending
// Intermediates are rounded to bf16 where the per-layer kernels write bf16 (h, xz, xc, x_dbl, y, out); every sum and
// the SSM state are fp32. Weight slices are requested with cp.async a phase or more ahead.
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_layers_params.h"
#include "ops/cuda/mma_bf16.cuh"

namespace mcd::ops::cuda {
namespace {

using bf16 = __nv_bfloat16;
namespace cg = cooperative_groups;

constexpr int kRows = kDecodeLayersMaxRows, kPad = 8;
constexpr int kConvW = 4;  // conv width; the state keeps the newest kConvW − 1 inputs

// The compiled widths; kThreads: 384 at 370M so a thread's share of the (row, channel) states stays ~3 × 16 registers.
struct Shape130M {
  static constexpr int D = 768, E = 1536, N = 16, R = 48, kThreads = 256;
};
struct Shape370M {
  static constexpr int D = 1024, E = 2048, N = 16, R = 64, kThreads = 384;
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
  static_assert(kRows % kCluster == 0 && kThreads % 128 == 0, "rows shared by the ranks, 4 row tiles per group");
  static_assert(E % kCluster == 0 && XN % 8 == 0 && D % KC == 0, "tile sizes");
  static_assert(KS % 16 == 0 && N == 16, "splits");
  static constexpr size_t mx(size_t a, size_t b) { return a > b ? a : b; }
  static constexpr size_t pad16(size_t b) { return (b + 15) / 16 * 16; }
  // Shared memory (bytes), every region 16-byte aligned:
  //   work: phase 2 two h chunks; phases 3 and 4 the (64, KS) slice of xc or y
  //   XD:   phase 2 in_proj's output; phase 3 the cluster's x_proj partial products, then (in place) x_dbl;
  //         phase 4 out_proj's partial products
  static constexpr size_t kWork = mx(size_t(2) * kRows * LDC * 2, size_t(kRows) * LDK * 2);
  static constexpr size_t oXD = 0 + kWork;
  static constexpr size_t kXD = size_t(kRows) * mx(mx(XN, LDZ), OC) * 4;
  static constexpr size_t oWin = oXD + kXD;                    // (LDZ, LDH) bf16: x rows, z rows of the block's channels
  static constexpr size_t oWx = oWin + size_t(LDZ) * LDH * 2;  // (XN, LDK) bf16, then out_proj's (OC, LDK)
  static constexpr size_t oXZ = oWx + mx(XN, OC) * LDK * 2;    // (64, LDZ) fp32: in_proj's x and z columns
  static constexpr size_t oXC = oXZ + size_t(kRows) * LDZ * 4; // (64, C) fp32: the conv step's output
  // The layer's small per-channel weights: conv (C, 4) bf16; conv bias, dt bias, D (C each) as fp32 (plain loads: a
  // block's channels need not start 4-byte aligned); A_log (C, N) and dt_proj (C, R) bf16.
  static constexpr size_t oConvW = oXC + size_t(kRows) * C * 4;
  static constexpr size_t oConvB = oConvW + pad16(C * kConvW * 2);
  static constexpr size_t oDtB = oConvB + pad16(C * 4);
  static constexpr size_t oDsk = oDtB + pad16(C * 4);
  static constexpr size_t oAlog = oDsk + pad16(C * 4);
  static constexpr size_t oWdt = oAlog + pad16(C * N * 2);
  static constexpr size_t oRed = oWdt + pad16(C * R * 2);  // the norm's per-warp sums
  static constexpr size_t kSmem = oRed + 64;
};

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
    cp_async16(s + r * lds + c, ok ? g + r * ldg + c : g, ok ? 16 : 0);
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
      ldmatrix_x4(a, a_row + k);
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int nt = G * j + grp;
        if (nt < NT) {
          uint32_t b[2];
          ldmatrix_x2(b, b_row + 8 * nt * ldb + k);
          mma_bf16_16x8x16(acc[j], a, b[0], b[1]);
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
__global__ void __launch_bounds__(S::kThreads, 1) decode_layers_kernel(const __grid_constant__ DecodeLayersParams p) {
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
  bf16* sAlog = reinterpret_cast<bf16*>(smem + Dm::oAlog);
  bf16* sWdt = reinterpret_cast<bf16*>(smem + Dm::oWdt);
  float* sRed = reinterpret_cast<float*>(smem + Dm::oRed);
  unsigned bar = 0;
  const auto bf = [](const void* q) { return static_cast<const bf16*>(q); };
  bf16* pending = static_cast<bf16*>(p.pending);
  bf16* h_s = static_cast<bf16*>(p.scratch);  // (64, D), then xc and y (64, E) each
  bf16* xc_s = h_s + kRows * D;
  bf16* y_s = xc_s + kRows * E;
  auto request_win = [&](int l) {  // x rows then z rows of the block's channels
    copy_tile(Win, LDH, bf(p.layer[l].in_proj) + size_t(e0) * D, D, Cb, D);
    copy_tile(Win + Cb * LDH, LDH, bf(p.layer[l].in_proj) + size_t(E + e0) * D, D, Cb, D);
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
      const bf16* cs = static_cast<bf16*>(p.layer[l].conv_state) + (size_t(m) * E + e0 + c) * CW;
#pragma unroll
      for (int k = 0; k < CW; ++k) cst[j][k] = cs[k];
    }
  };
  request_win(0);
  cp_async_commit();
  load_states(0);
  for (int l = 0; l < p.layers; ++l) {
    // ---- Phase 1: the residual add and the norm, one row per block (the others only request weights).
    const DecodeLayerPointers& lp = p.layer[l];
    copy_small(sConvW, bf(lp.conv_weight) + size_t(e0) * kConvW, Cb * kConvW);
    copy_small(sAlog, bf(lp.A_log) + size_t(e0) * N, Cb * N);
    copy_small(sWdt, bf(lp.dt_proj_weight) + size_t(e0) * R, Cb * R);
    cp_async_commit();
    for (int i = tid; i < Cb; i += kThreads) {  // read in phases 2–3, after the barrier below
      sConvB[i] = __bfloat162float(bf(lp.conv_bias)[e0 + i]);
      sDtB[i] = __bfloat162float(bf(lp.dt_proj_bias)[e0 + i]);
      sDsk[i] = __bfloat162float(bf(lp.D)[e0 + i]);
    }
    if (blk < rows) {
      const int m = blk;
      constexpr int PER = (D + kThreads - 1) / kThreads;
      float r[PER];
      float ss = 0.f;
      const bf16* hid = l == 0 ? bf(p.embedding) + size_t(p.tokens[m]) * D : pending + size_t(m) * D;
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
      ss = warp_sum(ss);
      if (tid % 32 == 0) sRed[tid / 32] = ss;
      __syncthreads();
      float tot = 0.f;
#pragma unroll
      for (int w = 0; w < kThreads / 32; ++w) tot += sRed[w];
      const float rstd = rsqrtf(tot / float(D) + p.eps);
      const bf16* nw = bf(lp.norm_weight);
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        const int d = tid + kThreads * i;
        if (d < D) h_s[size_t(m) * D + d] = __float2bfloat16(r[i] * rstd * __bfloat162float(nw[d]));
      }
    }
    grid_sync(p.counter, bar);
    // ---- Phase 2: in_proj of the block's channels over h in K-chunks (two buffers), then their conv step.
    {
      WarpTiles<Dm::NTI, G> t;
      t.zero();
      copy_tile(work, LDC, h_s, D, kRows, KC, rows);
      cp_async_commit();
      constexpr int kChunks = D / KC;
      for (int ch = 0; ch < kChunks; ++ch) {
        if (ch + 1 < kChunks) {
          copy_tile(work + ((ch + 1) % 2) * kRows * LDC, LDC, h_s + (ch + 1) * KC, D, kRows, KC, rows);
          cp_async_commit();
          cp_async_wait_group<1>();  // chunk ch (and everything older: in_proj's slice, the small weights)
        } else {
          cp_async_wait_group<0>();
        }
        __syncthreads();
        t.accumulate(work + (ch % 2) * kRows * LDC, LDC, 0, Win, LDH, ch * KC, KC);
        __syncthreads();  // the buffer is refilled two chunks on
      }
      t.store(XZ);
    }
    copy_tile(Wx, LDK, bf(lp.x_proj) + size_t(rank) * KS, E, XN, KS);  // for phase 3
    cp_async_commit();
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
      acc *= sigmoid_f(acc);
      const bf16 u = __float2bfloat16(acc);
#pragma unroll
      for (int k = 0; k + 1 < CW; ++k) cst[j][k] = cst[j][k + 1];
      cst[j][CW - 1] = xb;
      bf16* cs = static_cast<bf16*>(p.layer[l].conv_state) + (size_t(m) * E + e0 + c) * CW;
#pragma unroll
      for (int k = 0; k < CW; ++k) cs[k] = cst[j][k];
      xc_s[size_t(m) * E + e0 + c] = u;
      XC[m * C + c] = __bfloat162float(u);
    }
    grid_sync(p.counter, bar);
    // ---- Phase 3: x_proj in each cluster (rank r: inner slice r), dt_proj, the state update, the gate.
    copy_tile(work, LDK, xc_s + size_t(rank) * KS, E, kRows, KS, rows);
    cp_async_commit();
    if (l + 1 < p.layers) request_win(l + 1);
    cp_async_commit();
    cp_async_wait_group<1>();  // x_proj's slice and xc's (the next in_proj slice may still be on its way)
    __syncthreads();
    {
      WarpTiles<XN / 8, G> t;
      t.zero();
      t.accumulate(work, LDK, 0, Wx, LDK, 0, KS);
      t.store(XD);
    }
    __syncthreads();  // Wx is free
    copy_tile(Wout, LDK, bf(lp.out_proj) + size_t(oc0) * E + size_t(rank) * KS, E, OCq, KS);
    cp_async_commit();
    cluster.sync();
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
      }
    }
    cluster.sync();
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int pr = tid + kThreads * j, m = pr / Cb, c = pr % Cb;
      if (pr >= rows * Cb) continue;
      const float* xd = XD + m * XN;
      float dt = sDtB[c];
#pragma unroll 8
      for (int k = 0; k < R; ++k) dt = fmaf(xd[k], __bfloat162float(sWdt[c * R + k]), dt);
      dt = softplus_f(dt);
      const float u = XC[m * C + c];
      const float z = bf16r(XZ[m * LDZ + Cb + c]);
      const float du = dt * u;
      float yv = 0.f;
#pragma unroll
      for (int n = 0; n < N; ++n) {
        const float a = -__expf(__bfloat162float(sAlog[c * N + n]));
        st[j][n] = fmaf(__expf(dt * a), st[j][n], du * xd[R + n]);
        yv = fmaf(st[j][n], xd[R + N + n], yv);
      }
      yv = fmaf(sDsk[c], u, yv);
      yv *= z * sigmoid_f(z);
      y_s[size_t(m) * E + e0 + c] = __float2bfloat16(yv);
      float4* s4 = reinterpret_cast<float4*>(p.layer[l].ssm_state + (size_t(m) * E + e0 + c) * N);
#pragma unroll
      for (int v = 0; v < N / 4; ++v) s4[v] = make_float4(st[j][4 * v], st[j][4 * v + 1], st[j][4 * v + 2], st[j][4 * v + 3]);
    }
    if (l + 1 < p.layers) load_states(l + 1);
    grid_sync(p.counter, bar);
    // ---- Phase 4: out_proj, rank r's inner slice against the cluster's columns; partial products over DSMEM.
    copy_tile(work, LDK, y_s + size_t(rank) * KS, E, kRows, KS, rows);
    cp_async_commit();
    cp_async_wait_all();  // y's slice and out_proj's (the next in_proj slice, requested a phase earlier, too)
    __syncthreads();
    {
      WarpTiles<Dm::NTO, G> t;  // columns past OCq: unused
      t.zero();
      t.accumulate(work, LDK, 0, Wout, LDK, 0, KS);
      t.store(XD);
    }
    cluster.sync();
    {
      constexpr int kRowsEach = kRows / kCluster;
      for (int i = tid; i < kRowsEach * OCq; i += kThreads) {
        const int m = rank * kRowsEach + i / OCq, c = i % OCq;
        float v = 0.f;
#pragma unroll
        for (int s = 0; s < kCluster; ++s) v += cluster.map_shared_rank(XD, s)[m * OC + c];
        if (m < rows) pending[size_t(m) * D + oc0 + c] = __float2bfloat16(v);
      }
    }
    grid_sync(p.counter, bar);  // also: no block leaves (or reuses XD) while its cluster still reads it
  }
  cp_async_wait_all();
}

template <class S, int kNB>
size_t smem_of() {
  return Dims<S, kDecodeLayersCluster, kNB>::kSmem;
}

// Blocks per launch for shape S on the current device: 128 when 16 clusters are resident at once, 120 at 15, else 0.
template <class S>
int blocks_for_device() {
  static int64_t known[kMaxCachedDevices] = {};  // blocks + 1 (0: not asked yet)
  return int(once_per_device(known, [](int dev) -> int64_t {
           int major = 0;
           MCD_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
           if (major < 9) return 1;
           for (const int blocks : {128, 120}) {
             auto kernel = blocks == 128 ? decode_layers_kernel<S, kDecodeLayersCluster, 128>
                                         : decode_layers_kernel<S, kDecodeLayersCluster, 120>;
             const size_t smem = blocks == 128 ? smem_of<S, 128>() : smem_of<S, 120>();
             MCD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
             cudaLaunchConfig_t config = {};
             config.gridDim = dim3(unsigned(blocks));
             config.blockDim = dim3(unsigned(S::kThreads));
             config.dynamicSmemBytes = smem;
             cudaLaunchAttribute attr;
             attr.id = cudaLaunchAttributeClusterDimension;
             attr.val.clusterDim.x = kDecodeLayersCluster;
             attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
             config.attrs = &attr;
             config.numAttrs = 1;
             int clusters = 0;
             MCD_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &config));
             if (clusters * kDecodeLayersCluster >= blocks) return blocks + 1;
           }
           return 1;
         })) - 1;
}

template <class S>
void launch(const DecodeLayersParams& p) {
  const int blocks = blocks_for_device<S>();
  if (blocks == 0) fail("decode_layers (CUDA): the device cannot hold the kernel's clusters at once");
  MCD_CUDA_CHECK(cudaMemsetAsync(p.counter, 0, sizeof(unsigned), p.stream));
  if (blocks == 128)
    launch_in_clusters(decode_layers_kernel<S, kDecodeLayersCluster, 128>, dim3(128), S::kThreads, smem_of<S, 128>(),
                       p.stream, unsigned(kDecodeLayersCluster), false, p);
  else
    launch_in_clusters(decode_layers_kernel<S, kDecodeLayersCluster, 120>, dim3(120), S::kThreads, smem_of<S, 120>(),
                       p.stream, unsigned(kDecodeLayersCluster), false, p);
}

template <class S>
bool is(int d_model, int d_inner, int dt_rank) {
  return d_model == S::D && d_inner == S::E && dt_rank == S::R;
}

}  // namespace

bool decode_layers_shape_compiled(int d_model, int d_inner, int dt_rank) {
  return is<Shape130M>(d_model, d_inner, dt_rank) || is<Shape370M>(d_model, d_inner, dt_rank);
}

bool decode_layers_fits_device(int d_model, int d_inner, int dt_rank) {
  if (is<Shape130M>(d_model, d_inner, dt_rank)) return blocks_for_device<Shape130M>() > 0;
  if (is<Shape370M>(d_model, d_inner, dt_rank)) return blocks_for_device<Shape370M>() > 0;
  return false;
}

size_t decode_layers_scratch_bytes(int d_model, int d_inner) {
  return size_t(kRows) * (size_t(d_model) + 2 * size_t(d_inner)) * sizeof(bf16);
}

void decode_layers(const DecodeLayersParams& p) {
  if (p.rows < 1 || p.rows > kRows || p.layers < 1 || p.layers > kDecodeLayersMaxLayers)
    fail("decode_layers (CUDA): rows must be 1.." + std::to_string(kRows) + " and layers 1.." +
         std::to_string(kDecodeLayersMaxLayers));
  if (is<Shape130M>(p.d_model, p.d_inner, p.dt_rank)) return launch<Shape130M>(p);
  if (is<Shape370M>(p.d_model, p.d_inner, p.dt_rank)) return launch<Shape370M>(p);
  fail("decode_layers (CUDA): no kernel for d_model " + std::to_string(p.d_model) + ", d_inner " +
       std::to_string(p.d_inner) + ", dt_rank " + std::to_string(p.dt_rank));
}

}  // namespace mcd::ops::cuda
