// The fused mixer on CUDA (ops/mamba_inner.h): conv → x_proj → dt_proj → scan → out_proj in the
// forward, saving xz, x_dbl, the scan's chunk states and the weights (and the conv output u when
// OpsOptions::mixer_saves_conv_output is on); the scan algorithm is chosen once in the forward and
// kept for the backward. The backward recomputes Δ (and u when it was not saved), runs
// the scan backward (which also recomputes the gated output y for out_proj's weight gradient) and
// the conv backward, and the small matrix products. The scan and conv backward write dz and dx
// straight into the two halves of dxz, the scan backward writes [dB | dC] into x_dbl's gradient,
// and x_proj's contribution to du is added by the product itself (addmm), so no extra pass copies
// or adds a (B, L, E) tensor. Weight gradients leave their products in fp32 (mm_fp32).
// An SDM mask m (E) goes to the scan (which sees m⊙u, D skip included, and returns dm); the caller
// has folded it into x_proj's weight, so x_dbl = u·(W_x⊙m)ᵀ needs nothing here.
// Matrix products run in xz's dtype (bf16 under autocast, in the backward too, which the autograd
// engine runs without autocast); weight gradients are returned in the weights' dtype.
#include <c10/cuda/CUDAGuard.h>

#include "ops/autograd_placeholders.h"
#include "ops/cuda/ops_cuda.h"
#include "ops/mamba_inner.h"
#include "ops/options.h"
#include "util/error.h"

namespace mcd::ops::cuda {
namespace {

struct Recomputed {
  at::Tensor x, z, u, delta;
  ScanInputs in;
};

// Everything between xz and the scan from the saved tensors: the conv output u (unless given), Δ,
// and the scan's inputs. The forward and the backward build them alike.
// w_dt is Δ's projection weight already in xz's dtype; mask (E) or undefined.
Recomputed recompute(const at::Tensor& xz, const at::Tensor& conv_w, const at::Tensor& conv_b,
                     const at::Tensor& x_dbl, const at::Tensor& w_dt, const at::Tensor& dt_b,
                     const at::Tensor& A, const at::Tensor& D, const at::Tensor& mask,
                     const at::Tensor& u_known = at::Tensor()) {
  const int64_t E = xz.size(2) / 2, R = w_dt.size(1), N = A.size(1);
  Recomputed r;
  r.x = xz.narrow(2, 0, E).transpose(1, 2);
  r.z = xz.narrow(2, E, E).transpose(1, 2);
  r.u = u_known.defined() ? u_known : causal_conv1d_cuda_forward(r.x, conv_w, conv_b, /*silu=*/true);
  r.delta = at::matmul(x_dbl.narrow(2, 0, R), w_dt.t()).transpose(1, 2);
  r.in.u = r.u;
  r.in.delta = r.delta;
  r.in.A = A;
  r.in.B = x_dbl.narrow(2, R, N).transpose(1, 2);
  r.in.C = x_dbl.narrow(2, R + N, N).transpose(1, 2);
  r.in.D = D.to(at::kFloat);
  r.in.z = r.z;
  r.in.delta_bias = dt_b.to(at::kFloat);
  if (mask.defined()) r.in.mask = mask.to(at::kFloat);
  r.in.delta_softplus = true;
  return r;
}

class MambaInnerFunction : public torch::autograd::Function<MambaInnerFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& xz,
                                                const at::Tensor& conv_w, const at::Tensor& conv_b_in,
                                                const at::Tensor& x_w, const at::Tensor& dt_w,
                                                const at::Tensor& dt_b, const at::Tensor& A, const at::Tensor& D,
                                                const at::Tensor& out_w_in, const at::Tensor& out_b_in,
                                                const at::Tensor& mask_in, bool deterministic) {
    const at::Tensor conv_b = undefined_if_placeholder(conv_b_in), out_b = undefined_if_placeholder(out_b_in);
    const at::Tensor mask = undefined_if_placeholder(mask_in);
    const at::Tensor out_w = undefined_if_placeholder(out_w_in);  // undefined: return y itself
    const auto dt = xz.scalar_type();
    const int64_t E = xz.size(2) / 2;
    // x_dbl = u·W_xᵀ needs u first: run the conv here (the backward recomputes it unless it is kept).
    // The products' weights in xz's dtype, cast once and kept for the backward (4.7 MB per 370M
    // layer in bf16) rather than cast again there — unless OpsOptions::keep_cast_weights is off.
    const at::Tensor w_x = x_w.to(dt), w_dt = dt_w.to(dt), w_out = out_w.defined() ? out_w.to(dt) : out_w_in;
    const at::Tensor x = xz.narrow(2, 0, E).transpose(1, 2);
    const at::Tensor u = causal_conv1d_cuda_forward(x, conv_w, conv_b, /*silu=*/true);
    const at::Tensor x_dbl = at::matmul(u.transpose(1, 2), w_x.t());  // (B, L, R + 2N)
    const Recomputed r = recompute(xz, conv_w, conv_b, x_dbl, w_dt, dt_b, A, D, mask, u);
    const ScanAlgorithm algorithm = scan_algorithm_for(r.in);  // chosen once, kept for the backward
    ScanCudaForward f = selective_scan_cuda_forward(r.in, algorithm, /*save_states=*/true, /*want_last_state=*/false);
    // y (B, E, L) is channel-contiguous: its transpose is a contiguous (B, L, E). Not saved.
    const at::Tensor out = out_w.defined() ? at::linear(f.out.transpose(1, 2), w_out, out_b.defined() ? out_b.to(dt) : out_b)
                                           : f.out.transpose(1, 2);
    const at::Tensor u_saved = placeholder_if_undefined(ops_options().mixer_saves_conv_output ? u : at::Tensor());
    // The casts kept, or placeholders: the backward casts the saved fp32 weights again (the same bits).
    const bool keep = ops_options().keep_cast_weights;
    const at::Tensor none = placeholder_if_undefined(at::Tensor());
    ctx->save_for_backward({xz, conv_w, conv_b_in, x_w, dt_w, dt_b, A, D, x_dbl, f.states, out_w_in, out_b_in, u_saved,
                            keep ? w_x : none, keep ? w_dt : none, keep && out_w.defined() ? w_out : none, mask_in});
    ctx->saved_data["deterministic"] = deterministic;
    ctx->saved_data["algorithm"] = static_cast<int64_t>(algorithm);
    ctx->saved_data["time_segments"] = backward_time_segments(algorithm, xz.size(0), xz.size(2) / 2, xz.device());
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    torch::autograd::variable_list none(12);
    if (!grad_out[0].defined()) return none;
    const auto s = ctx->get_saved_variables();
    const at::Tensor &xz = s[0], &conv_w = s[1], &x_w = s[3], &dt_w = s[4], &dt_b = s[5], &A = s[6], &D = s[7];
    const at::Tensor &x_dbl = s[8], &states = s[9];
    const at::Tensor conv_b = undefined_if_placeholder(s[2]), out_b = undefined_if_placeholder(s[11]);
    const at::Tensor out_w = undefined_if_placeholder(s[10]);
    const auto dt = xz.scalar_type();
    const int64_t B = xz.size(0), L = xz.size(1), E = xz.size(2) / 2, R = dt_w.size(1), N = A.size(1);
    const int64_t Dm = out_w.defined() ? out_w.size(0) : 0;
    auto cast_of = [&](const at::Tensor& kept, const at::Tensor& weight) {  // in xz's dtype
      const at::Tensor k = undefined_if_placeholder(kept);
      return k.defined() ? k.to(dt) : weight.defined() ? weight.to(dt) : weight;
    };
    const at::Tensor w_x = cast_of(s[13], x_w), w_dt = cast_of(s[14], dt_w), w_out = cast_of(s[15], out_w);
    const at::Tensor mask = undefined_if_placeholder(s[16]);
    const Recomputed r = recompute(xz, conv_w, conv_b, x_dbl, w_dt, dt_b, A, D, mask, undefined_if_placeholder(s[12]));
    const auto algorithm = static_cast<ScanAlgorithm>(ctx->saved_data["algorithm"].toInt());
    // out = y·W_outᵀ (+ b): the gradient reaching y (without out_proj, the output is y).
    const at::Tensor gout = grad_out[0].to(dt).contiguous();              // (B, L, Dm) or (B, L, E)
    const at::Tensor dy = out_w.defined() ? at::matmul(gout, w_out) : gout;  // (B, L, E)
    at::Tensor dxz = at::empty({B, L, 2 * E}, xz.options());
    // x_dbl's gradient (B, L, R + 2N): the first R columns from Δ's product below, [dB | dC] written
    // by the scan backward's converting copy. No cat.
    at::Tensor d_xdbl = at::empty({B, L, R + 2 * N}, xz.options());
    ScanBackwardOptions o;
    o.deterministic = ctx->saved_data["deterministic"].toBool();
    o.recompute_out = out_w.defined();
    o.dz_into = dxz.narrow(2, E, E).transpose(1, 2);
    o.dBC_into = d_xdbl.narrow(2, R, 2 * N);
    o.time_segments = ctx->saved_data["time_segments"].toInt();
    const ScanCudaGrads g = selective_scan_cuda_backward(r.in, algorithm, states, dy.transpose(1, 2), o);
    // Weight gradients are formed in fp32 by the products themselves (mm_fp32): no cast passes.
    // out_proj's from the recomputed y.
    const at::Tensor d_wout =
        out_w.defined() ? mm_fp32(gout.reshape({-1, Dm}).t(), g.out.transpose(1, 2).reshape({-1, E})) : at::Tensor();
    const at::Tensor d_bout = out_b.defined() ? gout.to(at::kFloat).sum(at::IntArrayRef{0, 1}) : at::Tensor();
    // Δ = x_dbl[…, :R]·W_dtᵀ: gradients of x_dbl's first R columns (written in place) and of W_dt.
    const at::Tensor ddelta2 = g.ddelta.transpose(1, 2).reshape({-1, E});  // (B·L, E), a view
    at::Tensor d_xdbl2 = d_xdbl.view({-1, R + 2 * N});
    at::Tensor d_xdbl_dt = d_xdbl2.narrow(1, 0, R);
    at::mm_out(d_xdbl_dt, ddelta2, w_dt);
    const at::Tensor d_wdt = mm_fp32(ddelta2.t(), x_dbl.narrow(2, 0, R).reshape({-1, R}));
    // x_dbl = u·W_xᵀ: gradients of u (added to the scan's) and of W_x.
    const at::Tensor u_t = r.u.transpose(1, 2);  // (B, L, E)
    at::Tensor du = g.du;                        // (B, E, L)
    if (du.transpose(1, 2).is_contiguous()) {
      du.transpose(1, 2).view({-1, E}).addmm_(d_xdbl2, w_x);  // the product adds into du: no extra pass
    } else {
      du = du + at::matmul(d_xdbl, w_x).transpose(1, 2);
    }
    const at::Tensor d_wx = mm_fp32(d_xdbl2.t(), u_t.reshape({-1, E}));
    const ConvCudaGrads cg = causal_conv1d_cuda_backward(du, r.x, conv_w, conv_b, /*silu=*/true,
                                                         /*dx_into=*/dxz.narrow(2, 0, E).transpose(1, 2),
                                                         o.deterministic);
    return {dxz,
            cg.dweight.to(conv_w.scalar_type()),
            conv_b.defined() ? cg.dbias.to(conv_b.scalar_type()) : at::Tensor(),
            d_wx.to(x_w.scalar_type()),
            d_wdt.to(dt_w.scalar_type()),
            g.ddelta_bias.to(dt_b.scalar_type()),
            g.dA.to(A.scalar_type()),
            g.dD.to(D.scalar_type()),
            out_w.defined() ? d_wout.to(out_w.scalar_type()) : at::Tensor(),
            out_b.defined() ? d_bout.to(out_b.scalar_type()) : at::Tensor(),
            mask.defined() ? g.dmask.to(mask.scalar_type()) : at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

bool mamba_inner_cuda_supported(const at::Tensor& xz, const MambaInnerWeights& w) {
  if (!(xz.is_cuda() && xz.dim() == 3 && xz.size(2) % 2 == 0)) return false;
  const auto t = xz.scalar_type();
  if (!(t == at::kFloat || t == at::kHalf || t == at::kBFloat16)) return false;
  const int64_t E = xz.size(2) / 2;
  if (!(w.conv_weight.dim() == 2 && w.conv_weight.size(0) == E && w.A.dim() == 2 && w.A.size(0) == E &&
        w.dt_proj_weight.dim() == 2 && w.dt_proj_weight.size(0) == E && w.x_proj_weight.dim() == 2 &&
        w.x_proj_weight.size(0) == w.dt_proj_weight.size(1) + 2 * w.A.size(1) && w.x_proj_weight.size(1) == E &&
        w.dt_proj_bias.defined() && w.D.defined() &&
        (!w.out_proj_weight.defined() || (w.out_proj_weight.dim() == 2 && w.out_proj_weight.size(1) == E)) &&
        (!w.out_proj_bias.defined() ||
         (w.out_proj_weight.defined() && w.out_proj_bias.numel() == w.out_proj_weight.size(0))) &&
        (!w.mask.defined() || (w.mask.dim() == 1 && w.mask.size(0) == E && w.mask.device() == xz.device()))))
    return false;
  ScanInputs probe;
  probe.u = xz.narrow(2, 0, E).transpose(1, 2);
  probe.A = w.A;
  return scan_supported(probe) && conv_supported(probe.u, w.conv_weight);
}

at::Tensor mamba_inner_cuda(const at::Tensor& xz, const MambaInnerWeights& w, bool deterministic) {
  const c10::cuda::CUDAGuard guard(xz.device());
  return MambaInnerFunction::apply(xz, w.conv_weight, placeholder_if_undefined(w.conv_bias), w.x_proj_weight,
                                   w.dt_proj_weight, w.dt_proj_bias, w.A, w.D, placeholder_if_undefined(w.out_proj_weight),
                                   placeholder_if_undefined(w.out_proj_bias), placeholder_if_undefined(w.mask),
                                   deterministic)[0];
}

}  // namespace mcd::ops::cuda
