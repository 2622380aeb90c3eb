// The decode-step kernels (decode_step_params.h): the conv step one thread per (sequence,
// channel), the scan step kScanStepLanes per (sequence, channel); fp32 sums and state, weights read
// as fp32 or in the activations' dtype (a bf16 model needs no casts).
#include <string>
#include <type_traits>

#include "ops/cuda/conv_params.h"
#include "ops/cuda/conv_step.cuh"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_step_params.h"

namespace mcd::ops::cuda {
namespace {

// Both kernels issue every load of a thread before its first store (the window, or the state
// entries and their A, B, C), so a step costs one memory round trip, not one per state: with the
// loads and stores interleaved the compiler must assume they alias and walks them in order, which
// made the batch-64 scan step 21.7 µs per layer (130M, H200; docs/PERF_NOTES.md, fifth session).

template <typename T, typename W>
__global__ void __launch_bounds__(kStepThreads) conv_step_kernel(ConvStepParams p) {
  const int64_t i = int64_t(blockIdx.x) * kStepThreads + threadIdx.x;
  if (i >= p.batch * p.dim) return;  // (reads and writes nothing: needs no wait)
  const int64_t b = i / p.dim, e = i - b * p.dim;
  const int K = p.width;
  T* __restrict__ state = static_cast<T*>(p.state) + b * p.state_s.batch + e * p.state_s.row;
  const int64_t ts = p.state_s.time;
  const W* __restrict__ w = static_cast<const W*>(p.weight) + e * p.weight_row_stride;
  prefetch_l2(w);  // the weights while the previous kernel runs (an overlapped launch); then wait for it
  wait_for_previous_kernel();
  allow_next_kernel();
  const T x = static_cast<const T*>(p.x)[b * p.x_batch_stride + e];
  const W* bias = p.bias != nullptr ? static_cast<const W*>(p.bias) + e : nullptr;
  const float acc = conv_step_channel<T, W>(state, ts, w, bias, x, K, p.silu);
  static_cast<T*>(p.out)[b * p.dim + e] = from_float<T>(acc);
}

// Four consecutive elements as floats, one vector load (16 bytes of fp32, 8 of a 16-bit type);
// kL2: at L2 (ld.global.cg), the coherent level, for what another kernel wrote and this one reads
// before waiting for its predecessor (ScanStepParams::inputs_settled).
template <typename T, bool kL2 = false>
__device__ __forceinline__ void load4(const T* __restrict__ g, float* out) {
  if constexpr (sizeof(T) == 4) {
    const float4 v = kL2 ? __ldcg(reinterpret_cast<const float4*>(g)) : *reinterpret_cast<const float4*>(g);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  } else {
    const uint2 v = kL2 ? __ldcg(reinterpret_cast<const uint2*>(g)) : *reinterpret_cast<const uint2*>(g);
    const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = to_float(e[i]);
  }
}
template <bool kL2, typename T>
__device__ __forceinline__ T load1(const T* __restrict__ g) {
  if constexpr (kL2) return __ldcg(g);
  else return *g;
}

// kScanStepLanes lanes per (sequence, channel), lane j owning the kScanStepMaxPerLane-or-fewer
// consecutive states j·S … j·S + S − 1 (S = ⌈N / kScanStepLanes⌉): the lanes of a channel touch one
// contiguous stretch of state words, and the per-channel work (Δ, its low-rank product, the gate) is
// repeated on 4 lanes, not 16 — with 16 lanes, one state each, the batch-64 step was bound by those
// repeated instructions (20.2 µs per layer, 130M, H200, fifth session).
// kLowRank: Δ = delta_low · dt_projᵀ is formed here (the lanes split the rank), so the model's
// dt_proj needs no matrix product of its own.
// kVec4: every lane owns a multiple of 4 states at 4-aligned offsets (N a multiple of 16, aligned
// bases and strides): the state, A, B and C move as vectors, the state's 4 words in one 16-byte
// access instead of four 4-byte ones (per lane 16 bytes apart, so the scalar version touched each
// sector four times over at batch 64).
// kPerLane: the most states a lane owns, as compiled (4 covers N ≤ 16; the kernel's arrays and
// registers scale with it: 92 registers at kScanStepMaxPerLane = 16 held 5 blocks per SM, and the
// batch-64 step ran 4.7 waves of them at 14.8 µs per 130M layer, H200, seventh session).
// The grid: blockIdx.y the sequence, blockIdx.x a block of kStepThreads / kScanStepLanes channels (no
// division by E: a 64-bit one took a good share of the batch-64 step's instructions).
// kRankVec4 (with kLowRank): each lane takes a contiguous quarter of the rank (a multiple of 4,
// aligned), its Δ-row and weight entries as vectors; otherwise lane j the ranks j, j + 4, ….
// kSettled (p.inputs_settled): the state, u, z and the weights are loaded before waiting for the
// previous kernel, Δ's rows, B and C after it; otherwise everything after it.
template <typename T, typename W, bool kLowRank, bool kVec4, int kPerLane, bool kRankVec4, bool kSettled>
__global__ void __launch_bounds__(kStepThreads) scan_step_kernel(ScanStepParams p) {
  const int lane = threadIdx.x % kScanStepLanes;
  const int64_t b = blockIdx.y, e_raw = int64_t(blockIdx.x) * (kStepThreads / kScanStepLanes) + threadIdx.x / kScanStepLanes;
  // No early return: every lane of the warp takes part in the shuffles; past the end they read nothing.
  const bool ok = e_raw < p.dim;
  const int64_t e = ok ? e_raw : 0, g = b * p.dim + e;  // g: the (sequence, channel) row of the state
  const int N = static_cast<int>(p.dstate);
  const int per_lane = (N + kScanStepLanes - 1) / kScanStepLanes, n0 = lane * per_lane;
  const int mine = ok ? max(0, min(per_lane, N - n0)) : 0;  // states this lane owns
  const W* __restrict__ a = static_cast<const W*>(p.A) + e * N + n0;
  const T* __restrict__ Bv = static_cast<const T*>(p.B) + b * p.B_batch_stride + n0;
  const T* __restrict__ Cv = static_cast<const T*>(p.C) + b * p.C_batch_stride + n0;
  float* __restrict__ h = p.state + g * N + n0;
  // Every load first — the state, A and the channel's inputs; then Δ's rows, B and C (x_proj's output,
  // the previous kernel's) — then the arithmetic, then the stores. The channel's scalars used after
  // the sums (dt_bias; D and z by lane 0, after two shuffle reductions) load here too: where they
  // were used, each was one more round trip at the end of the step.
  float hs[kPerLane], as[kPerLane], bs[kPerLane], cs[kPerLane];
  float u = 0.f, bias = 0.f, d_skip = 0.f, zv = 0.f;
  const bool head = ok && lane == 0;  // the lane that finishes the channel
  const auto load_settled = [&] {
    if constexpr (kVec4) {
#pragma unroll
      for (int j = 0; j < kPerLane; j += 4) {
        if (j >= mine) break;
        load4<float, kSettled>(h + j, hs + j);
        load4(a + j, as + j);
      }
    } else {
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        if (j >= mine) break;
        hs[j] = load1<kSettled>(h + j);
        as[j] = to_float(a[j]);
      }
    }
    if (ok) u = to_float(load1<kSettled>(static_cast<const T*>(p.u) + b * p.u_batch_stride + e));
    if (p.dt_bias && ok) bias = to_float(static_cast<const W*>(p.dt_bias)[e]);
    if (p.D && head) d_skip = to_float(static_cast<const W*>(p.D)[e]);
    if (p.z && head) zv = to_float(load1<kSettled>(static_cast<const T*>(p.z) + b * p.z_batch_stride + e));
  };
  if constexpr (kSettled) {
    load_settled();
    if constexpr (kLowRank)  // (always: only the low-rank step is settled)
      if (head) prefetch_l2(static_cast<const W*>(p.delta_proj) + e * p.rank);
  } else {
    // The weights' lines into L2 while the previous kernel runs (an overlapped launch).
    if (mine > 0) prefetch_l2(a);
    if (head) {
      if constexpr (kLowRank) prefetch_l2(static_cast<const W*>(p.delta_proj) + e * p.rank);
      if (p.D) prefetch_l2(static_cast<const W*>(p.D) + e);
      if (p.dt_bias) prefetch_l2(static_cast<const W*>(p.dt_bias) + e);
    }
  }
  wait_for_previous_kernel();
  allow_next_kernel();
  if constexpr (!kSettled) load_settled();
  if constexpr (kVec4) {
#pragma unroll
    for (int j = 0; j < kPerLane; j += 4) {
      if (j >= mine) break;
      load4(Bv + j, bs + j);
      load4(Cv + j, cs + j);
    }
  } else {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      if (j >= mine) break;
      bs[j] = to_float(Bv[j]);
      cs[j] = to_float(Cv[j]);
    }
  }
  float dt = 0.f;
  if constexpr (kLowRank) {
    const T* __restrict__ low = static_cast<const T*>(p.delta) + b * p.delta_batch_stride;
    const W* __restrict__ wr = static_cast<const W*>(p.delta_proj) + e * p.rank;
    const int R = ok ? static_cast<int>(p.rank) : 0;
    float part = 0.f;
    if constexpr (kRankVec4) {
      const int per = R / kScanStepLanes, r0 = lane * per;  // a multiple of 4
      // Unrolled so the lane's vector loads (3 pairs at R = 48) are in flight together.
#pragma unroll 4
      for (int c = 0; c < per; c += 4) {
        float lv[4], wv[4];
        load4(low + r0 + c, lv);
        load4(wr + r0 + c, wv);
#pragma unroll
        for (int k = 0; k < 4; ++k) part = fmaf(lv[k], wv[k], part);
      }
    } else {
      // Unrolled so the lane's rank loads (12 at R = 48) are in flight together, not one latency each.
#pragma unroll 8
      for (int r = lane; r < R; r += kScanStepLanes) part = fmaf(to_float(low[r]), to_float(wr[r]), part);
    }
    dt = warp_sum<kScanStepLanes>(part);
  } else {
    dt = ok ? to_float(static_cast<const T*>(p.delta)[b * p.delta_batch_stride + e]) : 0.f;
  }
  if (p.dt_bias && ok) dt += bias;
  if (p.softplus) dt = softplus_f(dt);
  const float du = dt * u;
  float y = 0.f;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    if (j >= mine) break;
    const float an = p.a_is_log ? -__expf(as[j]) : as[j];
    hs[j] = fmaf(__expf(dt * an), hs[j], du * bs[j]);
    y = fmaf(hs[j], cs[j], y);
    if constexpr (!kVec4) h[j] = hs[j];
  }
  if constexpr (kVec4) {
#pragma unroll
    for (int j = 0; j < kPerLane; j += 4) {
      if (j >= mine) break;
      *reinterpret_cast<float4*>(h + j) = make_float4(hs[j], hs[j + 1], hs[j + 2], hs[j + 3]);
    }
  }
  y = warp_sum<kScanStepLanes>(y);
  if (!head) return;
  if (p.D) y = fmaf(d_skip, u, y);
  if (p.z) y *= zv * sigmoid_f(zv);
  static_cast<T*>(p.out)[b * p.dim + e] = from_float<T>(y);
}

unsigned blocks_for(int64_t threads) { return unsigned((threads + kStepThreads - 1) / kStepThreads); }

template <typename T, typename W>
void launch_conv(const ConvStepParams& p) {
  if (p.batch * p.dim == 0) return;
  launch_overlapped(conv_step_kernel<T, W>, dim3(blocks_for(p.batch * p.dim)), kStepThreads, 0, p.stream, p.overlap, p);
}

bool aligned(const void* q, int bytes) { return reinterpret_cast<uintptr_t>(q) % bytes == 0; }

template <typename T, typename W>
void launch_scan(const ScanStepParams& p) {
  if (p.batch * p.dim == 0) return;
  constexpr int kChannels = kStepThreads / kScanStepLanes;
  MCD_CHECK(p.batch <= 65535, "scan step: at most 65535 sequences, got ", p.batch);
  const dim3 blocks(unsigned((p.dim + kChannels - 1) / kChannels), unsigned(p.batch));
  // Vectors: N a multiple of 4 per lane, 4-element groups aligned in the state, A, B and C.
  const int tb = static_cast<int>(sizeof(T)), wb = static_cast<int>(sizeof(W));
  const int64_t per_lane = (p.dstate + kScanStepLanes - 1) / kScanStepLanes;
  const bool vec4 = p.dstate % (4 * kScanStepLanes) == 0 && aligned(p.state, 16) && aligned(p.A, 4 * wb) &&
                    aligned(p.B, 4 * tb) && aligned(p.C, 4 * tb) && p.B_batch_stride % 4 == 0 &&
                    p.C_batch_stride % 4 == 0;
  // The rank in vectors: a multiple of 4 per lane, every lane's stretch aligned in both operands.
  const bool rank_vec4 = p.delta_proj != nullptr && p.rank % (4 * kScanStepLanes) == 0 && aligned(p.delta, 4 * tb) &&
                         p.delta_batch_stride % 4 == 0 && aligned(p.delta_proj, 4 * wb);
  auto launch = [&](auto kernel) { launch_overlapped(kernel, blocks, kStepThreads, 0, p.stream, p.overlap, p); };
  MCD_BOOL_SWITCH(vec4, kVec4, [&] {
    if (p.delta_proj == nullptr) {
      if (per_lane <= 4) launch(scan_step_kernel<T, W, false, kVec4, 4, false, false>);
      else launch(scan_step_kernel<T, W, false, kVec4, kScanStepMaxPerLane, false, false>);
    } else {
      MCD_BOOL_SWITCH(rank_vec4, kRankVec4, [&] {
        MCD_BOOL_SWITCH(p.inputs_settled, kSettled, [&] {
          if (per_lane <= 4) launch(scan_step_kernel<T, W, true, kVec4, 4, kRankVec4, kSettled>);
          else launch(scan_step_kernel<T, W, true, kVec4, kScanStepMaxPerLane, kRankVec4, kSettled>);
        });
      });
    }
  });
}

// (activation dtype, weight dtype) → the instantiation; weights are fp32 or the activations' dtype.
template <class Params, class Launch>
void by_dtypes(const Params& p, const char* op, Launch&& launch) {
  MCD_CHECK(p.weight_dtype == DType::kFloat32 || p.weight_dtype == p.dtype, op,
            ": weights must be float32 or the activations' dtype");
  const bool w32 = p.weight_dtype == DType::kFloat32;
  switch (p.dtype) {
    case DType::kFloat32: launch(static_cast<float*>(nullptr), static_cast<float*>(nullptr)); return;
    case DType::kFloat16:
      w32 ? launch(static_cast<__half*>(nullptr), static_cast<float*>(nullptr))
          : launch(static_cast<__half*>(nullptr), static_cast<__half*>(nullptr));
      return;
    case DType::kBFloat16:
      w32 ? launch(static_cast<__nv_bfloat16*>(nullptr), static_cast<float*>(nullptr))
          : launch(static_cast<__nv_bfloat16*>(nullptr), static_cast<__nv_bfloat16*>(nullptr));
      return;
  }
  fail(std::string(op) + ": unsupported dtype code " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace

void conv_step(const ConvStepParams& p) {
  MCD_CHECK(p.width >= 1 && p.width <= kConvMaxWidth, "conv step: width must be 1..", kConvMaxWidth);
  by_dtypes(p, "conv step", [&](auto* t, auto* w) {
    launch_conv<std::remove_pointer_t<decltype(t)>, std::remove_pointer_t<decltype(w)>>(p);
  });
}

void scan_step(const ScanStepParams& p) {
  by_dtypes(p, "scan step", [&](auto* t, auto* w) {
    launch_scan<std::remove_pointer_t<decltype(t)>, std::remove_pointer_t<decltype(w)>>(p);
  });
}

}  // namespace mcd::ops::cuda
