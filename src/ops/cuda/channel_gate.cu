// The SDM channel gate's mask and its gradient (see channel_gate_params.h): one thread per channel
// forward, one per gate backward, each forming its gate's noise from the key. Accurate expf and
// logf, not the fast intrinsics: the mask is compared with the CPU's within 5e-6, a bound derived
// from those functions' ulp errors (tests/gpu, GpuSeams and GpuChannelGate).
#include "ops/cuda/channel_gate_params.h"
#include "ops/cuda/cuda_common.cuh"
#include "util/counter_noise.h"

namespace mcd::ops::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float gate_sigmoid(const ChannelGateParams& p, int64_t j) {
  const float n = p.has_noise ? noise_logistic(p.noise_key, j) : 0.f;
  const float t = (p.log_alpha[j] + n) / p.temperature;
  return 1.f / (1.f + expf(-t));
}

__global__ void __launch_bounds__(kThreads) channel_gate_fwd_kernel(ChannelGateParams p) {
  const int64_t e = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (e >= p.gates * p.block) return;
  const float s = gate_sigmoid(p, e / p.block);
  p.mask[e] = p.hard_concrete ? fminf(fmaxf(s * p.stretch + p.shift, 0.f), 1.f) : s;
}

__global__ void __launch_bounds__(kThreads) channel_gate_bwd_kernel(ChannelGateParams p) {
  const int64_t j = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (j >= p.gates) return;
  float g = 0.f;
  for (int64_t k = 0; k < p.block; ++k) g += p.grad_mask[j * p.block + k];
  const float s = gate_sigmoid(p, j);
  if (p.hard_concrete) {
    const float x = s * p.stretch + p.shift;
    g = (x >= 0.f && x <= 1.f) ? g * p.stretch : 0.f;
  }
  p.grad_log_alpha[j] = g * (1.f - s) * s / p.temperature;
}

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

void channel_gate_forward(const ChannelGateParams& p) {
  if (p.gates == 0) return;
  channel_gate_fwd_kernel<<<blocks_for(p.gates * p.block), kThreads, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

void channel_gate_backward(const ChannelGateParams& p) {
  if (p.gates == 0) return;
  channel_gate_bwd_kernel<<<blocks_for(p.gates), kThreads, 0, p.stream>>>(p);
  MCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace mcd::ops::cuda
