// The `prune` and `flops` subcommands, run as the real binary (MCD_CLI_PATH): a saved gated model
// pruned from the command line loads back and matches the masked model; the magnitude baseline
// needs --magnitude; --out equal to --model is refused; `flops` prints the analytic breakdown.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "prune_test_util.h"
#include "sdm/importance.h"

namespace mcd::sdm {
namespace {
using namespace test_util;
using nlohmann::json;

using test::CliRun;
using test::run_cli;

json last_json(const CliRun& r) { return json::parse(r.last_line()); }

TEST(PruneCli, PrunesASavedGatedModel) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config("hard_concrete"), 41);
  save_pretrained(*model, tmp.file("in"));
  MambaLM masked = load_pretrained(tmp.file("in"));  // the gates survive the round trip
  const CliRun r = run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("out") + " --round-to 8");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = last_json(r);
  EXPECT_EQ(j["method"], "threshold");
  MambaLM pruned = load_pretrained(tmp.file("out"));
  EXPECT_EQ(j["kept_width"].get<std::vector<int64_t>>(), pruned->config().d_inner_per_layer);
  EXPECT_EQ(j["pruned_parameters"].get<int64_t>(), numel_sum(*pruned));
  EXPECT_LT(j["pruned_flops_per_token"].get<int64_t>(), j["dense_flops_per_token"].get<int64_t>());
  EXPECT_EQ(j["kept_fraction"].size(), 3u);
  EXPECT_GT(j["sparsity"].get<double>(), 0.0);
  const at::Tensor ids = tokens(2, 16, 512, 4);
  EXPECT_LE(test::rel_err(logits(*pruned, ids), logits(*masked, ids)), 1e-5);
  const Importance imp = read_importance(fs::join(tmp.file("out"), "importance.json"));
  EXPECT_EQ(imp.source, "sdm_gates");
  EXPECT_DOUBLE_EQ(imp.sparsity(), j["sparsity"].get<double>());

  // Exact top-k by sparsity.
  const CliRun k = run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("topk") + " --sparsity 0.25");
  ASSERT_EQ(k.status, 0) << k.err;
  EXPECT_EQ(last_json(k)["kept_channels"].get<int64_t>(), 288);
  EXPECT_EQ(last_json(k)["method"], "topk");

  // --threshold and --sparsity exclude each other.
  EXPECT_NE(run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("x") + " --threshold --sparsity 0.5").status, 0);
}

TEST(PruneCli, GatelessModelNeedsMagnitude) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config(""), 42);
  save_pretrained(*model, tmp.file("in"));
  const CliRun bad = run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("out"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--magnitude"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(tmp.file("out")));

  const CliRun g = run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("global") +
                           " --magnitude global --sparsity 0.5 --granularity 4");
  ASSERT_EQ(g.status, 0) << g.err;
  EXPECT_EQ(last_json(g)["kept_channels"].get<int64_t>(), 192);
  EXPECT_EQ(read_importance(fs::join(tmp.file("global"), "importance.json")).source, "magnitude_proxy");

  // Same kept widths as an SDM model's importance file.
  MambaLM gated = random_model(tiny_config("hard_concrete"), 43);
  save_pretrained(*gated, tmp.file("gated"));
  ASSERT_EQ(run_cli("prune --model " + tmp.file("gated") + " --out " + tmp.file("sdm")).status, 0);
  const CliRun w = run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("challenge") +
                           " --widths-from " + fs::join(tmp.file("sdm"), "importance.json"));
  ASSERT_EQ(w.status, 0) << w.err;
  EXPECT_EQ(load_pretrained(tmp.file("challenge"))->config().d_inner_per_layer,
            load_pretrained(tmp.file("sdm"))->config().d_inner_per_layer);
  EXPECT_EQ(last_json(w)["method"], "magnitude_widths");
}

TEST(PruneCli, AllClosedLayerNeedsMinChannels) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config("hard_concrete"), 44);
  set_alpha(*model, 2, torch::full({128}, -9.0));
  save_pretrained(*model, tmp.file("in"));
  const CliRun bad = run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("out"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("layer 2"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("--min-channels 1"), std::string::npos) << bad.err;
  const CliRun ok = run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("out") + " --min-channels 1");
  ASSERT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(last_json(ok)["kept_width"][2].get<int64_t>(), 1);
}

// --out naming the --model folder, however spelled, would overwrite the checkpoint being read.
TEST(PruneCli, RefusesToOverwriteItsSource) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config("hard_concrete"), 45);
  save_pretrained(*model, tmp.file("in"));
  fs::make_dirs(tmp.file("sub"));
  ASSERT_EQ(::symlink(tmp.file("in").c_str(), tmp.file("link").c_str()), 0);
  auto bytes = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  const std::string before = bytes(tmp.file("in/model.safetensors"));
  for (const std::string& out : {tmp.file("in"), tmp.file("in") + "/", tmp.file("sub/../in"), tmp.file("link"),
                                 tmp.file("in/.")}) {
    const CliRun r = run_cli("prune --model " + tmp.file("in") + " --out " + out + " --sparsity 0.5");
    EXPECT_NE(r.status, 0) << out;
    EXPECT_NE(r.err.find("overwrite the source checkpoint"), std::string::npos) << out << ": " << r.err;
    EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
  }
  // The model given through the symlink, --out the real folder: the same folder too.
  EXPECT_NE(run_cli("prune --model " + tmp.file("link") + " --out " + tmp.file("in") + " --sparsity 0.5").status, 0);
  EXPECT_EQ(bytes(tmp.file("in/model.safetensors")), before) << "the source checkpoint was modified";
  EXPECT_FALSE(fs::exists(tmp.file("in/importance.json")));
  // A sibling folder is fine.
  EXPECT_EQ(run_cli("prune --model " + tmp.file("in") + " --out " + tmp.file("in") + "2 --sparsity 0.5").status, 0);
}

TEST(FlopsCli, PrintsTheBreakdown) {
  const CliRun r = run_cli("flops --preset mamba-130m --seq-len 2048");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = last_json(r);
  EXPECT_EQ(j["per_token"]["forward_total"].get<int64_t>(), 261571584);
  EXPECT_EQ(j["per_sequence"]["training"].get<int64_t>(), int64_t(769609728) * 2048);
  EXPECT_EQ(j["parameters"]["total"].get<int64_t>(), 129135360);
  EXPECT_EQ(j["layers"].size(), 24u);
}

// init --sparsity: a uniformly pruned model with random weights (the pruned-latency curves). The
// tiny preset's E = 128 keeps 96 / 64 / 32 at 25 / 50 / 75 % with --round-to 16, and the model loads
// back with those widths; --widths-from and --sparsity together are refused.
TEST(PruneCli, InitSparsityWritesAUniformlyPrunedModel) {
  test::TempDir tmp;
  for (auto [s, w] : std::vector<std::pair<std::string, int64_t>>{{"0.25", 96}, {"0.5", 64}, {"0.75", 32}}) {
    const CliRun r = run_cli("init --preset mamba-tiny --sparsity " + s + " --out " + tmp.file(s));
    ASSERT_EQ(r.status, 0) << r.err;
    MambaLM m = load_pretrained(tmp.file(s));
    for (int64_t l = 0; l < m->config().n_layer; ++l) EXPECT_EQ(m->config().inner_width(l), w) << s;
  }
  EXPECT_NE(run_cli("init --preset mamba-tiny --sparsity 1 --out " + tmp.file("x")).status, 0);
  EXPECT_NE(run_cli("init --preset mamba-tiny --sparsity 0.5 --widths-from " + tmp.file("0.5") + " --out " +
                    tmp.file("y")).status, 0);
  EXPECT_FALSE(fs::exists(tmp.file("x")));
}

}  // namespace
}  // namespace mcd::sdm
