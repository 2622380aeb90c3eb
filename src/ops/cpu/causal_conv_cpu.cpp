// Plain-loop CPU causal depthwise conv1d (see causal_conv_cpu.h). Channels are independent, so
// the loops run in parallel over channels and keep each channel's weight gradient local.
#include "ops/cpu/causal_conv_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "util/error.h"

namespace mcd::ops::cpu {
namespace {

void check_inputs(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  MCD_CHECK(x.dim() == 3, "causal_conv1d: x must be (B, E, L), got ", x.sizes());
  MCD_CHECK(weight.dim() == 2 && weight.size(0) == x.size(1), "causal_conv1d: weight must be (E, K) with E=",
            x.size(1), ", got ", weight.sizes());
  MCD_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == x.size(1)),
            "causal_conv1d: bias must be (E)");
  MCD_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
            "causal_conv1d (CPU reference): float32 or float64 only, got ", x.scalar_type());
  MCD_CHECK(x.device().is_cpu(), "causal_conv1d (CPU reference): tensors must be on CPU");
}

// Pre-activation value at (channel row `xe` of length L, time t).
template <typename T>
T conv_at(const T* xe, const T* we, T b, int64_t K, int64_t t) {
  T acc = b;
  for (int64_t k = 0; k < K; ++k) {
    const int64_t s = t - (K - 1) + k;
    if (s >= 0) acc += we[k] * xe[s];
  }
  return acc;
}

}  // namespace

at::Tensor causal_conv1d_forward(const at::Tensor& x_in, const at::Tensor& w_in,
                                 const at::Tensor& b_in, bool silu) {
  check_inputs(x_in, w_in, b_in);
  const auto x = x_in.contiguous();
  const auto w = w_in.to(x.scalar_type()).contiguous();
  const auto bias = b_in.defined() ? b_in.to(x.scalar_type()).contiguous() : b_in;
  auto out = at::empty_like(x);
  const int64_t B = x.size(0), E = x.size(1), L = x.size(2), K = w.size(1);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv1d_forward_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * E, 1, [&](int64_t begin, int64_t end) {
      for (int64_t be = begin; be < end; ++be) {
        const int64_t e = be % E;
        for (int64_t t = 0; t < L; ++t) {
          scalar_t v = conv_at(xp + be * L, wp + e * K, bp ? bp[e] : scalar_t(0), K, t);
          if (silu) v = v / (scalar_t(1) + std::exp(-v));
          op[be * L + t] = v;
        }
      }
    });
  });
  return out;
}

ConvGrads causal_conv1d_backward(const at::Tensor& dout_in, const at::Tensor& x_in,
                                 const at::Tensor& w_in, const at::Tensor& b_in, bool silu) {
  check_inputs(x_in, w_in, b_in);
  MCD_CHECK(dout_in.sizes() == x_in.sizes(), "causal_conv1d backward: dout ", dout_in.sizes(),
            " must match x ", x_in.sizes());
  const auto x = x_in.contiguous();
  const auto dout = dout_in.to(x.scalar_type()).contiguous();
  const auto w = w_in.to(x.scalar_type()).contiguous();
  const auto bias = b_in.defined() ? b_in.to(x.scalar_type()).contiguous() : b_in;
  const int64_t B = x.size(0), E = x.size(1), L = x.size(2), K = w.size(1);
  ConvGrads g;
  g.dx = at::zeros_like(x);
  g.dweight = at::zeros_like(w);
  if (bias.defined()) g.dbias = at::zeros_like(bias);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv1d_backward_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* gp = dout.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.data_ptr<scalar_t>() : nullptr;
    scalar_t* dxp = g.dx.data_ptr<scalar_t>();
    scalar_t* dwp = g.dweight.data_ptr<scalar_t>();
    scalar_t* dbp = bias.defined() ? g.dbias.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, E, 1, [&](int64_t e_begin, int64_t e_end) {
      for (int64_t e = e_begin; e < e_end; ++e) {
        const scalar_t* we = wp + e * K;
        for (int64_t b = 0; b < B; ++b) {
          const int64_t row = (b * E + e) * L;
          for (int64_t t = 0; t < L; ++t) {
            scalar_t d = gp[row + t];
            if (silu) {  // d/dv [v·σ(v)] = σ(v)·(1 + v·(1 − σ(v)))
              const scalar_t v = conv_at(xp + row, we, bp ? bp[e] : scalar_t(0), K, t);
              const scalar_t s = scalar_t(1) / (scalar_t(1) + std::exp(-v));
              d *= s * (scalar_t(1) + v * (scalar_t(1) - s));
            }
            if (dbp) dbp[e] += d;
            for (int64_t k = 0; k < K; ++k) {
              const int64_t s = t - (K - 1) + k;
              if (s < 0) continue;
              dwp[e * K + k] += d * xp[row + s];
              dxp[row + s] += d * we[k];
            }
          }
        }
      }
    });
  });
  return g;
}

}  // namespace mcd::ops::cpu
