// Selective scan: CPU plain loops vs the LibTorch composite (forward, every gradient, final
// state), backward vs central finite differences in float64, step mode vs the full scan, and
// input checks. Sizes are deliberately odd (L = 1, 7, 33; E = 5; N = 1, 3, 16). Cases with the
// optional SDM mask (u' = mask ⊙ u) check its gradient too.
#include <gtest/gtest.h>

#include "ops/backend.h"
#include "ops/options.h"
#include "ops/cpu/selective_scan_cpu.h"
#include "ops/selective_scan.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

struct Case {
  int64_t b, e, l, n;
  bool with_z, with_d, with_bias, softplus;
  bool with_mask = false;
};

// The case in test names (gtest would otherwise print the struct's bytes, padding included, so the
// names ctest discovers would change from build to build).
void PrintTo(const Case& c, std::ostream* os) {
  *os << "B" << c.b << "_E" << c.e << "_L" << c.l << "_N" << c.n << (c.with_z ? "_z" : "") << (c.with_d ? "_D" : "")
      << (c.with_bias ? "_bias" : "") << (c.softplus ? "_softplus" : "") << (c.with_mask ? "_mask" : "");
}

ops::ScanInputs random_inputs(const Case& c, at::ScalarType dtype, uint64_t seed) {
  torch::manual_seed(seed);
  auto o = torch::TensorOptions().dtype(dtype);
  ops::ScanInputs in;
  in.u = torch::randn({c.b, c.e, c.l}, o);
  in.delta = torch::randn({c.b, c.e, c.l}, o) * 0.5;
  in.A = -torch::exp(torch::randn({c.e, c.n}, o) * 0.5);
  in.B = torch::randn({c.b, c.n, c.l}, o);
  in.C = torch::randn({c.b, c.n, c.l}, o);
  if (c.with_d) in.D = torch::randn({c.e}, o);
  if (c.with_z) in.z = torch::randn({c.b, c.e, c.l}, o);
  if (c.with_bias) in.delta_bias = torch::randn({c.e}, o) * 0.3;
  if (c.with_mask) {  // gates in [0, 1], one closed exactly
    in.mask = torch::rand({c.e}, o);
    in.mask[0] = 0.0;
  }
  in.delta_softplus = c.softplus;
  if (!c.softplus) in.delta = in.delta.abs() + 0.05;  // Δ must stay positive without softplus
  return in;
}

std::vector<at::Tensor*> grad_inputs(ops::ScanInputs& in) {
  std::vector<at::Tensor*> v{&in.u, &in.delta, &in.A, &in.B, &in.C};
  if (in.D.defined()) v.push_back(&in.D);
  if (in.z.defined()) v.push_back(&in.z);
  if (in.delta_bias.defined()) v.push_back(&in.delta_bias);
  if (in.mask.defined()) v.push_back(&in.mask);
  return v;
}

// The current ops options with another backend (for ScopedOpsOptions).
ops::OpsOptions scan_with_backend(ops::Backend b) {
  ops::OpsOptions o = ops::ops_options();
  o.backend = b;
  return o;
}

class ScanCases : public ::testing::TestWithParam<Case> {};

TEST_P(ScanCases, CpuReferenceMatchesCompositeForwardAndBackward) {
  const Case c = GetParam();
  ops::ScanInputs a = random_inputs(c, at::kDouble, 1), b = random_inputs(c, at::kDouble, 1);
  for (auto* t : grad_inputs(a)) t->requires_grad_(true);
  for (auto* t : grad_inputs(b)) t->requires_grad_(true);
  at::Tensor out_ref, out_comp;
  {
    const ops::ScopedOpsOptions scope(scan_with_backend(ops::Backend::kReference));
    out_ref = ops::selective_scan(a);
  }
  {
    const ops::ScopedOpsOptions scope(scan_with_backend(ops::Backend::kComposite));
    out_comp = ops::selective_scan(b);
  }
  EXPECT_LT(test::rel_err(out_ref, out_comp), 1e-12);
  const at::Tensor weight = torch::randn(out_ref.sizes(), torch::kDouble);
  (out_ref * weight).sum().backward();
  (out_comp * weight).sum().backward();
  const auto ga = grad_inputs(a), gb = grad_inputs(b);
  for (size_t i = 0; i < ga.size(); ++i) {
    ASSERT_TRUE(ga[i]->grad().defined()) << "input " << i;
    EXPECT_LT(test::rel_err(ga[i]->grad(), gb[i]->grad()), 1e-10) << "input " << i;
  }
}

TEST_P(ScanCases, BackwardMatchesFiniteDifferencesInFloat64) {
  const Case c = GetParam();
  ops::ScanInputs in = random_inputs(c, at::kDouble, 2);
  const at::Tensor weight = torch::randn({c.b, c.e, c.l}, torch::kDouble);
  auto loss = [&](const ops::ScanInputs& x) {
    return (ops::cpu::selective_scan_forward(x.u, x.delta, x.A, x.B, x.C, x.D, x.z, x.delta_bias,
                                        x.delta_softplus, false, x.mask).out * weight).sum().item<double>();
  };
  const auto g = ops::cpu::selective_scan_backward(weight, in.u, in.delta, in.A, in.B, in.C, in.D, in.z,
                                              in.delta_bias, in.delta_softplus, in.mask);
  const std::vector<at::Tensor> grads{g.du, g.ddelta, g.dA, g.dB, g.dC, g.dD, g.dz, g.ddelta_bias, g.dmask};
  const std::vector<at::Tensor*> inputs{&in.u, &in.delta, &in.A, &in.B, &in.C, &in.D, &in.z, &in.delta_bias,
                                        &in.mask};
  const double eps = 1e-6;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k]->defined()) continue;
    at::Tensor flat = inputs[k]->view({-1});
    const at::Tensor analytic = grads[k].reshape({-1});
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 7)) {
      const double saved = flat[i].item<double>();
      flat[i] = saved + eps;
      const double up = loss(in);
      flat[i] = saved - eps;
      const double down = loss(in);
      flat[i] = saved;
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(analytic[i].item<double>(), numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << "input " << k << " element " << i;
    }
  }
}

TEST_P(ScanCases, FinalStateAndStepModeMatchTheFullScan) {
  const Case c = GetParam();
  const ops::ScanInputs in = random_inputs(c, at::kDouble, 3);
  auto [out, last] = ops::selective_scan_with_state(in);
  at::Tensor last_comp;
  ops::selective_scan_composite(in, &last_comp);
  EXPECT_LT(test::rel_err(last, last_comp), 1e-12);
  // Into a given buffer (a cache's): the same values, in that very tensor.
  at::Tensor into = torch::full({c.b, c.e, c.n}, 7.0, torch::kDouble);
  const auto [out_into, last_into] = ops::selective_scan_with_state(in, into);
  EXPECT_TRUE(last_into.is_same(into));
  EXPECT_TRUE(torch::equal(into, last));
  EXPECT_TRUE(torch::equal(out_into, out));
  EXPECT_THROW(ops::selective_scan_with_state(in, torch::zeros({c.b, c.e, c.n + 1}, torch::kDouble)), std::exception);
  at::Tensor state = torch::zeros({c.b, c.e, c.n}, torch::kDouble);
  std::vector<at::Tensor> steps;
  const at::Tensor u_eff = in.mask.defined() ? in.u * in.mask.unsqueeze(-1) : in.u;  // step has no mask
  for (int64_t t = 0; t < c.l; ++t) {
    steps.push_back(ops::selective_scan_step(
        state, u_eff.select(2, t), in.delta.select(2, t), in.A, in.B.select(2, t), in.C.select(2, t),
        in.D, in.z.defined() ? in.z.select(2, t) : at::Tensor(), in.delta_bias, in.delta_softplus));
  }
  EXPECT_LT(test::rel_err(torch::stack(steps, -1), out), 1e-12);
  EXPECT_LT(test::rel_err(state, last), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(
    OddSizes, ScanCases,
    ::testing::Values(Case{1, 1, 1, 1, true, true, true, true}, Case{2, 5, 7, 3, true, true, true, true},
                      Case{2, 5, 33, 16, true, true, true, true}, Case{3, 4, 9, 2, false, false, false, true},
                      Case{1, 3, 12, 4, true, false, true, false}, Case{2, 7, 5, 16, false, true, true, true},
                      Case{2, 5, 7, 3, true, true, true, true, true}, Case{1, 4, 9, 16, false, false, false, true, true},
                      Case{2, 3, 6, 2, true, false, true, false, true}));

// The scan parameters in fp32 (ops::scan_params_fp32; the CUDA kernel is tested in test_gpu): on the
// CPU exactly the composite −exp(A_log), D and Δ's bias widened, undefined ones left undefined, and
// with gradients wanted an autograd graph to A_log (d(−exp(a))/da = −exp(a)).
TEST(SelectiveScan, ScanParamsFp32AreTheWidenedParameters) {
  torch::manual_seed(3);
  const at::Tensor A_log = torch::rand({5, 3}).to(at::kBFloat16), D = torch::randn({5}).to(at::kBFloat16);
  const ops::ScanParams32 p = ops::scan_params_fp32(A_log, D, at::Tensor());
  EXPECT_TRUE(torch::equal(p.A, -torch::exp(A_log.to(at::kFloat))));
  EXPECT_TRUE(torch::equal(p.D, D.to(at::kFloat)));
  EXPECT_FALSE(p.delta_bias.defined());
  const at::Tensor a = torch::rand({4, 2}, torch::kDouble).requires_grad_(true);
  const ops::ScanParams32 g = ops::scan_params_fp32(a, at::Tensor(), at::Tensor());
  g.A.sum().backward();
  EXPECT_TRUE(torch::allclose(a.grad(), -torch::exp(a.detach().to(at::kFloat)).to(at::kDouble)));
}

// a_is_log: the step takes the model's A_log and uses −exp(A_log); the same step as passing
// −exp(A_log) itself, so bit-equal (the composite computes the same LibTorch ops in both cases).
TEST(SelectiveScan, StepTakesALogAsTheNegatedExponential) {
  for (at::ScalarType dt : {at::kDouble, at::kFloat}) {
    torch::manual_seed(int(dt));
    const int64_t b = 2, e = 5, n = 3;
    const auto o = torch::TensorOptions().dtype(dt);
    const at::Tensor a_log = torch::rand({e, n}, o) * 2, u = torch::randn({b, e}, o), delta = torch::randn({b, e}, o);
    const at::Tensor B = torch::randn({b, n}, o), C = torch::randn({b, n}, o), D = torch::randn({e}, o);
    const at::Tensor z = torch::randn({b, e}, o), bias = torch::randn({e}, o) * 0.1;
    at::Tensor s1 = torch::randn({b, e, n}, o), s2 = s1.clone();
    const at::Tensor y1 = ops::selective_scan_step(s1, u, delta, a_log, B, C, D, z, bias, true, /*a_is_log=*/true);
    const at::Tensor y2 = ops::selective_scan_step(s2, u, delta, -torch::exp(a_log), B, C, D, z, bias, true);
    EXPECT_TRUE(torch::equal(y1, y2)) << dt;
    EXPECT_TRUE(torch::equal(s1, s2)) << dt;
  }
}

// delta_proj: the step forms Δ = delta_low · delta_projᵀ itself; the same step as passing that
// product (bit-equal off CUDA: the composite runs the same linear), and a wrong shape is refused.
TEST(SelectiveScan, StepFormsDeltaFromItsLowRankRows) {
  torch::manual_seed(8);
  const int64_t b = 2, e = 5, n = 3, r = 2;
  const at::Tensor a_log = torch::rand({e, n}) * 2, u = torch::randn({b, e}), low = torch::randn({b, r});
  const at::Tensor W = torch::randn({e, r}), B = torch::randn({b, n}), C = torch::randn({b, n});
  const at::Tensor D = torch::randn({e}), z = torch::randn({b, e}), bias = torch::randn({e}) * 0.1;
  at::Tensor s1 = torch::randn({b, e, n}), s2 = s1.clone();
  const at::Tensor y1 = ops::selective_scan_step(s1, u, low, a_log, B, C, D, z, bias, true, true, W);
  const at::Tensor y2 = ops::selective_scan_step(s2, u, at::linear(low, W), a_log, B, C, D, z, bias, true, true);
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(s1, s2));
  EXPECT_THROW(ops::selective_scan_step(s1, u, low, a_log, B, C, D, z, bias, true, true, torch::randn({e, r + 1})),
               std::exception);
}

// The step with x_proj in front is x_proj's product, then the step on its three slices (Δ's low-rank
// rows, B, C in that order) — float64 on the CPU, bit for bit; a wrongly sized x_proj is refused
// with the shapes.
TEST(SelectiveScan, ProjectedStepIsXProjThenTheStepOnItsSlices) {
  torch::manual_seed(9);
  const int64_t b = 3, e = 7, n = 4, r = 2;
  const auto f64 = torch::dtype(at::kDouble);
  const at::Tensor a_log = torch::rand({e, n}, f64) * 2, u = torch::randn({b, e}, f64);
  const at::Tensor x_proj = torch::randn({r + 2 * n, e}, f64), W = torch::randn({e, r}, f64);
  const at::Tensor D = torch::randn({e}, f64), z = torch::randn({b, e}, f64), bias = torch::randn({e}, f64) * 0.1;
  at::Tensor s1 = torch::randn({b, e, n}, f64), s2 = s1.clone();
  const at::Tensor y1 = ops::selective_scan_step_projected(s1, u, x_proj, a_log, D, z, bias, true, true, W);
  const at::Tensor x_dbl = at::linear(u, x_proj);
  const at::Tensor y2 = ops::selective_scan_step(s2, u, x_dbl.narrow(1, 0, r), a_log, x_dbl.narrow(1, r, n),
                                                 x_dbl.narrow(1, r + n, n), D, z, bias, true, true, W);
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(s1, s2));
  const std::string msg = test::error_of(
      [&] { ops::selective_scan_step_projected(s1, u, torch::randn({r + 2 * n + 1, e}, f64), a_log, D, z, bias, true, true, W); });
  EXPECT_NE(msg.find("x_proj must be (R + 2N, E)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[11, 7]"), std::string::npos) << msg;
}

TEST(SelectiveScan, Float32IsCloseToFloat64Reference) {
  const Case c{2, 9, 129, 16, true, true, true, true};
  const ops::ScanInputs in64 = random_inputs(c, at::kDouble, 4);
  ops::ScanInputs in32 = in64;
  for (auto* t : grad_inputs(in32)) *t = t->to(at::kFloat);
  const at::Tensor ref = ops::selective_scan_composite(in64);
  const at::Tensor got = ops::cpu::selective_scan_forward(in32.u, in32.delta, in32.A, in32.B, in32.C, in32.D,
                                                     in32.z, in32.delta_bias, true, false).out;
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  EXPECT_LT(test::rel_err(got, ref), 1e-5);
  EXPECT_GT(got.abs().sum().item<double>(), 0.0);
}

TEST(SelectiveScan, ClosedMaskGateZeroesTheChannel) {
  const Case c{2, 5, 9, 4, true, true, true, true, true};
  const ops::ScanInputs in = random_inputs(c, at::kDouble, 7);  // mask[0] == 0
  for (auto b : {ops::Backend::kReference, ops::Backend::kComposite}) {
    const ops::ScopedOpsOptions scope(scan_with_backend(b));
    const at::Tensor out = ops::selective_scan(in);
    EXPECT_EQ(out.select(1, 0).abs().max().item<double>(), 0.0) << ops::backend_name(b);
    EXPECT_GT(out.select(1, 1).abs().max().item<double>(), 0.0) << ops::backend_name(b);
  }
  EXPECT_EQ(ops::backend(), ops::Backend::kAuto);  // the scopes restored it
  ops::ScanInputs unmasked = in;
  unmasked.mask = at::Tensor();
  unmasked.u = in.u * in.mask.unsqueeze(-1);
  EXPECT_LT(test::rel_err(ops::selective_scan(in), ops::selective_scan(unmasked)), 1e-14);
}

TEST(SelectiveScan, ZeroLengthSequence) {
  const Case c{2, 3, 0, 4, true, true, true, true};
  const ops::ScanInputs in = random_inputs(c, at::kDouble, 5);
  auto [out, last] = ops::selective_scan_with_state(in);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 0}));
  EXPECT_EQ(last.abs().sum().item<double>(), 0.0);
}

TEST(SelectiveScan, WrongShapesAreClearErrors) {
  ops::ScanInputs in = random_inputs(Case{2, 5, 7, 3, true, true, true, true}, at::kFloat, 6);
  ops::ScanInputs bad = in;
  bad.B = torch::randn({2, 4, 7});
  try {
    ops::selective_scan(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("B must be (B, N, L)"), std::string::npos) << e.what();
  }
  bad = in;
  bad.z = torch::randn({2, 5, 6});
  EXPECT_THROW(ops::selective_scan(bad), Error);
  bad = in;
  bad.A = torch::randn({4, 3});
  EXPECT_THROW(ops::selective_scan(bad), Error);
}

}  // namespace
}  // namespace mcd
