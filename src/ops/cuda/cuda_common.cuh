// Device helpers shared by the kernel templates: dtype conversion, the launch check, the
// runtime-flag → template-bool switch, and tile copies between strided global memory and
// fp32 shared memory. Plain CUDA, no LibTorch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/params_common.h"
#include "util/error.h"

namespace mcd::ops::cuda {

constexpr float kLog2e = 1.4426950408889634f;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// softplus with LibTorch's threshold 20 (the CPU reference's definition).
// softplus(x) = max(x, 0) + log1p(e^(−|x|)), with log1p(y) = 2·atanh(s), s = y / (2 + y) ≤ 1/3, as
// 2s·Σ_k s^(2k) / (2k + 1) for k ≤ 7 (the next term is < 2e-9 of the sum): about half the
// instructions of log1pf, which reduces its argument first, and no branch.
__device__ __forceinline__ float softplus_f(float x) {
  const float y = __expf(-fabsf(x));
  const float s = __fdividef(y, 2.f + y), s2 = s * s;
  float q = 1.f / 15.f;
  q = fmaf(q, s2, 1.f / 13.f);
  q = fmaf(q, s2, 1.f / 11.f);
  q = fmaf(q, s2, 1.f / 9.f);
  q = fmaf(q, s2, 1.f / 7.f);
  q = fmaf(q, s2, 1.f / 5.f);
  q = fmaf(q, s2, 1.f / 3.f);
  q = fmaf(q, s2, 1.f);
  return fmaxf(x, 0.f) + 2.f * s * q;
}
// Sum over aligned groups of kLanes lanes of a warp (kLanes = 32: the whole warp), every lane
// receiving its group's sum; the whole warp must take part.
template <int kLanes = 32>
__device__ __forceinline__ float warp_sum(float v) {
  static_assert(kLanes >= 1 && kLanes <= 32 && (kLanes & (kLanes - 1)) == 0, "a power of two up to 32");
#pragma unroll
  for (int o = kLanes / 2; o >= 1; o /= 2) v += __shfl_xor_sync(kFullMask, v, o, kLanes);
  return v;
}
__device__ __forceinline__ float sigmoid_f(float x) { return 1.f / (1.f + __expf(-x)); }
// σ(x) from d = softplus(x) (the backward keeps d, not x): σ(x) = 1 − e^(−d). Below d = 0.5 the
// difference cancels, so there d · (1 − e^(−d))/d uses the series Σ_k (−d)^k / (k + 1)! (k ≤ 8).
__device__ __forceinline__ float sigmoid_from_softplus(float d) {
  if (d >= 0.5f) return 1.f - __expf(-d);
  float s = 1.f / 362880.f;
  s = fmaf(s, -d, 1.f / 40320.f);
  s = fmaf(s, -d, 1.f / 5040.f);
  s = fmaf(s, -d, 1.f / 720.f);
  s = fmaf(s, -d, 1.f / 120.f);
  s = fmaf(s, -d, 1.f / 24.f);
  s = fmaf(s, -d, 1.f / 6.f);
  s = fmaf(s, -d, 0.5f);
  s = fmaf(s, -d, 1.f);
  return d * s;
}

}  // namespace mcd::ops::cuda

// Throws mcd::Error naming the failing call, file and line.
#define MCD_CUDA_CHECK(expr)                                                                \
  do {                                                                                      \
    const cudaError_t mcd_err_ = (expr);                                                    \
    MCD_CHECK(mcd_err_ == cudaSuccess, "CUDA error '", cudaGetErrorString(mcd_err_), "' in ", \
              #expr, " at ", __FILE__, ":", __LINE__);                                      \
  } while (0)

// Runtime flag → compile-time bool (the only place flags become template arguments):
//   MCD_BOOL_SWITCH(p.z != nullptr, kHasZ, [&] { launch<kHasZ>(); });
#define MCD_BOOL_SWITCH(COND, NAME, ...)     \
  [&] {                                      \
    if (COND) {                              \
      constexpr static bool NAME = true;     \
      return __VA_ARGS__();                  \
    } else {                                 \
      constexpr static bool NAME = false;    \
      return __VA_ARGS__();                  \
    }                                        \
  }()

namespace mcd::ops::cuda {

// kernel<<<grid, threads, smem, stream>>>(p), raising the kernel's dynamic shared-memory limit
// first when smem is over the 48 KB default; throws mcd::Error on a launch error.
template <class Params>
void launch_with_smem(void (*kernel)(Params), dim3 grid, int threads, size_t smem, cudaStream_t stream,
                      const Params& p) {
  if (smem > 48 * 1024)
    MCD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<grid, threads, smem, stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

// cp.async (sm_80+): 16-byte global → shared copies that complete in the background; bytes past
// src_bytes (0–16) are zero-filled. Groups are committed per thread; wait_group<n> waits until at most
// n of this thread's newest groups are still in flight (a barrier then makes every thread's copies
// visible to the block).
// smem_addr: a shared-memory address (__cvta_generic_to_shared), for a caller that steps it itself.
__device__ __forceinline__ void cp_async16(unsigned smem_addr, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  cp_async16(static_cast<unsigned>(__cvta_generic_to_shared(smem)), gmem, src_bytes);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Overlapped launches (programmatic dependent launch, sm_90) for the decode step's chain of small
// kernels: with `overlap`, a kernel may start while the previous kernel on the stream still runs, so
// its launch, its blocks' set-up and the L2 prefetch of its weights hide behind that kernel instead
// of following it (at batch 1 each kernel is mostly such fixed latency). The rules that keep this
// exact: before wait_for_previous_kernel() a kernel only computes addresses and prefetches into L2
// (L2 is coherent, so no stale value can reach a register), every load and every store comes after
// it, and allow_next_kernel() comes after the wait, so at most the next kernel overlaps this one and
// "previous kernel complete" holds transitively for all earlier ones. One exception, by the caller's
// explicit promise: when the previous kernel is known to write none of some inputs and to follow
// these rules itself (so everything before it has finished when this kernel starts), those inputs
// may be loaded before the wait, at L2 (ld.global.cg) — ScanStepParams::inputs_settled, which only
// selective_scan_step_projected gives its step after its own x_proj kernel. Elsewhere (older GPUs, a
// plain launch) both are no-ops and the launch is the ordinary serialised one.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// A hint that the line holding `ptr` is read soon: fetched into L2, no register written.
__device__ __forceinline__ void prefetch_l2(const void* ptr) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(ptr));
}

// A per-device fact asked of the runtime once: cache[device] for the current device, filled by
// ask(device) on first use (0 means "not asked yet", so ask must not return 0; a racing first ask is
// harmless). 0 for a device past the table.
constexpr int kMaxCachedDevices = 64;
template <class Ask>
int64_t once_per_device(int64_t (&cache)[kMaxCachedDevices], Ask ask) {
  int dev = 0;
  MCD_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxCachedDevices) return 0;
  if (cache[dev] == 0) cache[dev] = ask(dev);
  return cache[dev];
}

// Whether the current device has programmatic dependent launch (compute capability 9.0 and up).
inline bool device_overlaps_launches() {
  static int64_t known[kMaxCachedDevices] = {};  // 1: yes, 2: no
  return once_per_device(known, [](int dev) -> int64_t {
           int major = 0;
           MCD_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
           return major >= 9 ? 1 : 2;
         }) == 1;
}

// How many blocks of kKernel (`threads` threads, `smem` dynamic shared memory bytes) are resident at
// once on the current device: its occupancy times the SM count, asked once per kernel and device
// (with the first call's threads and smem); -1 when none fits.
template <auto kKernel>
int64_t resident_blocks(int threads, size_t smem) {
  static int64_t slots[kMaxCachedDevices] = {};
  return once_per_device(slots, [&](int dev) -> int64_t {
    int per_sm = 0, sms = 0;
    // Beyond 48 KB a kernel's dynamic shared memory must be allowed first, or the query says 0 blocks.
    if (smem > 48 * 1024)
      MCD_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    MCD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, threads, smem));
    MCD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    return per_sm * sms > 0 ? int64_t(per_sm) * sms : -1;
  });
}

// Whether `blocks` blocks of kKernel are all resident at once on the current device (never when none fits).
template <auto kKernel>
bool fits_one_wave(int64_t blocks, int threads, size_t smem) {
  return blocks <= resident_blocks<kKernel>(threads, smem);
}

// kernel<<<grid, threads, smem, stream>>>(args...) in clusters of cluster_x blocks along x (1: no clusters; above the
// portable 8 the kernel is allowed non-portable sizes first) and, with `overlap` on a device that has it, as an
// overlapped launch (above); the dynamic shared-memory limit is raised first when smem is over the 48 KB default.
template <class... Params, class... Args>
void launch_in_clusters(void (*kernel)(Params...), dim3 grid, int threads, size_t smem, cudaStream_t stream,
                        unsigned cluster_x, bool overlap, const Args&... args) {
  if (smem > 48 * 1024)
    MCD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  if (cluster_x > 8) MCD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = dim3(static_cast<unsigned>(threads));
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[2];
  unsigned n = 0;
  if (cluster_x > 1) {
    attribute[n].id = cudaLaunchAttributeClusterDimension;
    attribute[n].val.clusterDim.x = cluster_x;
    attribute[n].val.clusterDim.y = 1;
    attribute[n].val.clusterDim.z = 1;
    ++n;
  }
  if (overlap && device_overlaps_launches()) {
    attribute[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  config.attrs = attribute;
  config.numAttrs = n;
  const cudaError_t err = cudaLaunchKernelEx(&config, kernel, args...);
  if (err != cudaSuccess) (void)cudaGetLastError();  // a refused launch must not fail the next launch's check
  MCD_CUDA_CHECK(err);
}

// kernel<<<grid, threads, smem, stream>>>(p), as an overlapped launch when `overlap` and the device
// has it (see above): launch_in_clusters without clusters.
template <class Params>
void launch_overlapped(void (*kernel)(Params), dim3 grid, int threads, size_t smem, cudaStream_t stream,
                       bool overlap, const Params& p) {
  if (!overlap || !device_overlaps_launches()) {
    kernel<<<grid, threads, smem, stream>>>(p);
    MCD_CUDA_CHECK(cudaGetLastError());
    return;
  }
  launch_in_clusters(kernel, grid, threads, smem, stream, 1u, true, p);
}

// Copies a (rows × kCols) tile of a strided global array into fp32 shared memory at
// Layout::at(r, c). Column c is time t0 + c; entries with r ≥ rows_valid or a time outside
// [0, len) read as 0. Consecutive threads walk the unit-stride dimension, so global accesses
// coalesce for time-contiguous (B, E, L) and for channel-contiguous (B, L, E) views alike.
// Loads are issued kBatch at a time into registers before any is stored, so each thread keeps
// several requests in flight instead of waiting out one DRAM latency per element (kBatch = 1 is
// the first version, kept for the kernel lab's before/after measurement).
// `g` points at (row 0, time 0); rows is usually a compile-time constant at the call site.
template <int kCols, int kThreads, class Layout, typename T>
__device__ __forceinline__ void load_tile_fast(float* __restrict__ s, const T* __restrict__ g,
                                               int64_t s_row, int64_t s_time, int rows,
                                               int rows_valid, int64_t t0, int64_t len);

// kBatch = 0 selects load_tile_fast (16-byte vectors where the layout allows).
template <int kCols, int kThreads, class Layout, int kBatch = 8, typename T>
__device__ __forceinline__ void load_tile(float* __restrict__ s, const T* __restrict__ g,
                                          int64_t s_row, int64_t s_time, int rows,
                                          int rows_valid, int64_t t0, int64_t len) {
  if constexpr (kBatch == 0) {
    load_tile_fast<kCols, kThreads, Layout>(s, g, s_row, s_time, rows, rows_valid, t0, len);
    return;
  }
  constexpr int kB = kBatch > 0 ? kBatch : 1;
  const bool time_fast = s_time == 1 || s_row != 1;
  const int total = rows * kCols;
  for (int base = 0; base < total; base += kB * kThreads) {
    float v[kB];
#pragma unroll
    for (int q = 0; q < kB; ++q) {
      const int idx = base + q * kThreads + static_cast<int>(threadIdx.x);
      const int r = time_fast ? idx / kCols : idx % rows;
      const int c = time_fast ? idx % kCols : idx / rows;
      const int64_t t = t0 + c;
      v[q] = (idx < total && r < rows_valid && t >= 0 && t < len)
                 ? to_float(g[r * s_row + t * s_time])
                 : 0.f;
    }
#pragma unroll
    for (int q = 0; q < kB; ++q) {
      const int idx = base + q * kThreads + static_cast<int>(threadIdx.x);
      const int r = time_fast ? idx / kCols : idx % rows;
      const int c = time_fast ? idx % kCols : idx / rows;
      if (idx < total) s[Layout::at(r, c)] = v[q];
    }
  }
}

__device__ __forceinline__ unsigned vec_word(const uint4& v, int w) {
  return w == 0 ? v.x : w == 1 ? v.y : w == 2 ? v.z : v.w;
}
// Element k of a 16-byte vector of T (little-endian: element 0 in the low bits of word x).
template <typename T>
__device__ __forceinline__ float vec_elem(const uint4& v, int k);
template <>
__device__ __forceinline__ float vec_elem<float>(const uint4& v, int k) {
  return __uint_as_float(vec_word(v, k));
}
template <>
__device__ __forceinline__ float vec_elem<__nv_bfloat16>(const uint4& v, int k) {
  const unsigned w = vec_word(v, k >> 1);
  return __uint_as_float((k & 1) ? (w & 0xffff0000u) : (w << 16));
}
template <>
__device__ __forceinline__ float vec_elem<__half>(const uint4& v, int k) {
  const unsigned w = vec_word(v, k >> 1);
  return __half2float(__ushort_as_half(static_cast<unsigned short>((k & 1) ? (w >> 16) : (w & 0xffffu))));
}

// load_tile with enough memory-level parallelism to approach HBM bandwidth: when the unit-stride
// dimension allows (extent and the other stride multiples of the vector, 16-byte aligned), each
// thread issues up to kVecBatch 16-byte loads before unpacking any; vectors that straddle the
// tile's valid edge fall back to element loads. Otherwise every element is loaded from a clamped,
// always-valid address first and converted afterwards (no load waits inside a branch). `g` must
// point at a valid element (row 0, time 0), which holds whenever the tile has a valid row and
// len ≥ 1. See [Note: scan kernel layout] in docs/PERF_NOTES.md.
template <int kCols, int kThreads, class Layout, typename T>
__device__ __forceinline__ void load_tile_fast(float* __restrict__ s, const T* __restrict__ g,
                                               int64_t s_row, int64_t s_time, int rows,
                                               int rows_valid, int64_t t0, int64_t len) {
  constexpr int kV = 16 / static_cast<int>(sizeof(T));
  constexpr int kVecBatch = 4;
  const bool time_fast = s_time == 1 || s_row != 1;
  const uintptr_t first = reinterpret_cast<uintptr_t>(g + t0 * s_time);
  const bool vec = time_fast
                       ? (s_time == 1 && kCols % kV == 0 && s_row % kV == 0 && first % 16 == 0)
                       : (rows % kV == 0 && s_time % kV == 0 && reinterpret_cast<uintptr_t>(g) % 16 == 0);
  if (vec) {
    const int n_fast = (time_fast ? kCols : rows) / kV;  // vectors along the unit-stride dim
    const int total = n_fast * (time_fast ? rows : kCols);
    for (int base = 0; base < total; base += kVecBatch * kThreads) {
      uint4 raw[kVecBatch];
      bool full[kVecBatch];
#pragma unroll
      for (int q = 0; q < kVecBatch; ++q) {
        const int idx = base + q * kThreads + static_cast<int>(threadIdx.x);
        const int r = time_fast ? idx / n_fast : (idx % n_fast) * kV;
        const int c = time_fast ? (idx % n_fast) * kV : idx / n_fast;
        const int64_t t = t0 + c;
        full[q] = idx < total && (time_fast ? (r < rows_valid && t >= 0 && t + kV <= len)
                                            : (r + kV <= rows_valid && t >= 0 && t < len));
        raw[q] = make_uint4(0u, 0u, 0u, 0u);
        if (full[q]) raw[q] = *reinterpret_cast<const uint4*>(g + r * s_row + t * s_time);
      }
#pragma unroll
      for (int q = 0; q < kVecBatch; ++q) {
        const int idx = base + q * kThreads + static_cast<int>(threadIdx.x);
        if (idx >= total) continue;
        const int r = time_fast ? idx / n_fast : (idx % n_fast) * kV;
        const int c = time_fast ? (idx % n_fast) * kV : idx / n_fast;
#pragma unroll
        for (int k = 0; k < kV; ++k) {
          const int rr = time_fast ? r : r + k, cc = time_fast ? c + k : c;
          const int64_t tt = t0 + cc;
          float v = vec_elem<T>(raw[q], k);
          if (!full[q])
            v = (rr < rows_valid && tt >= 0 && tt < len) ? to_float(g[rr * s_row + tt * s_time]) : 0.f;
          s[Layout::at(rr, cc)] = v;
        }
      }
    }
    return;
  }
  constexpr int kBatch = 8;
  const int total = rows * kCols;
  for (int base = 0; base < total; base += kBatch * kThreads) {
    T raw[kBatch];
    bool ok[kBatch];
#pragma unroll
    for (int q = 0; q < kBatch; ++q) {
      const int idx = base + q * kThreads + static_cast<int>(threadIdx.x);
      const int r = time_fast ? idx / kCols : idx % rows;
      const int c = time_fast ? idx % kCols : idx / rows;
      const int64_t t = t0 + c;
      ok[q] = idx < total && r < rows_valid && t >= 0 && t < len;
      raw[q] = g[ok[q] ? r * s_row + t * s_time : 0];  // always a valid address
    }
#pragma unroll
    for (int q = 0; q < kBatch; ++q) {
      const int idx = base + q * kThreads + static_cast<int>(threadIdx.x);
      const int r = time_fast ? idx / kCols : idx % rows;
      const int c = time_fast ? idx % kCols : idx / rows;
      if (idx < total) s[Layout::at(r, c)] = ok[q] ? to_float(raw[q]) : 0.f;
    }
  }
}

// The inverse: writes the valid part of a (rows × kCols) fp32 shared tile to global memory.
template <int kCols, int kThreads, class Layout, typename T>
__device__ __forceinline__ void store_tile(T* __restrict__ g, const float* __restrict__ s,
                                           int64_t s_row, int64_t s_time, int rows,
                                           int rows_valid, int64_t t0, int64_t len) {
  const bool time_fast = s_time == 1 || s_row != 1;
  for (int idx = threadIdx.x; idx < rows * kCols; idx += kThreads) {
    const int r = time_fast ? idx / kCols : idx % rows;
    const int c = time_fast ? idx % kCols : idx / rows;
    const int64_t t = t0 + c;
    if (r < rows_valid && t >= 0 && t < len) g[r * s_row + t * s_time] = from_float<T>(s[Layout::at(r, c)]);
  }
}

// A parameter gradient's contribution: stored into this batch's partial, or added atomically into
// the single zero-filled row (scan_params.h, param_grads_atomic).
__device__ __forceinline__ void put_param_grad(float* at, float v, bool atomic) {
  if (atomic) atomicAdd(at, v);
  else *at = v;
}

}  // namespace mcd::ops::cuda
