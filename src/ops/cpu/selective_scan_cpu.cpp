// Plain-loop CPU selective scan (see selective_scan_cpu.h). Written to be checked by eye:
// one (batch, channel) recurrence at a time, the state in a small local array.
#include "ops/cpu/selective_scan_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "util/error.h"

namespace mcd::ops::cpu {
namespace {

template <typename T>
T softplus(T x) {  // LibTorch's default: threshold 20, beyond which softplus(x) = x
  return x > T(20) ? x : std::log1p(std::exp(x));
}
template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// Raw pointers and sizes of one call, all tensors contiguous.
template <typename T>
struct ScanView {
  int64_t batch, dim, len, dstate;
  const T *u, *delta, *A, *B, *C, *D, *z, *delta_bias, *mask;
  bool use_softplus;

  // u' = mask ⊙ u at flat index i of channel e.
  T u_masked(int64_t i, int64_t e) const { return mask ? u[i] * mask[e] : u[i]; }

  // Δ for (b, e, t) after bias and softplus.
  T dt(int64_t be, int64_t e, int64_t t) const {
    T x = delta[be * len + t] + (delta_bias ? delta_bias[e] : T(0));
    return use_softplus ? softplus(x) : x;
  }
};

struct Prepared {
  at::Tensor u, delta, A, B, C, D, z, delta_bias, mask;
};

Prepared prepare(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                 const at::Tensor& Bm, const at::Tensor& Cm, const at::Tensor& D,
                 const at::Tensor& z, const at::Tensor& delta_bias, const at::Tensor& mask) {
  MCD_CHECK(u.dim() == 3, "selective_scan: u must be (B, E, L), got ", u.sizes());
  const int64_t b = u.size(0), e = u.size(1), l = u.size(2);
  MCD_CHECK(A.dim() == 2 && A.size(0) == e, "selective_scan: A must be (E, N) with E=", e,
            ", got ", A.sizes());
  const int64_t n = A.size(1);
  MCD_CHECK(delta.sizes() == u.sizes(), "selective_scan: delta ", delta.sizes(),
            " must match u ", u.sizes());
  MCD_CHECK(Bm.dim() == 3 && Bm.size(0) == b && Bm.size(1) == n && Bm.size(2) == l,
            "selective_scan: B must be (B, N, L) = (", b, ", ", n, ", ", l, "), got ", Bm.sizes());
  MCD_CHECK(Cm.sizes() == Bm.sizes(), "selective_scan: C ", Cm.sizes(), " must match B ",
            Bm.sizes());
  MCD_CHECK(!z.defined() || z.sizes() == u.sizes(), "selective_scan: z ", z.sizes(),
            " must match u ", u.sizes());
  MCD_CHECK(!D.defined() || (D.dim() == 1 && D.size(0) == e), "selective_scan: D must be (E)");
  MCD_CHECK(!delta_bias.defined() || (delta_bias.dim() == 1 && delta_bias.size(0) == e),
            "selective_scan: delta_bias must be (E)");
  MCD_CHECK(!mask.defined() || (mask.dim() == 1 && mask.size(0) == e), "selective_scan: mask must be (E)");
  const auto dtype = u.scalar_type();
  MCD_CHECK(dtype == at::kFloat || dtype == at::kDouble,
            "selective_scan (CPU reference): float32 or float64 only, got ", dtype);
  auto prep = [&](const at::Tensor& t) {
    if (!t.defined()) return t;
    MCD_CHECK(t.device().is_cpu(), "selective_scan (CPU reference): tensors must be on CPU");
    return t.to(dtype).contiguous();
  };
  return {prep(u), prep(delta), prep(A), prep(Bm), prep(Cm), prep(D), prep(z), prep(delta_bias),
          prep(mask)};
}

template <typename T>
const T* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
ScanView<T> view_of(const Prepared& p, bool softplus) {
  return {p.u.size(0), p.u.size(1), p.u.size(2), p.A.size(1),
          ptr<T>(p.u), ptr<T>(p.delta), ptr<T>(p.A), ptr<T>(p.B), ptr<T>(p.C), ptr<T>(p.D),
          ptr<T>(p.z), ptr<T>(p.delta_bias), ptr<T>(p.mask), softplus};
}

template <typename T>
void forward_impl(const ScanView<T>& v, T* out, T* last_state) {
  at::parallel_for(0, v.batch * v.dim, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> h(v.dstate);
    for (int64_t be = begin; be < end; ++be) {
      const int64_t b = be / v.dim, e = be % v.dim;
      std::fill(h.begin(), h.end(), T(0));
      for (int64_t t = 0; t < v.len; ++t) {
        const T dt = v.dt(be, e, t);
        const T ut = v.u_masked(be * v.len + t, e);
        T y = 0;
        for (int64_t n = 0; n < v.dstate; ++n) {
          const int64_t bn = (b * v.dstate + n) * v.len + t;
          h[n] = std::exp(dt * v.A[e * v.dstate + n]) * h[n] + dt * v.B[bn] * ut;
          y += v.C[bn] * h[n];
        }
        if (v.D) y += v.D[e] * ut;
        if (v.z) {
          const T zt = v.z[be * v.len + t];
          y *= zt * sigmoid(zt);
        }
        out[be * v.len + t] = y;
      }
      if (last_state) std::copy(h.begin(), h.end(), last_state + be * v.dstate);
    }
  });
}

template <typename T>
void backward_impl(const ScanView<T>& v, const T* dout, ScanGrads& g) {
  const int64_t L = v.len, N = v.dstate;
  T* du = g.du.data_ptr<T>();
  T* ddelta = g.ddelta.data_ptr<T>();
  T* dA = g.dA.data_ptr<T>();
  T* dD = g.dD.defined() ? g.dD.data_ptr<T>() : nullptr;
  T* dz = g.dz.defined() ? g.dz.data_ptr<T>() : nullptr;
  T* ddelta_bias = g.ddelta_bias.defined() ? g.ddelta_bias.data_ptr<T>() : nullptr;
  T* dmask = g.dmask.defined() ? g.dmask.data_ptr<T>() : nullptr;

  // dB and dC sum over channels: each worker thread owns one (B, N, L) buffer pair, summed at
  // the end. Channels are split over threads; a channel's batch loop stays in one thread so that
  // dA, dD and ddelta_bias (per channel) need no reduction.
  const int64_t threads = at::get_num_threads();
  const int64_t bnl = v.batch * N * L;
  std::vector<T> dB_parts(threads * bnl, T(0)), dC_parts(threads * bnl, T(0));

  at::parallel_for(0, v.dim, 1, [&](int64_t e_begin, int64_t e_end) {
    const int64_t tid = at::get_thread_num();
    T* dB_acc = dB_parts.data() + tid * bnl;
    T* dC_acc = dC_parts.data() + tid * bnl;
    std::vector<T> hs((L + 1) * N), dts(L), ys(L), dh(N);
    for (int64_t e = e_begin; e < e_end; ++e) {
      const T* A_e = v.A + e * N;
      T dD_e = 0, dbias_e = 0, dmask_e = 0;
      for (int64_t b = 0; b < v.batch; ++b) {
        const int64_t be = b * v.dim + e;
        // Recompute the forward for this channel: hs[t+1] = h_t, hs[0] = 0.
        std::fill(hs.begin(), hs.begin() + N, T(0));
        for (int64_t t = 0; t < L; ++t) {
          const T dt = v.dt(be, e, t), ut = v.u_masked(be * L + t, e);
          dts[t] = dt;
          T y = 0;
          for (int64_t n = 0; n < N; ++n) {
            const int64_t bn = (b * N + n) * L + t;
            const T h = std::exp(dt * A_e[n]) * hs[t * N + n] + dt * v.B[bn] * ut;
            hs[(t + 1) * N + n] = h;
            y += v.C[bn] * h;
          }
          if (v.D) y += v.D[e] * ut;
          ys[t] = y;  // before the gate
        }
        // Reverse recurrence: dh holds ∂loss/∂h_t including the path through h_{t+1}.
        std::fill(dh.begin(), dh.end(), T(0));
        for (int64_t t = L - 1; t >= 0; --t) {
          const int64_t i = be * L + t;
          T dy = dout[i];
          if (v.z) {
            const T zt = v.z[i], s = sigmoid(zt);
            dz[i] = dout[i] * ys[t] * s * (T(1) + zt * (T(1) - s));
            dy = dout[i] * zt * s;
          }
          const T ut = v.u_masked(i, e), dt = dts[t];
          T du_t = v.D ? dy * v.D[e] : T(0);
          dD_e += dy * ut;
          T ddt = 0;
          for (int64_t n = 0; n < N; ++n) {
            const int64_t bn = (b * N + n) * L + t;
            const T h_prev = hs[t * N + n], h = hs[(t + 1) * N + n];
            const T decay = std::exp(dt * A_e[n]);
            dh[n] += dy * v.C[bn];
            dC_acc[bn] += dy * h;
            ddt += dh[n] * (h_prev * decay * A_e[n] + v.B[bn] * ut);
            dA[e * N + n] += dh[n] * h_prev * decay * dt;
            dB_acc[bn] += dh[n] * dt * ut;
            du_t += dh[n] * dt * v.B[bn];
            dh[n] *= decay;  // carried to h_{t-1}
          }
          T dpre = ddt;
          if (v.use_softplus) {
            const T x = v.delta[i] + (v.delta_bias ? v.delta_bias[e] : T(0));
            dpre = x > T(20) ? ddt : ddt * sigmoid(x);
          }
          ddelta[i] = dpre;
          dbias_e += dpre;
          // du_t is ∂loss/∂u'; u' = mask ⊙ u.
          dmask_e += du_t * v.u[i];
          du[i] = v.mask ? du_t * v.mask[e] : du_t;
        }
      }
      if (dD) dD[e] = dD_e;
      if (ddelta_bias) ddelta_bias[e] = dbias_e;
      if (dmask) dmask[e] = dmask_e;
    }
  });

  T* dB = g.dB.data_ptr<T>();
  T* dC = g.dC.data_ptr<T>();
  for (int64_t tid = 0; tid < threads; ++tid) {
    for (int64_t i = 0; i < bnl; ++i) {
      dB[i] += dB_parts[tid * bnl + i];
      dC[i] += dC_parts[tid * bnl + i];
    }
  }
}

}  // namespace

ScanForwardResult selective_scan_forward(const at::Tensor& u, const at::Tensor& delta,
                                         const at::Tensor& A, const at::Tensor& Bm,
                                         const at::Tensor& Cm, const at::Tensor& D,
                                         const at::Tensor& z, const at::Tensor& delta_bias,
                                         bool delta_softplus, bool want_last_state,
                                         const at::Tensor& mask) {
  const Prepared p = prepare(u, delta, A, Bm, Cm, D, z, delta_bias, mask);
  ScanForwardResult r;
  r.out = at::empty_like(p.u);
  if (want_last_state) r.last_state = at::empty({p.u.size(0), p.u.size(1), p.A.size(1)}, p.u.options());
  AT_DISPATCH_FLOATING_TYPES(p.u.scalar_type(), "selective_scan_forward_cpu", [&] {
    forward_impl<scalar_t>(view_of<scalar_t>(p, delta_softplus), r.out.data_ptr<scalar_t>(),
                           want_last_state ? r.last_state.data_ptr<scalar_t>() : nullptr);
  });
  return r;
}

ScanGrads selective_scan_backward(const at::Tensor& dout, const at::Tensor& u,
                                  const at::Tensor& delta, const at::Tensor& A,
                                  const at::Tensor& Bm, const at::Tensor& Cm, const at::Tensor& D,
                                  const at::Tensor& z, const at::Tensor& delta_bias,
                                  bool delta_softplus, const at::Tensor& mask) {
  const Prepared p = prepare(u, delta, A, Bm, Cm, D, z, delta_bias, mask);
  MCD_CHECK(dout.sizes() == u.sizes(), "selective_scan backward: dout ", dout.sizes(),
            " must match u ", u.sizes());
  const at::Tensor g_out = dout.to(p.u.scalar_type()).contiguous();
  ScanGrads g;
  g.du = at::zeros_like(p.u);
  g.ddelta = at::zeros_like(p.delta);
  g.dA = at::zeros_like(p.A);
  g.dB = at::zeros_like(p.B);
  g.dC = at::zeros_like(p.C);
  if (p.D.defined()) g.dD = at::zeros_like(p.D);
  if (p.z.defined()) g.dz = at::zeros_like(p.z);
  if (p.delta_bias.defined()) g.ddelta_bias = at::zeros_like(p.delta_bias);
  if (p.mask.defined()) g.dmask = at::zeros_like(p.mask);
  AT_DISPATCH_FLOATING_TYPES(p.u.scalar_type(), "selective_scan_backward_cpu", [&] {
    backward_impl<scalar_t>(view_of<scalar_t>(p, delta_softplus), g_out.data_ptr<scalar_t>(), g);
  });
  return g;
}

}  // namespace mcd::ops::cpu
