// The batch decode's conv step inside x_proj's product, against the two kernels the model runs at batch 64 (the
// library's conv-step kernel, then x_proj on cuBLAS or on dev/gemm_lab/narrow_linear.cu): a standalone program for
// one short device call (it links the library's decode_step.cu and the lab's narrow_linear.cu; no LibTorch).
// Why: at batch 64 a 130M layer's conv step is its own kernel (~2.2 µs of ~27.5 in H100 traces) whose only reader is
// x_proj. narrow_linear's clusters cannot take it in (its column tiles are separate clusters reading the same
// channels' conv state, which the step updates in place), so here one cluster of kSplit blocks owns all of x_proj's
// ≤ 128 columns, block s the channels [s·E/kSplit, (s + 1)·E/kSplit): it runs those channels' conv step for every row
// (the library's conv_step_channel, so u and the state are its bits; it is their only reader and writer), keeps u in
// shared memory as the product's x, and the blocks' (64 × N) products meet over distributed shared memory in rank
// order, block s adding rows s·64/kSplit … for all columns. Warps: 4 row groups × 2 column halves (no partial sums
// within a block). As an overlapped launch the weights are requested before the wait.
// Prediction: the fused kernel ≤ 0.8× the time of conv step + narrow_linear at (64, 1536 → 80) and (64, 2048 → 96)
// inside a graph, u and the state bit for bit the conv-step kernel's, x_dbl within its float64 bound.
//   nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr -I src -I dev dev/decode_lab/conv_xproj_lab.cu \
//        src/ops/cuda/decode_step.cu dev/gemm_lab/narrow_linear.cu -lcublas -o conv_xproj_lab
//   ./conv_xproj_lab [--reps N]
#include <cooperative_groups.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gemm_lab/narrow_linear_params.h"
#include "decode_lab/graph_timing.cuh"
#include "ops/cuda/conv_step.cuh"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/decode_step_params.h"
#include "ops/cuda/mma_bf16.cuh"

namespace {

using bf16 = __nv_bfloat16;
namespace cu = mcd::ops::cuda;

constexpr int kRows = 64, kThreads = 256, kPad = 8, kWidth = 4, kMaxOut = 128;

struct FusedParams {
  int rows = 0, dim = 0, out_features = 0;
  const bf16* xz = nullptr;  int64_t xz_row_stride = 0;  // x = xz[:, 0:dim]
  bf16* conv_state = nullptr;   // (rows, dim, kWidth − 1) contiguous, updated in place
  const bf16* conv_weight = nullptr;  // (dim, kWidth)
  const bf16* conv_bias = nullptr;    // (dim)
  bf16* u = nullptr;                  // (rows, dim)
  const bf16* weight = nullptr;       // (out, dim) x_proj
  bf16* out = nullptr;                // (rows, out)
  bool overlap = false;
};

size_t fused_smem(int slice, int out) {
  const size_t staged = size_t(kRows + out) * size_t(slice + kPad) * sizeof(bf16);
  return std::max(staged, size_t(kRows) * out * sizeof(float));
}

template <int kSplit>
__global__ void __launch_bounds__(kThreads) conv_xproj_kernel(FusedParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = int(cluster.block_rank());
  const int slice = p.dim / kSplit, ld = slice + kPad, c0 = rank * slice, N = p.out_features;
  bf16* xs = reinterpret_cast<bf16*>(smem);
  bf16* ws = xs + kRows * ld;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  auto request_weights = [&] {
    const int pieces = slice / 8;
    for (int i = int(threadIdx.x); i < N * pieces; i += kThreads) {
      const int n = i / pieces, e = 8 * (i % pieces);
      cu::cp_async16(ws + n * ld + e, p.weight + size_t(n) * p.dim + c0 + e, 16);
    }
    cu::cp_async_commit();
  };
  if (p.overlap) request_weights();
  cu::wait_for_previous_kernel();
  cu::allow_next_kernel();
  if (!p.overlap) request_weights();
  // The conv step of this block's channels for every row: the library's arithmetic (conv_step_channel), u to global
  // memory and to the staged x; rows past p.rows staged as zeros.
  for (int i = int(threadIdx.x); i < kRows * slice; i += kThreads) {
    const int r = i / slice, c = i % slice, e = c0 + c;
    bf16 v = __float2bfloat16(0.f);
    if (r < p.rows) {
      bf16* state = p.conv_state + (size_t(r) * p.dim + e) * (kWidth - 1);
      const float y = cu::conv_step_channel<bf16, bf16>(state, 1, p.conv_weight + size_t(e) * kWidth, p.conv_bias + e,
                                                        p.xz[size_t(r) * p.xz_row_stride + e], kWidth, true);
      v = cu::from_float<bf16>(y);  // the conv-step kernel's rounding
      p.u[size_t(r) * p.dim + e] = v;
    }
    xs[r * ld + c] = v;
  }
  cu::cp_async_wait_all();
  __syncthreads();
  // Products: warp w, rows 16·(w % 4) …, the 8-column tiles nt ≡ w / 4 (mod 2).
  constexpr int kMaxTiles = kMaxOut / 16;  // per warp
  float acc[kMaxTiles][4] = {};
  const int half = warp / 4, tiles = N / 8;
  const bf16* a_row = xs + (16 * (warp % 4) + lane % 16) * ld + 8 * (lane / 16);
  const bf16* b_row = ws + (lane % 8) * ld + 8 * ((lane / 8) % 2);
  for (int k = 0; k < slice; k += 16) {
    uint32_t a[4];
    cu::ldmatrix_x4(a, a_row + k);
#pragma unroll
    for (int j = 0; j < kMaxTiles; ++j) {
      const int nt = 2 * j + half;
      if (nt < tiles) {
        uint32_t b[2];
        cu::ldmatrix_x2(b, b_row + 8 * nt * ld + k);
        cu::mma_bf16_16x8x16(acc[j], a, b[0], b[1]);
      }
    }
  }
  __syncthreads();  // the staged rows are overwritten by the block's products
  float* prod = reinterpret_cast<float*>(smem);  // (64, N) fp32
  {
    const int g = lane / 4, t = lane % 4, r0 = 16 * (warp % 4) + g;
#pragma unroll
    for (int j = 0; j < kMaxTiles; ++j) {
      const int nt = 2 * j + half;
      if (nt < tiles) {
        const int c = 8 * nt + 2 * t;
        prod[r0 * N + c] = acc[j][0];
        prod[r0 * N + c + 1] = acc[j][1];
        prod[(r0 + 8) * N + c] = acc[j][2];
        prod[(r0 + 8) * N + c + 1] = acc[j][3];
      }
    }
  }
  cluster.sync();
  constexpr int kRowsEach = kRows / kSplit;
  for (int i = int(threadIdx.x); i < kRowsEach * N; i += kThreads) {
    const int r = rank * kRowsEach + i / N, c = i % N;
    float v = 0.f;
#pragma unroll
    for (int b = 0; b < kSplit; ++b) v += cluster.map_shared_rank(prod, b)[r * N + c];
    if (r < p.rows) p.out[size_t(r) * N + c] = __float2bfloat16(v);
  }
  cluster.sync();
}

template <int kSplit>
void launch_fused(const FusedParams& p, cudaStream_t stream) {
  cu::launch_in_clusters(conv_xproj_kernel<kSplit>, dim3(kSplit), kThreads, fused_smem(p.dim / kSplit, p.out_features),
                         stream, unsigned(kSplit), p.overlap, p);
}

struct Case {
  const char* name;
  int dim, out;
};


}  // namespace

int main(int argc, char** argv) {
  int reps = 100;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
  cudaDeviceProp prop{};
  MCD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s\n", prop.name);
  cudaStream_t s;
  MCD_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t h;
  cublasCreate(&h);
  cublasSetStream(h, s);
  const Case cases[] = {{"130M (1536 -> 80)", 1536, 80}, {"370M (2048 -> 96)", 2048, 96}, {"130M 50% (768 -> 80)", 768, 80}};
  bool all_ok = true;
  for (const Case& cs : cases) {
    const int B = kRows, E = cs.dim, N = cs.out, K = kWidth;
    const size_t xz_n = size_t(B) * 2 * E, st_n = size_t(B) * E * (K - 1), w_n = size_t(N) * E;
    const int sets = 24;  // ~24 × (0.4 + 0.4 + 0.3) MB ≈ 26–60 MB per case: past most of the L2 between reuses
    std::mt19937 gen(E + N);
    std::normal_distribution<float> d(0.f, 1.f);
    std::vector<bf16> hxz(xz_n * sets), hst(st_n * sets), hcw(size_t(E) * K), hcb(E), hw(w_n * sets);
    for (auto& v : hxz) v = __float2bfloat16(d(gen));
    for (auto& v : hst) v = __float2bfloat16(d(gen));
    for (auto& v : hcw) v = __float2bfloat16(0.5f * d(gen));
    for (auto& v : hcb) v = __float2bfloat16(0.1f * d(gen));
    for (auto& v : hw) v = __float2bfloat16(d(gen) / std::sqrt(float(E)));
    bf16 *xz, *st0, *st1, *cw, *cb, *w, *u0, *u1, *o0, *o1, *o2;
    MCD_CUDA_CHECK(cudaMalloc(&xz, hxz.size() * 2));
    MCD_CUDA_CHECK(cudaMalloc(&st0, hst.size() * 2));
    MCD_CUDA_CHECK(cudaMalloc(&st1, hst.size() * 2));
    MCD_CUDA_CHECK(cudaMalloc(&cw, hcw.size() * 2));
    MCD_CUDA_CHECK(cudaMalloc(&cb, hcb.size() * 2));
    MCD_CUDA_CHECK(cudaMalloc(&w, hw.size() * 2));
    MCD_CUDA_CHECK(cudaMalloc(&u0, size_t(B) * E * 2 * sets));
    MCD_CUDA_CHECK(cudaMalloc(&u1, size_t(B) * E * 2 * sets));
    MCD_CUDA_CHECK(cudaMalloc(&o0, size_t(B) * N * 2 * sets));
    MCD_CUDA_CHECK(cudaMalloc(&o1, size_t(B) * N * 2 * sets));
    MCD_CUDA_CHECK(cudaMalloc(&o2, size_t(B) * N * 2 * sets));
    MCD_CUDA_CHECK(cudaMemcpy(xz, hxz.data(), hxz.size() * 2, cudaMemcpyHostToDevice));
    MCD_CUDA_CHECK(cudaMemcpy(cw, hcw.data(), hcw.size() * 2, cudaMemcpyHostToDevice));
    MCD_CUDA_CHECK(cudaMemcpy(cb, hcb.data(), hcb.size() * 2, cudaMemcpyHostToDevice));
    MCD_CUDA_CHECK(cudaMemcpy(w, hw.data(), hw.size() * 2, cudaMemcpyHostToDevice));
    auto reset_states = [&] {
      MCD_CUDA_CHECK(cudaMemcpy(st0, hst.data(), hst.size() * 2, cudaMemcpyHostToDevice));
      MCD_CUDA_CHECK(cudaMemcpy(st1, hst.data(), hst.size() * 2, cudaMemcpyHostToDevice));
    };
    // The model's two kernels: the conv step (into u0, state st0), then x_proj (narrow_linear or cuBLAS) into o.
    auto conv = [&](int i, bool overlap) {
      cu::ConvStepParams c;
      c.dtype = c.weight_dtype = cu::DType::kBFloat16;
      c.batch = B;
      c.dim = E;
      c.width = K;
      c.x = xz + xz_n * (i % sets);
      c.x_batch_stride = 2 * E;
      c.state = st0 + st_n * (i % sets);
      c.state_s = {int64_t(E) * (K - 1), K - 1, 1};
      c.weight = cw;
      c.weight_row_stride = K;
      c.bias = cb;
      c.silu = true;
      c.out = u0 + size_t(B) * E * (i % sets);
      c.overlap = overlap;
      c.stream = s;
      cu::conv_step(c);
    };
    auto narrow = [&](int i, bool overlap) {
      cu::NarrowLinearParams q;
      q.rows = B;
      q.in_features = E;
      q.out_features = N;
      q.x = u0 + size_t(B) * E * (i % sets);
      q.x_row_stride = E;
      q.weight = w + w_n * (i % sets);
      q.w_row_stride = E;
      q.out = o0 + size_t(B) * N * (i % sets);
      q.overlap = overlap;
      q.stream = s;
      cu::narrow_linear(q);
    };
    auto cublas = [&](int i) {
      const float one = 1.f, zero = 0.f;
      cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, B, E, &one, w + w_n * (i % sets), CUDA_R_16BF, E,
                   u0 + size_t(B) * E * (i % sets), CUDA_R_16BF, E, &zero, o1 + size_t(B) * N * (i % sets), CUDA_R_16BF,
                   N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    };
    auto fused = [&](int i, bool overlap, int split) {
      FusedParams f;
      f.rows = B;
      f.dim = E;
      f.out_features = N;
      f.xz = xz + xz_n * (i % sets);
      f.xz_row_stride = 2 * E;
      f.conv_state = st1 + st_n * (i % sets);
      f.conv_weight = cw;
      f.conv_bias = cb;
      f.u = u1 + size_t(B) * E * (i % sets);
      f.weight = w + w_n * (i % sets);
      f.out = o2 + size_t(B) * N * (i % sets);
      f.overlap = overlap;
      if (split == 16) launch_fused<16>(f, s);
      else launch_fused<8>(f, s);
    };
    // Check: one step of each from the same states; u and the states bit for bit, x_dbl against float64.
    for (int split : {8, 16}) {
      if ((E / split) % 16 != 0) continue;
      reset_states();
      conv(0, false);
      narrow(0, false);
      fused(0, true, split);
      MCD_CUDA_CHECK(cudaStreamSynchronize(s));
      std::vector<bf16> a(size_t(B) * E), b(size_t(B) * E), sa(st_n), sb(st_n), y(size_t(B) * N);
      MCD_CUDA_CHECK(cudaMemcpy(a.data(), u0, a.size() * 2, cudaMemcpyDeviceToHost));
      MCD_CUDA_CHECK(cudaMemcpy(b.data(), u1, b.size() * 2, cudaMemcpyDeviceToHost));
      MCD_CUDA_CHECK(cudaMemcpy(sa.data(), st0, sa.size() * 2, cudaMemcpyDeviceToHost));
      MCD_CUDA_CHECK(cudaMemcpy(sb.data(), st1, sb.size() * 2, cudaMemcpyDeviceToHost));
      MCD_CUDA_CHECK(cudaMemcpy(y.data(), o2, y.size() * 2, cudaMemcpyDeviceToHost));
      const bool same_u = !std::memcmp(a.data(), b.data(), a.size() * 2);
      const bool same_state = !std::memcmp(sa.data(), sb.data(), sa.size() * 2);
      // x_dbl's bound (GpuNarrowLinear's): e = E·2⁻²³·Σ|u·w| for the fp32 sums, plus 2⁻⁹·(|y| + e) for bf16.
      double worst = 0.0;
      bool finite = true;
      for (int r = 0; r < B; ++r)
        for (int n = 0; n < N; ++n) {
          double ref = 0.0, mag = 0.0;
          for (int e = 0; e < E; ++e) {
            const double uv = __bfloat162float(a[size_t(r) * E + e]), wv = __bfloat162float(hw[size_t(n) * E + e]);
            ref += uv * wv;
            mag += std::fabs(uv * wv);
          }
          const double err_b = E * std::ldexp(1.0, -23) * mag;
          const double bound = err_b + std::ldexp(1.0, -9) * (std::fabs(ref) + err_b);
          const double got = __bfloat162float(y[size_t(r) * N + n]);
          finite = finite && std::isfinite(got);
          worst = std::max(worst, std::fabs(got - ref) / bound);
        }
      const bool ok = same_u && same_state && finite && worst <= 1.0;
      all_ok = all_ok && ok;
      std::printf("check %-22s split %2d: u %s, state %s, x_dbl within %.2f of its bound%s: %s\n", cs.name, split,
                  same_u ? "bit for bit" : "DIFFERS", same_state ? "bit for bit" : "DIFFERS", worst,
                  finite ? "" : " (NaN)", ok ? "ok" : "FAILED");
    }
    reset_states();
    const double t_narrow = mcd::dev::graph_us(s, reps, [&](int i) { conv(i, false); narrow(i, true); });
    const double t_cublas = mcd::dev::graph_us(s, reps, [&](int i) { conv(i, false); cublas(i); });
    std::printf("time  %-22s conv step + cuBLAS x_proj %.2f us, conv step + narrow_linear %.2f us", cs.name, t_cublas,
                t_narrow);
    for (int split : {8, 16}) {
      if ((E / split) % 16 != 0) continue;
      const double t = mcd::dev::graph_us(s, reps, [&](int i) { fused(i, true, split); });
      const double t_plain = mcd::dev::graph_us(s, reps, [&](int i) { fused(i, false, split); });
      std::printf(", fused split %d %.2f us (plain launch %.2f)", split, t, t_plain);
    }
    std::printf("\n");
    for (void* ptr : {(void*)xz, (void*)st0, (void*)st1, (void*)cw, (void*)cb, (void*)w, (void*)u0, (void*)u1, (void*)o0,
                      (void*)o1, (void*)o2})
      MCD_CUDA_CHECK(cudaFree(ptr));
  }
  cublasDestroy(h);
  std::printf("%s\n", all_ok ? "check: all ok" : "check: FAILED");
  return all_ok ? 0 : 1;
}
