// The `csp` subcommand as the real binary: calibrate from a safetensors file, write the permuted
// model + permutation.json (same loss as the source), apply the file to a copy, refuse it for a
// model of other widths; `score --corpus` on a text file (skips without the GPT-2 assets).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "csp/permutation.h"
#include "io/safetensors_torch.h"
#include "model/checkpoint.h"
#include "sdm/prune.h"
#include "../sdm/prune_test_util.h"
#include "test_support.h"

namespace mcd::csp {
namespace {

using nlohmann::json;
using sdm::test_util::random_model;
using sdm::test_util::tiny_config;
using test::run_cli;

json last_json(const test::CliRun& r) { return json::parse(r.last_line()); }

TEST(CspCli, CalibratesPermutesAndApplies) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config("hard_concrete"), 61);
  save_pretrained(*model, tmp.file("in"));
  io::save_safetensors(tmp.file("calib.safetensors"), {{"input_ids", sdm::test_util::tokens(8, 32, 512, 62)}});
  io::save_safetensors(tmp.file("eval.safetensors"), {{"input_ids", sdm::test_util::tokens(2, 24, 512, 63)}});

  const auto r = run_cli("csp --model " + tmp.file("in") + " --calib " + tmp.file("calib.safetensors") +
                         " --out " + tmp.file("out") + " --tokens 200 --time-limit 5 --device cpu");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = last_json(r);
  EXPECT_EQ(j["calibration_tokens"], 7 * 32);  // whole rows covering 200 tokens
  EXPECT_EQ(j["layers"], 3);
  EXPECT_GE(j["objective"]["final"].get<double>(), j["objective"]["greedy"].get<double>());
  EXPECT_NE(r.err.find("csp: layer 3/3"), std::string::npos) << r.err;
  const Permutation p = read_permutation(tmp.file("out/permutation.json"));
  EXPECT_EQ(p.calibration["input"], "safetensors");

  // Same loss from the source and the permuted model (fp32; see test_csp.cpp for the bound).
  auto loss = [&](const std::string& dir) {
    const auto s = run_cli("score --model " + dir + " --tokens " + tmp.file("eval.safetensors") + " --device cpu");
    EXPECT_EQ(s.status, 0) << s.err;
    return last_json(s)["loss"].get<double>();
  };
  const double l_in = loss(tmp.file("in")), l_out = loss(tmp.file("out"));
  EXPECT_NEAR(l_out, l_in, 1e-5 * std::abs(l_in));

  // --apply reproduces the permuted weights exactly.
  const auto a = run_cli("csp --model " + tmp.file("in") + " --apply " + tmp.file("out/permutation.json") +
                         " --out " + tmp.file("applied") + " --device cpu");
  ASSERT_EQ(a.status, 0) << a.err;
  MambaLM x = load_pretrained(tmp.file("out")), y = load_pretrained(tmp.file("applied"));
  auto yp = y->named_parameters();
  for (const auto& kv : x->named_parameters()) EXPECT_TRUE(torch::equal(kv.value(), yp[kv.key()])) << kv.key();

  // A pruned model has other widths: refused, naming the file and the layer.
  MambaLM pruned = sdm::apply_plan(*model, sdm::plan_topk(*model, 0.5));
  save_pretrained(*pruned, tmp.file("pruned"));
  const auto bad = run_cli("csp --model " + tmp.file("pruned") + " --apply " + tmp.file("out/permutation.json") +
                           " --out " + tmp.file("bad") + " --device cpu");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("permutation.json: layer"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("is for width 128"), std::string::npos) << bad.err;
  const auto neither = run_cli("csp --model " + tmp.file("in") + " --out " + tmp.file("x") + " --device cpu");
  EXPECT_EQ(neither.status, 1);
  EXPECT_NE(neither.err.find("--calib"), std::string::npos) << neither.err;
}

TEST(CspCli, ScoresACorpusInWindows) {
  test::TempDir tmp;
  ModelConfig c = model_preset("mamba-tiny");
  c.vocab_size = 50257;  // the GPT-2 ids of the text
  MambaLM model(c);
  init_reference(*model, 3);
  save_pretrained(*model, tmp.file("m"));
  {
    std::ofstream f(tmp.file("text.txt"));
    for (int i = 0; i < 40; ++i) f << "The quick brown fox jumps over the lazy dog number " << i << ".\n";
  }
  const auto r = run_cli("score --model " + tmp.file("m") + " --corpus " + tmp.file("text.txt") +
                         " --seq-len 32 --device cpu");
  if (r.status != 0 && r.err.find("gpt2") != std::string::npos) GTEST_SKIP() << "GPT-2 assets absent: " << r.err;
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = last_json(r);
  EXPECT_GE(j["windows"].get<int64_t>(), 10);
  EXPECT_EQ(j["seq_len"], 32);
  EXPECT_EQ(j["documents"], 1);
  EXPECT_EQ(j["tokens"].get<int64_t>(), j["windows"].get<int64_t>() * 31);
  // An untrained model is close to uniform over the vocabulary: loss ≈ ln(50257) ≈ 10.8.
  EXPECT_NEAR(j["loss"].get<double>(), std::log(50257.0), 1.0);
  const auto small = run_cli("score --model " + tmp.file("m") + " --corpus " + tmp.file("text.txt") +
                             " --seq-len 100000 --device cpu");
  EXPECT_EQ(small.status, 1);
  EXPECT_NE(small.err.find("fewer than one window"), std::string::npos) << small.err;
}

}  // namespace
}  // namespace mcd::csp
