// The split-K tensor-core product of a batched decode step (ops option decode_split_k;
// ops/cuda/decode_linear_params.h, DecodeSplitKParams): against float64, its conv-step epilogue
// against the conv-step kernel, its counters left for the next call, the dispatch that picks it,
// and a graph decoder at batch 16 and 64 with the option off and on.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "infer/graph_decoder.h"
#include "model/mamba.h"
#include "ops/add_rms_norm.h"
#include "ops/causal_conv1d.h"
#include "ops/decode_linear.h"
#include "ops/decode_workspace.h"
#include "ops/options.h"
#include "test_support.h"
#include "../sdm/prune_test_util.h"

#ifdef MCD_WITH_CUDA
#include "ops/cuda/ops_cuda.h"
#endif

namespace mcd {
namespace {

// A workspace for one product of `in` × `out` (its counters zero).
ops::DecodeWorkspace split_k_workspace_for(int64_t in, int64_t out) {
  return ops::make_decode_workspace({{in, out}}, torch::Device(torch::kCUDA));
}

#ifdef MCD_WITH_CUDA  // the kernel's own host op (ops/cuda): CUDA builds only
const char* split_k_dtype_name(at::ScalarType t) { return t == at::kHalf ? "fp16" : "bf16"; }

// Against float64 with cuBLAS's product in the same precision as the rule's "plain": the kernel's
// largest error may be twice cuBLAS's, plus one rounding of the largest output to the dtype (2^-8
// relative in bf16, 2^-11 in fp16: the sums are added in another order, so a result may round the
// other way). Rows 9 (one past the few-row kernel), 33 and 64; inner lengths on each slice (768 and
// 1536: 128; 96 and 192: 96; 320: 64) and so 1 to 12 splits; 80, 83 (odd: a last tile of 19 columns)
// and 3,072 columns; x as a view into a wider buffer; with and without a bias. Outputs poisoned.
TEST(GpuSplitK, MatchesFloat64ForEveryRowCountAndSlice) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  ops::OpsOptions poison = ops::ops_options();
  poison.poison_outputs = true;
  const ops::ScopedOpsOptions scope(poison);
  for (at::ScalarType dt : {at::kHalf, at::kBFloat16}) {
    for (auto [in, out] : std::vector<std::pair<int64_t, int64_t>>{{768, 3072}, {96, 83}, {192, 80}, {1536, 200},
                                                                     {320, 768}}) {
      const ops::DecodeWorkspace ws = split_k_workspace_for(in, out);
      ASSERT_TRUE(ws.defined());
      for (int64_t rows : {9, 33, 64}) {
        for (bool with_bias : {false, true}) {
          const std::string what = std::string(split_k_dtype_name(dt)) + " in=" + std::to_string(in) +
                                   " out=" + std::to_string(out) + " rows=" + std::to_string(rows) +
                                   (with_bias ? " bias" : "");
          torch::manual_seed(in + 7 * out + 100 * rows + int(with_bias));
          const at::Tensor wide = torch::randn({rows, 2 * in}, cuda).to(dt);
          const at::Tensor x = wide.narrow(1, 0, in);
          const at::Tensor w = (torch::randn({out, in}, cuda) / std::sqrt(double(in))).to(dt);
          const at::Tensor b = with_bias ? torch::randn({out}, cuda).to(dt) : at::Tensor();
          const ops::cuda::SplitKWorkspace k{ws.partials, ws.counters};
          ASSERT_TRUE(ops::cuda::decode_linear_split_k_supported(x, w, b, k)) << what;
          const at::Tensor y = ops::cuda::decode_linear_split_k_cuda(x, w, b, k);
          const at::Tensor plain = at::linear(x, w, b);
          const at::Tensor ref = at::linear(x.to(at::kDouble), w.to(at::kDouble), b.defined() ? b.to(at::kDouble) : b);
          const double scale = ref.abs().max().item<double>();
          const double e_kernel = (y.to(at::kDouble) - ref).abs().max().item<double>();
          const double e_plain = (plain.to(at::kDouble) - ref).abs().max().item<double>();
          const double rounding = std::ldexp(1.0, dt == at::kBFloat16 ? -8 : -11) * scale;
          EXPECT_LE(e_kernel, 2 * e_plain + rounding) << what << ": kernel " << e_kernel << ", cuBLAS " << e_plain;
          EXPECT_EQ(ws.counters.abs().sum().item<int64_t>(), 0) << what << ": counters left non-zero";
          // The same call again gives the same bits (a fixed order of the partials' sum).
          EXPECT_TRUE(torch::equal(ops::cuda::decode_linear_split_k_cuda(x, w, b, k), y)) << what;
        }
      }
    }
  }
}

// The conv step in the product's epilogue against the product alone followed by the conv-step kernel
// (ops::causal_conv1d_step): both round x to the dtype, then run conv_step.cuh's per-channel
// arithmetic, and the product's partials are summed in the same order, so u, z and the conv state
// agree bit for bit: fp16 and bf16, rows 9 and 64, D 768 (6 slices) and 1024 (8), E 37 (one partial
// tile) and 1536, K 1..4, with and without a conv bias.
TEST(GpuSplitK, ConvStepEpilogueGivesTheSeparateKernelsBits) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kHalf, at::kBFloat16}) {
    for (int64_t D : {768, 1024}) {
      for (int64_t E : {37, 1536}) {
        const ops::DecodeWorkspace ws = split_k_workspace_for(D, 2 * E);
        const ops::cuda::SplitKWorkspace k{ws.partials, ws.counters};
        for (int64_t rows : {9, 64}) {
          for (int64_t K : {1, 2, 3, 4}) {
            const bool with_bias = (K + rows) % 2 == 0;
            const std::string what = std::string(split_k_dtype_name(dt)) + " D=" + std::to_string(D) +
                                     " E=" + std::to_string(E) + " rows=" + std::to_string(rows) +
                                     " K=" + std::to_string(K) + (with_bias ? " conv bias" : "");
            torch::manual_seed(D + E + 10 * rows + K);
            const at::Tensor x = torch::randn({rows, D}, cuda).to(dt);
            const at::Tensor w = (torch::randn({2 * E, D}, cuda) * 0.05).to(dt);
            const at::Tensor cw = (torch::randn({E, K}, cuda) * 0.5).to(dt);
            const at::Tensor cb = with_bias ? (torch::randn({E}, cuda) * 0.1).to(dt) : at::Tensor();
            at::Tensor state = torch::randn({rows, E, K - 1}, cuda).to(dt), ref_state = state.clone();
            const ops::cuda::ConvStepOperands conv{&state, cw, cb, true};
            const at::Tensor fused = ops::cuda::decode_linear_split_k_cuda(x, w, {}, k, &conv);
            const at::Tensor xz = ops::cuda::decode_linear_split_k_cuda(x, w, {}, k);
            const at::Tensor u = ops::causal_conv1d_step(ref_state, xz.narrow(1, 0, E), cw, cb, true);
            EXPECT_TRUE(torch::equal(fused.narrow(1, 0, E), u)) << what;
            EXPECT_TRUE(torch::equal(fused.narrow(1, E, E), xz.narrow(1, E, E))) << what;
            EXPECT_TRUE(torch::equal(state, ref_state)) << what;
          }
        }
      }
    }
  }
}

// The residual add + RMSNorm inside the split-K product (DecodeSplitKParams::norm) against the norm
// kernel then the product (ops::add_rms_norm, torch's linear) and float64: the fused kernel rounds
// T(g ⊙ r) where the norm rounds T(g ⊙ r · rstd) — one rounding of the same size — and scales each row's
// sum by rstd afterwards, so the float64 rule holds as for the plain product (twice the composite's
// error plus one rounding of the largest output); the residual stream's new rows are the same fp32
// additions, bit for bit; with the conv step in the epilogue the product alone followed by the
// conv-step kernel gives the same bits. fp16 and bf16, rows 9 and 64, D 96 / 768 / 1024 (slices 96 /
// 128 / 128: 1 to 8 splits), with and without prev, a bias and an fp32 norm weight.
TEST(GpuSplitK, FusedNormMatchesTheNormThenTheProduct) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (at::ScalarType dt : {at::kHalf, at::kBFloat16}) {
    for (int64_t D : {96, 768, 1024}) {
      const int64_t E = 200;
      const ops::DecodeWorkspace ws = split_k_workspace_for(D, 2 * E);
      const ops::cuda::SplitKWorkspace k{ws.partials, ws.counters};
      for (int64_t rows : {9, 64}) {
        for (int variant = 0; variant < 2; ++variant) {
          const std::string what = std::string(split_k_dtype_name(dt)) + " D=" + std::to_string(D) +
                                   " rows=" + std::to_string(rows) + (variant ? " prev, bias, norm w fp32" : " plain");
          torch::manual_seed(D + 10 * rows + variant);
          const at::Tensor res = torch::randn({rows, D}, cuda);
          const at::Tensor prev = variant ? torch::randn({rows, D}, cuda).to(dt) : at::Tensor();
          const at::Tensor nw = (torch::rand({D}, cuda) + 0.5).to(variant ? at::kFloat : dt);
          const at::Tensor W = (torch::randn({2 * E, D}, cuda) / std::sqrt(double(D))).to(dt);
          const at::Tensor b = variant ? torch::randn({2 * E}, cuda).to(dt) : at::Tensor();
          ASSERT_TRUE(ops::cuda::add_norm_decode_linear_split_k_supported(res, prev, nw, W, b, k)) << what;
          const auto [out, residual] = ops::cuda::add_norm_decode_linear_split_k_cuda(res, prev, nw, 1e-5, W, b, k);
          const ops::AddNormOut n = ops::add_rms_norm(res, prev, nw, 1e-5, dt);
          EXPECT_TRUE(torch::equal(residual, n.residual)) << what;
          const at::Tensor plain = at::linear(n.normed, W, b);
          const at::Tensor r64 = res.to(at::kDouble) + (prev.defined() ? prev.to(at::kDouble) : at::zeros({rows, D}, res.options().dtype(at::kDouble)));
          const at::Tensor normed64 = r64 * at::rsqrt(r64.pow(2).mean(-1, true) + 1e-5) * nw.to(at::kDouble);
          const at::Tensor ref = at::linear(normed64, W.to(at::kDouble), b.defined() ? b.to(at::kDouble) : b);
          const double scale = ref.abs().max().item<double>();
          const double e_kernel = (out.to(at::kDouble) - ref).abs().max().item<double>();
          const double e_plain = (plain.to(at::kDouble) - ref).abs().max().item<double>();
          const double rounding = std::ldexp(1.0, dt == at::kBFloat16 ? -8 : -11) * scale;
          EXPECT_LE(e_kernel, 2 * e_plain + rounding) << what << ": kernel " << e_kernel << ", composite " << e_plain;
          // The conv step in the epilogue (K = 4, E of the 2E columns).
          const at::Tensor cw = (torch::randn({E, 4}, cuda) * 0.5).to(dt), cb = (torch::randn({E}, cuda) * 0.1).to(dt);
          at::Tensor state = torch::randn({rows, E, 3}, cuda).to(dt), ref_state = state.clone();
          const ops::cuda::ConvStepOperands conv{&state, cw, cb, true};
          const auto fused = ops::cuda::add_norm_decode_linear_split_k_cuda(res, prev, nw, 1e-5, W, b, k, &conv);
          const at::Tensor u = ops::causal_conv1d_step(ref_state, out.narrow(1, 0, E), cw, cb, true);
          EXPECT_TRUE(torch::equal(fused.first.narrow(1, 0, E), u)) << what;
          EXPECT_TRUE(torch::equal(fused.first.narrow(1, E, E), out.narrow(1, E, E))) << what;
          EXPECT_TRUE(torch::equal(state, ref_state)) << what;
          EXPECT_EQ(ws.counters.abs().sum().item<int64_t>(), 0) << what;
        }
      }
    }
  }
}

#endif

// ops::decode_linear takes the split-K kernel only with the option on and a current workspace (a
// step on a cache of 9–64 sequences makes its own current); otherwise cuBLAS through torch's
// linear, and at ≤ 8 rows the few-row kernel either way.
TEST(GpuSplitK, DecodeLinearPicksItOnlyWithTheOptionAndAWorkspace) {
  MCD_SKIP_IF_NO_CUDA();
  torch::NoGradGuard no_grad;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA).dtype(at::kBFloat16);
  const at::Tensor x = torch::randn({64, 768}, cuda), w = torch::randn({80, 768}, cuda);
  const ops::DecodeWorkspace ws = split_k_workspace_for(768, 80);
  ops::OpsOptions o = ops::ops_options();
  for (bool option : {false, true}) {
    o.decode_split_k = option;
    const ops::ScopedOpsOptions scope(o);
    EXPECT_FALSE(ops::decode_linear_runs_kernel(x, w, {})) << "no workspace, option " << option;
    const ops::ScopedDecodeWorkspace current(&ws);
    EXPECT_EQ(ops::decode_linear_runs_kernel(x, w, {}), option);
    EXPECT_EQ(ops::decode_linear_runs_kernel(x.to(at::kFloat), w.to(at::kFloat), {}), false) << "fp32 stays cuBLAS's";
  }
  EXPECT_FALSE(ops::make_decode_workspace({{77, 80}}, torch::Device(torch::kCUDA)).defined()) << "no slice divides 77";
  EXPECT_FALSE(ops::make_decode_workspace({{768, 80}}, torch::Device(torch::kCPU)).defined());
}

// A graph decoder at batch 16 and 64 (bf16), option off then on: the products sum in another order
// than cuBLAS's, so each step's logits agree within a few units of their last place (2^-5 of the
// largest, as the other reordering options' tests allow) and the greedy tokens agree, or the runs
// part at a near-tie (a top-2 margin within twice that bound), after which they are not comparable.
TEST(GpuSplitK, GraphDecodeKeepsTheCuBlasLogitsAndTokens) {
  MCD_SKIP_IF_NO_CUDA();
  for (int64_t batch : {16, 64}) {
    std::vector<at::Tensor> logits[2];
    for (bool option : {false, true}) {
      MambaLM m = sdm::test_util::random_model(sdm::test_util::tiny_config(""), 41);
      m->to(torch::kCUDA, at::kBFloat16);
      const at::Tensor prompts = sdm::test_util::tokens(batch, 6, 512, 42).to(torch::kCUDA);
      ops::OpsOptions o = ops::ops_options();
      o.decode_split_k = option;
      const ops::ScopedOpsOptions scope(o);
      infer::GraphDecoder d(*m, batch);
      EXPECT_EQ(d.cache().workspace.defined(), true) << "batch " << batch;
      d.prefill(prompts);
      for (int i = 0; i < 12; ++i) {
        d.step();
        logits[option].push_back(d.logits().clone());
      }
    }
    for (size_t i = 0; i < logits[0].size(); ++i) {
      const std::string what = "batch " + std::to_string(batch) + " step " + std::to_string(i);
      const at::Tensor &off = logits[0][i], &on = logits[1][i];
      const double tol = 4.0 / 128 * off.abs().max().item<double>();
      EXPECT_LE((on - off).abs().max().item<double>(), tol) << what;
      if (torch::equal(on.argmax(-1), off.argmax(-1))) continue;
      const at::Tensor top2 = std::get<0>(off.topk(2, -1));
      EXPECT_LE((top2.select(1, 0) - top2.select(1, 1)).min().item<double>(), 2 * tol) << what << ": tokens part";
      break;
    }
  }
}

}  // namespace
}  // namespace mcd
