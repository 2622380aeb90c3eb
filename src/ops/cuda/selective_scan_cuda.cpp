// Host op of the CUDA selective scan: checks, dtype preparation, output allocation, the launch on
// LibTorch's current stream, and the autograd node around the fused forward/backward kernels
// (selective_scan_{fwd,bwd}.cuh through the plain struct of scan_params.h). The scan algorithm is
// chosen once per forward call (choose_scan_algorithm) and kept by the autograd node for the
// backward. Only this layer includes LibTorch. Dispatch from ops/selective_scan.cpp.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <ATen/cuda/CUDAContext.h>

#include <utility>

#include "ops/autograd_placeholders.h"
#include "ops/cuda/host_common.h"
#include "ops/cuda/ops_cuda.h"
#include "ops/cuda/scan_params.h"
#include "ops/options.h"
#include "util/error.h"

namespace mcd::ops::cuda {

namespace {

// The state-sequential kernels address their outputs inside a tile of kSeqChunk steps with 32-bit
// offsets (time · stride).
void check_tile_offsets(const char* name, const Strides3& s) {
  MCD_CHECK(s.time >= 0 && s.time * kSeqChunk < (int64_t(1) << 31), "selective_scan (CUDA): the time stride of ",
            name, " (", s.time, ") is too large for the kernels' 32-bit tile offsets");
}

// Inputs as the kernels read them: activations in u's dtype (original strides), the rest fp32
// contiguous.
struct Prepared {
  at::Tensor u, delta, z, B, C, A, D, bias, mask;
  int64_t batch, dim, len, dstate;
  ScanAlgorithm algorithm = ScanAlgorithm::kTimeParallel;  // the forward's (its backward must agree)
  int64_t n_chunks = 0;  // saved states per channel for that algorithm
};

Prepared prepare(const ScanInputs& in, ScanAlgorithm algorithm) {
  MCD_CHECK(in.u.defined() && in.u.is_cuda(), "selective_scan (CUDA): u must be a CUDA tensor");
  MCD_CHECK(kernel_dtype(in.u.scalar_type()),
            "selective_scan (CUDA): u must be float32, float16 or bfloat16, got ", in.u.scalar_type());
  const auto dev = in.u.device();
  auto same_device = [&](const at::Tensor& t, const char* name) {
    MCD_CHECK(!t.defined() || t.device() == dev, "selective_scan (CUDA): ", name, " is on ",
              t.device(), ", u on ", dev);
  };
  same_device(in.delta, "delta");
  same_device(in.z, "z");
  same_device(in.B, "B");
  same_device(in.C, "C");
  same_device(in.A, "A");
  same_device(in.D, "D");
  same_device(in.delta_bias, "delta_bias");
  same_device(in.mask, "mask");
  const auto st = in.u.scalar_type();
  auto act = [&](const at::Tensor& t) { return t.defined() ? t.to(st) : t; };
  auto f32 = [&](const at::Tensor& t) { return t.defined() ? t.to(at::kFloat).contiguous() : t; };
  Prepared p{in.u, act(in.delta), act(in.z), act(in.B), act(in.C), f32(in.A), f32(in.D),
             f32(in.delta_bias), f32(in.mask), in.u.size(0), in.u.size(1), in.u.size(2),
             in.A.size(1)};
  MCD_CHECK(p.dstate >= 1 && p.dstate <= kScanMaxState, "selective_scan (CUDA): N must be in 1..",
            kScanMaxState, ", got ", p.dstate);
  MCD_CHECK(p.batch <= 65535, "selective_scan (CUDA): batch must be ≤ 65535, got ", p.batch);
  MCD_CHECK(scan_algorithm_supports(algorithm, p.dstate), "selective_scan (CUDA): algorithm ",
            scan_algorithm_name(algorithm), " does not take N = ", p.dstate, " (the state-sequential ones take N ≤ ",
            kSeqMaxState, ")");
  p.algorithm = algorithm;
  p.n_chunks = scan_state_count(algorithm, p.len);
  return p;
}

SelectiveScanParams base_params(const Prepared& p, bool softplus) {
  SelectiveScanParams k;
  k.dtype = dtype_code(p.u.scalar_type(), "selective_scan (CUDA)");
  k.batch = p.batch;
  k.dim = p.dim;
  k.len = p.len;
  k.dstate = p.dstate;
  k.algorithm = p.algorithm;
  k.n_chunks = p.n_chunks;
  k.u = p.u.data_ptr();
  k.u_s = strides_of(p.u);
  k.delta = p.delta.data_ptr();
  k.delta_s = strides_of(p.delta);
  if (p.z.defined()) {
    k.z = p.z.data_ptr();
    k.z_s = strides_of(p.z);
  }
  k.Bm = p.B.data_ptr();
  k.B_s = strides_of(p.B);
  k.Cm = p.C.data_ptr();
  k.C_s = strides_of(p.C);
  k.A = p.A.data_ptr<float>();
  k.D = p.D.defined() ? p.D.data_ptr<float>() : nullptr;
  k.delta_bias = p.bias.defined() ? p.bias.data_ptr<float>() : nullptr;
  k.mask = p.mask.defined() ? p.mask.data_ptr<float>() : nullptr;
  k.delta_softplus = softplus;
  k.stream = c10::cuda::getCurrentCUDAStream().stream();
  return k;
}

ScanInputs inputs_of(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A,
                     const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
                     const at::Tensor& z, const at::Tensor& bias, const at::Tensor& mask,
                     bool softplus) {
  ScanInputs in;
  in.u = u;
  in.delta = delta;
  in.A = A;
  in.B = B;
  in.C = C;
  in.D = undefined_if_placeholder(D);
  in.z = undefined_if_placeholder(z);
  in.delta_bias = undefined_if_placeholder(bias);
  in.mask = undefined_if_placeholder(mask);
  in.delta_softplus = softplus;
  return in;
}

// Autograd node: the forward chooses the algorithm once and saves it with its inputs and the
// (B, E, chunks, N) fp32 states; the backward runs that algorithm's kernel and recomputes
// everything else. See [Note: scan recompute] and [Note: scan algorithm choice].
class SelectiveScanCudaFunction : public torch::autograd::Function<SelectiveScanCudaFunction> {
 public:
  static torch::autograd::variable_list forward(
      torch::autograd::AutogradContext* ctx, const at::Tensor& u, const at::Tensor& delta,
      const at::Tensor& A, const at::Tensor& B, const at::Tensor& C, const at::Tensor& D,
      const at::Tensor& z, const at::Tensor& bias, const at::Tensor& mask, bool softplus,
      bool deterministic) {
    const ScanInputs in = inputs_of(u, delta, A, B, C, D, z, bias, mask, softplus);
    const ScanAlgorithm algorithm = scan_algorithm_for(in);
    ScanCudaForward r = selective_scan_cuda_forward(in, algorithm, /*save_states=*/true, false);
    ctx->save_for_backward({u, delta, A, B, C, D, z, bias, mask, r.states});
    ctx->saved_data["softplus"] = softplus;
    ctx->saved_data["deterministic"] = deterministic;
    ctx->saved_data["algorithm"] = static_cast<int64_t>(algorithm);
    ctx->saved_data["time_segments"] = backward_time_segments(algorithm, u.size(0), u.size(1), u.device());
    return {r.out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto s = ctx->get_saved_variables();
    const ScanInputs in = inputs_of(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8],
                                    ctx->saved_data["softplus"].toBool());
    torch::autograd::variable_list none(11);
    if (!grad_out[0].defined()) return none;
    const auto algorithm = static_cast<ScanAlgorithm>(ctx->saved_data["algorithm"].toInt());
    ScanBackwardOptions o;
    o.deterministic = ctx->saved_data["deterministic"].toBool();
    o.time_segments = ctx->saved_data["time_segments"].toInt();
    const ScanCudaGrads g = selective_scan_cuda_backward(in, algorithm, s[9], grad_out[0], o);
    auto like = [](const at::Tensor& grad, const at::Tensor& input) {
      return input.defined() && grad.defined() ? grad.to(input.scalar_type()) : at::Tensor();
    };
    return {like(g.du, in.u),     like(g.ddelta, in.delta), like(g.dA, in.A),
            like(g.dB, in.B),     like(g.dC, in.C),         like(g.dD, in.D),
            like(g.dz, in.z),     like(g.ddelta_bias, in.delta_bias),
            like(g.dmask, in.mask), at::Tensor(),           at::Tensor()};
  }
};

}  // namespace

namespace {
// The SM count the algorithm choice reads (a device without an index: the current one).
int sm_count_of(const at::Device& device) {
  return at::cuda::getDeviceProperties(device.index() < 0 ? at::cuda::current_device() : device.index())
      ->multiProcessorCount;
}
void check_choice_inputs(const ScanInputs& in) {
  MCD_CHECK(in.u.defined() && in.u.is_cuda() && in.u.dim() == 3 && in.A.defined() && in.A.dim() == 2,
            "selective_scan (CUDA): u must be a CUDA (B, E, L) tensor and A (E, N)");
}
// The time segments a backward call runs when `wanted` are asked for (whole tiles each,
// scan_time_segments); only the algorithms scan_algorithm_takes_time_segments names take more than one.
int64_t time_segments_for(ScanAlgorithm algorithm, int64_t len, int64_t wanted) {
  MCD_CHECK(wanted >= 1, "selective scan (CUDA): time_segments must be ≥ 1, got ", wanted);
  MCD_CHECK(wanted == 1 || scan_algorithm_takes_time_segments(algorithm),
            "selective scan (CUDA): time segments need state_sequential_eight_lanes, _segmented or _dense, not ",
            scan_algorithm_name(algorithm));
  return scan_time_segments(len, wanted);
}
// k's time segments and, for more than one, their carries (g, then P: (2, segments − 1, B, E, N)
// fp32, written by the backward's first kernel). Returns the buffer, kept by the caller until the
// launch is enqueued (undefined for one segment).
at::Tensor attach_time_segments(SelectiveScanParams& k, int64_t segments, const at::TensorOptions& f32) {
  k.segments = segments;
  k.segment_tiles = scan_tiles_per_time_segment(k.len, segments);
  if (segments == 1) return {};
  at::Tensor carries = fresh(at::empty({2, segments - 1, k.batch, k.dim, k.dstate}, f32));
  k.carry_g = carries[0].data_ptr<float>();
  k.carry_p = carries[1].data_ptr<float>();
  return carries;
}
}  // namespace

int64_t backward_time_segments(ScanAlgorithm algorithm, int64_t batch, int64_t dim, const at::Device& device) {
  return ops_options().scan_time_segments ? scan_backward_time_segments(algorithm, batch, dim, sm_count_of(device))
                                          : 1;
}

ScanAlgorithm scan_algorithm_for(const ScanInputs& in) {
  check_choice_inputs(in);
  const OpsOptions o = ops_options();
  return choose_scan_algorithm(in.u.size(0), in.u.size(1), in.A.size(1), sm_count_of(in.u.device()), o.scan_plan,
                               o.scan_narrow_backward);
}

ScanAlgorithm scan_forward_algorithm_for(const ScanInputs& in) {
  check_choice_inputs(in);
  // Time-contiguous: every (B, E, L) and (B, N, L) operand has unit time stride (a size-1 time
  // dimension counts as any stride).
  const bool time_contiguous = time_unit_stride(in.u) && time_unit_stride(in.delta) && time_unit_stride(in.z) &&
                               time_unit_stride(in.B) && time_unit_stride(in.C);
  return choose_scan_forward_algorithm(in.u.size(0), in.u.size(1), in.A.size(1), sm_count_of(in.u.device()),
                                       ops_options().scan_plan, time_contiguous);
}

bool scan_prefers_time_contiguous(int64_t batch, int64_t dim, int64_t dstate, const at::Device& device) {
  if (dstate < 1 || dstate > kScanMaxState) return false;
  const ScanAlgorithm a =
      choose_scan_forward_algorithm(batch, dim, dstate, sm_count_of(device), ops_options().scan_plan, true);
  return a == ScanAlgorithm::kBlockForward || a == ScanAlgorithm::kBlockForwardStaged;
}

bool scan_supported(const ScanInputs& in) {
  return in.u.defined() && in.u.is_cuda() && kernel_dtype(in.u.scalar_type()) && in.A.defined() &&
         in.A.dim() == 2 && in.A.size(1) >= 1 && in.A.size(1) <= kScanMaxState &&
         in.u.size(0) <= 65535;
}

bool scan_writes_last_state(const ScanInputs& in, const at::Tensor& t) {
  return t.defined() && in.u.defined() && in.u.dim() == 3 && in.A.defined() && in.A.dim() == 2 &&
         t.device() == in.u.device() && t.scalar_type() == at::kFloat && t.is_contiguous() && t.dim() == 3 &&
         t.size(0) == in.u.size(0) && t.size(1) == in.u.size(1) && t.size(2) == in.A.size(1);
}

ScanCudaForward selective_scan_cuda_forward(const ScanInputs& in, ScanAlgorithm algorithm, bool save_states,
                                            bool want_last_state, const at::Tensor& last_state_into) {
  MCD_CHECK(!last_state_into.defined() || (want_last_state && scan_writes_last_state(in, last_state_into)),
            "selective scan (CUDA): last_state_into must be (B, E, N) fp32 contiguous on u's device, got ",
            last_state_into.sizes());
  const Prepared p = prepare(in, algorithm);
  const c10::cuda::CUDAGuard guard(p.u.device());
  const auto f32 = p.u.options().dtype(at::kFloat);
  ScanCudaForward r;
  r.out = fresh(alloc_like_layout(p.u, p.u.scalar_type()));
  if (save_states) r.states = fresh(at::empty({p.batch, p.dim, p.n_chunks, p.dstate}, f32));
  if (p.batch == 0 || p.dim == 0 || p.len == 0) {
    if (want_last_state)
      r.last_state = last_state_into.defined() ? last_state_into.zero_() : at::zeros({p.batch, p.dim, p.dstate}, f32);
    return r;
  }
  if (want_last_state)
    r.last_state = last_state_into.defined() ? last_state_into : fresh(at::empty({p.batch, p.dim, p.dstate}, f32));
  SelectiveScanParams k = base_params(p, in.delta_softplus);
  k.out = r.out.data_ptr();
  k.out_s = strides_of(r.out);
  check_tile_offsets("out", k.out_s);
  k.states = save_states ? r.states.data_ptr<float>() : nullptr;
  k.last_state = want_last_state ? r.last_state.data_ptr<float>() : nullptr;
  selective_scan_fwd(k);
  return r;
}

ScanCudaGrads selective_scan_cuda_backward(const ScanInputs& in, ScanAlgorithm algorithm, const at::Tensor& states,
                                           const at::Tensor& dout_in, const ScanBackwardOptions& options) {
  const bool deterministic = options.deterministic;
  const Prepared p = prepare(in, algorithm);
  const c10::cuda::CUDAGuard guard(p.u.device());
  const auto st = p.u.scalar_type();
  const auto f32 = p.u.options().dtype(at::kFloat);
  MCD_CHECK(dout_in.sizes() == p.u.sizes(), "selective_scan (CUDA) backward: dout ",
            dout_in.sizes(), " must match u ", p.u.sizes());
  MCD_CHECK(states.defined() && states.scalar_type() == at::kFloat && states.is_contiguous() &&
                states.sizes() == at::IntArrayRef({p.batch, p.dim, p.n_chunks, p.dstate}),
            "selective_scan (CUDA) backward: states must be the forward's fp32 (B, E, chunks, N) of the "
            "same algorithm (", scan_algorithm_name(algorithm), ": ", p.n_chunks, " chunks), got ", states.sizes());
  const int64_t segments = time_segments_for(algorithm, p.len, options.time_segments);
  const at::Tensor dout = dout_in.to(st);
  ScanCudaGrads g;
  g.du = fresh(alloc_like_layout(p.u, st));
  g.ddelta = fresh(alloc_like_layout(p.delta, st));
  if (p.z.defined()) {
    if (options.dz_into.defined()) {
      MCD_CHECK(options.dz_into.sizes() == p.z.sizes() && options.dz_into.scalar_type() == st &&
                    options.dz_into.device() == p.u.device(),
                "selective_scan (CUDA) backward: dz_into ", options.dz_into.sizes(), " must match z ",
                p.z.sizes(), " in u's dtype and device");
      g.dz = options.dz_into;
    } else {
      g.dz = fresh(alloc_like_layout(p.z, st));
    }
  }
  if (options.recompute_out) g.out = fresh(alloc_like_layout(p.u, st));
  const int64_t slices = scan_slice_count(p.algorithm, p.dim);
  if (options.dBC_into.defined())
    MCD_CHECK(options.dBC_into.sizes() == at::IntArrayRef({p.batch, p.len, 2 * p.dstate}) &&
                  options.dBC_into.scalar_type() == st && options.dBC_into.device() == p.u.device(),
              "selective_scan (CUDA) backward: dBC_into ", options.dBC_into.sizes(), " must be (B, L, 2N) = (",
              p.batch, ", ", p.len, ", ", 2 * p.dstate, ") in u's dtype and device");
  // dB and dC (fp32, summed over channels) share one buffer: one zero-fill in atomic mode.
  at::Tensor dBC32, dB_part, dC_part;
  if (deterministic) {
    dBC32 = fresh(at::empty({2, p.batch, p.dstate, p.len}, f32));
    dB_part = fresh(at::empty({slices, p.batch, p.dstate, p.len}, f32));
    dC_part = fresh(at::empty({slices, p.batch, p.dstate, p.len}, f32));
  } else {
    dBC32 = at::zeros({2, p.batch, p.dstate, p.len}, f32);
  }
  const at::Tensor dB32 = dBC32[0], dC32 = dBC32[1];
  // dA, dD, dΔ-bias, dmask: per-(segment, batch) partials summed below (deterministic), or one
  // zero-filled buffer the kernel adds every batch into (scan_params.h, param_grads_atomic).
  const int64_t prows = deterministic ? segments * p.batch : 1;
  const int64_t n_vec = int64_t{p.D.defined()} + int64_t{p.bias.defined()} + int64_t{p.mask.defined()};
  at::Tensor pbuf = deterministic ? fresh(at::empty({prows * p.dim * (p.dstate + n_vec)}, f32))
                                  : at::zeros({p.dim * (p.dstate + n_vec)}, f32);
  int64_t off = 0;
  auto take = [&](std::initializer_list<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    at::Tensor t = pbuf.narrow(0, off, n).view(shape);
    off += n;
    return t;
  };
  at::Tensor dA_part = take({prows, p.dim, p.dstate});
  at::Tensor dD_part = p.D.defined() ? take({prows, p.dim}) : at::Tensor();
  at::Tensor dbias_part = p.bias.defined() ? take({prows, p.dim}) : at::Tensor();
  at::Tensor dmask_part = p.mask.defined() ? take({prows, p.dim}) : at::Tensor();
  if (p.batch == 0 || p.dim == 0 || p.len == 0) {
    pbuf.zero_();
    dBC32.zero_();
  } else {
    SelectiveScanParams k = base_params(p, in.delta_softplus);
    k.deterministic = deterministic;
    k.states = states.data_ptr<float>();
    k.dout = dout.data_ptr();
    k.dout_s = strides_of(dout);
    k.du = g.du.data_ptr();
    k.du_s = strides_of(g.du);
    k.ddelta = g.ddelta.data_ptr();
    k.ddelta_s = strides_of(g.ddelta);
    if (g.dz.defined()) {
      k.dz = g.dz.data_ptr();
      k.dz_s = strides_of(g.dz);
    }
    if (g.out.defined()) {
      k.out = g.out.data_ptr();
      k.out_s = strides_of(g.out);
    }
    for (const auto& [name, st_] : {std::pair<const char*, Strides3>{"du", k.du_s}, {"ddelta", k.ddelta_s},
                                    {"dz", k.dz_s}, {"out", k.out_s}})
      check_tile_offsets(name, st_);
    k.dB = dB32.data_ptr<float>();
    k.dC = dC32.data_ptr<float>();
    if (deterministic) {
      k.dB_part = dB_part.data_ptr<float>();
      k.dC_part = dC_part.data_ptr<float>();
    }
    k.param_grads_atomic = !deterministic;
    k.dA_part = dA_part.data_ptr<float>();
    k.dD_part = dD_part.defined() ? dD_part.data_ptr<float>() : nullptr;
    k.ddelta_bias_part = dbias_part.defined() ? dbias_part.data_ptr<float>() : nullptr;
    k.dmask_part = dmask_part.defined() ? dmask_part.data_ptr<float>() : nullptr;
    const at::Tensor carries = attach_time_segments(k, segments, f32);  // the segments' adjoint carries
    selective_scan_bwd(k);
  }
  if (options.dBC_into.defined()) {
    options.dBC_into.view({p.batch, p.len, 2, p.dstate}).copy_(dBC32.permute({1, 3, 0, 2}));
  } else {
    g.dB = dB32.to(st);
    g.dC = dC32.to(st);
  }
  // Partials: summed in a fixed order. Atomic: the single row is the gradient.
  auto total = [&](const at::Tensor& t) { return deterministic ? t.sum(0) : t[0]; };
  g.dA = total(dA_part);
  if (dD_part.defined()) g.dD = total(dD_part);
  if (dbias_part.defined()) g.ddelta_bias = total(dbias_part);
  if (dmask_part.defined()) g.dmask = total(dmask_part);
  return g;
}

at::Tensor selective_scan_cuda(const ScanInputs& in, bool deterministic) {
  // Nothing to differentiate (inference): the fastest forward alone, no saved states.
  bool grads = false;
  if (at::GradMode::is_enabled())
    for (const at::Tensor* t : {&in.u, &in.delta, &in.A, &in.B, &in.C, &in.D, &in.z, &in.delta_bias, &in.mask})
      grads = grads || (t->defined() && t->requires_grad());
  if (!grads) return selective_scan_cuda_forward(in, scan_forward_algorithm_for(in), false, false).out;
  return SelectiveScanCudaFunction::apply(
      in.u, in.delta, in.A, in.B, in.C, placeholder_if_undefined(in.D),
      placeholder_if_undefined(in.z), placeholder_if_undefined(in.delta_bias),
      placeholder_if_undefined(in.mask), in.delta_softplus, deterministic)[0];
}

std::pair<at::Tensor, at::Tensor> selective_scan_cuda_with_state(const ScanInputs& in,
                                                                 const at::Tensor& last_state_into) {
  torch::NoGradGuard no_grad;
  ScanCudaForward r = selective_scan_cuda_forward(in, scan_forward_algorithm_for(in), /*save_states=*/false,
                                                  /*want_last_state=*/true, last_state_into);
  return {r.out, r.last_state};
}

}  // namespace mcd::ops::cuda
