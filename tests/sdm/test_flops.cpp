// Analytic FLOPs and parameters (sdm/flops.h): mamba-130m by hand, the PERF.md training
// convention, the published parameter counts, and pruned widths lowering every per-layer term.
#include <gtest/gtest.h>

#include "prune_test_util.h"
#include "sdm/flops.h"
#include "sdm/prune.h"

namespace mcd::sdm {
namespace {
using namespace test_util;

TEST(Flops, Mamba130mDenseMatchesHandCount) {
  const ModelConfig c = model_preset("mamba-130m");
  // By hand: D 768, E 1536, N 16, K 4, R 48, V 50280, 24 layers, conv bias, no linear bias.
  const int64_t D = 768, E = 1536, N = 16, K = 4, R = 48, V = 50280;
  const int64_t matmul = 2 * D * (2 * E)      // in_proj  4,718,592
                         + 2 * E * (R + 2 * N)  // x_proj     245,760
                         + 2 * R * E            // dt_proj    147,456
                         + 2 * E * D;           // out_proj 2,359,296
  EXPECT_EQ(matmul, 7471104);
  const int64_t conv = 2 * E * K;  // 12,288
  const int64_t elementwise = 4 * D      // RMSNorm
                              + E        // conv bias
                              + 3 * E    // SiLU(x)
                              + 3 * E    // dt bias + softplus
                              + 3 * E * N + E  // ΔA, exp, Δu, Δu·B
                              + 2 * E * N      // recurrence
                              + 2 * E * N      // C·h
                              + 2 * E          // D skip
                              + 4 * E          // SiLU(z), y·SiLU(z)
                              + D;             // residual
  EXPECT_EQ(elementwise, 197376);
  const int64_t per_layer = matmul + conv + elementwise;  // 7,680,768
  const int64_t total = 24 * per_layer + 2 * D * V + 4 * D;
  EXPECT_EQ(total, 261571584);

  const FlopCount f = count_flops(c);
  ASSERT_EQ(f.layers.size(), 24u);
  EXPECT_EQ(f.layers[5].matmul(), matmul);
  EXPECT_EQ(f.layers[5].conv, conv);
  EXPECT_EQ(f.layers[5].elementwise_total(), elementwise);
  EXPECT_EQ(f.head, 2 * D * V);
  EXPECT_EQ(f.forward_total, total);
  EXPECT_EQ(f.forward_matmul, 24 * matmul + 2 * D * V);
  // PERF.md: 0.77 GFLOP per trained token = 6 × matmul parameters, tied head included.
  EXPECT_EQ(f.matmul_parameters, 128268288);
  EXPECT_EQ(f.training, 6 * f.matmul_parameters);
  EXPECT_EQ(f.training, 769609728);
  EXPECT_EQ(f.parameters, 129135360);  // the published count
  EXPECT_EQ(f.gate_parameters, 0);

  const nlohmann::json j = flops_json(c, 1024);
  EXPECT_EQ(j["per_token"]["forward_total"].get<int64_t>(), total);
  EXPECT_EQ(j["per_sequence"]["forward_total"].get<int64_t>(), 1024 * total);
  EXPECT_EQ(j["layers"][0]["elementwise"]["scan_recurrence"].get<int64_t>(), 2 * E * N);
  EXPECT_EQ(j["parameters"]["total"].get<int64_t>(), 129135360);
  EXPECT_THROW(flops_json(c, 0), Error);
}

TEST(Flops, PresetParameterCountsAndGates) {
  EXPECT_EQ(count_flops(model_preset("mamba-370m")).parameters, 371516416);
  ModelConfig gated = model_preset("mamba-130m");
  gated.gate_type = "hard_concrete";
  gated.gate_block = 8;
  const FlopCount f = count_flops(gated);
  EXPECT_EQ(f.gate_parameters, 24 * 1536 / 8);
  EXPECT_EQ(f.parameters, 129135360 + 24 * 1536 / 8);
  EXPECT_EQ(f.forward_total, count_flops(model_preset("mamba-130m")).forward_total + 24 * 1536);  // u ⊙ gate
  MambaLM tiny(tiny_config("gumbel", 4));
  EXPECT_EQ(numel_sum(*tiny), count_flops(tiny->config()).parameters);
}

TEST(Flops, PrunedWidthsLowerEveryLayerTerm) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 31);
  MambaLM pruned = apply_plan(*model, plan_topk(*model, 0.5));
  ModelConfig dense = model->config();
  dense.gate_type.clear();
  const FlopCount a = count_flops(dense), b = count_flops(pruned->config());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const int64_t E = pruned->config().inner_width(l);
    EXPECT_EQ(b.layers[l].in_proj, 2 * 64 * 2 * E);
    EXPECT_EQ(b.layers[l].out_proj, 2 * E * 64);
    EXPECT_LE(b.layers[l].total(), a.layers[l].total());
  }
  EXPECT_EQ(b.head, a.head);
  EXPECT_EQ(numel_sum(*pruned), b.parameters);
  const nlohmann::json cmp = compare_flops(dense, pruned->config());
  EXPECT_LT(cmp["forward_flops_ratio"].get<double>(), 1.0);
  EXPECT_GT(cmp["forward_flops_ratio"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(cmp["parameters_ratio"].get<double>(), double(b.parameters) / double(a.parameters));
  EXPECT_EQ(cmp["pruned"]["forward_flops_per_token"].get<int64_t>(), b.forward_total);
}

}  // namespace
}  // namespace mcd::sdm
