// The importance file (sdm/importance.h): contents from gates and from the magnitude proxy,
// exact write/read round trip, and malformed files rejected with errors naming file and key.
#include <gtest/gtest.h>

#include <fstream>

#include "prune_test_util.h"
#include "sdm/importance.h"
#include "sdm/prune.h"

namespace mcd::sdm {
namespace {
using namespace test_util;
using nlohmann::json;

TEST(ImportanceFile, GateImportanceRoundTrip) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config("hard_concrete", 2), 21);
  PlanOptions o;
  o.round_to = 8;
  const KeepPlan plan = plan_threshold(*model, o);
  const Importance imp = compute_importance(*model, plan);
  EXPECT_EQ(imp.source, "sdm_gates");
  EXPECT_EQ(imp.gate_block, 2);
  ASSERT_EQ(imp.layers.size(), 3u);
  for (int64_t l = 0; l < 3; ++l) {
    const auto& li = imp.layers[l];
    auto& gate = *model->backbone->blocks[l]->mixer->gate;
    EXPECT_EQ(li.width, 128);
    EXPECT_EQ(li.kept, plan.kept[l]);
    EXPECT_EQ(li.kept_width, int64_t(plan.kept[l].size()));
    EXPECT_EQ(li.kept_count, (gate.deterministic_gates() > 0).sum().item<int64_t>() * 2);
    EXPECT_LE(li.kept_count, li.kept_width);
    EXPECT_NEAR(li.mean_keep_prob, gate.prob_open().mean().item<double>(), 1e-7);
    ASSERT_EQ(li.alpha.size(), 128u);
    EXPECT_EQ(li.alpha[7], gate.log_alpha[3].item<float>());  // channel 7 is in gate 3
    EXPECT_FLOAT_EQ(li.keep_prob[7], gate.prob_open()[3].item<float>());
  }
  write_importance(tmp.file("imp.json"), imp);
  const Importance back = read_importance(tmp.file("imp.json"));
  EXPECT_EQ(importance_to_json(back), importance_to_json(imp));
  EXPECT_EQ(back.layers[1].alpha, imp.layers[1].alpha);
  EXPECT_EQ(back.plan["method"], "threshold");
  EXPECT_EQ(back.plan["round_to"], 8);
  EXPECT_TRUE(back.plan["sparsity"].is_null());
  EXPECT_DOUBLE_EQ(back.sparsity(), 1.0 - double(plan.total_kept()) / 384.0);
  // SGH-PEFT's entry point: layers[i].mean_keep_prob.
  std::ifstream f(tmp.file("imp.json"));
  const json j = json::parse(f);
  EXPECT_DOUBLE_EQ(j["layers"][2]["mean_keep_prob"].get<double>(), imp.layers[2].mean_keep_prob);
  EXPECT_EQ(j["totals"]["kept_width"].get<int64_t>(), plan.total_kept());
}

TEST(ImportanceFile, MagnitudeProxyIsLabelled) {
  test::TempDir tmp;
  MambaLM model = random_model(tiny_config(""), 22);
  const KeepPlan plan = plan_magnitude(*model, 0.25, MagnitudeScope::kPerLayer);
  const Importance imp = compute_importance(*model, plan);
  EXPECT_EQ(imp.source, "magnitude_proxy");
  double top = 0;
  for (const auto& l : imp.layers) {
    EXPECT_TRUE(l.alpha.empty());
    EXPECT_EQ(l.kept_count, 96);
    for (double p : l.keep_prob) {
      EXPECT_GE(p, 0.0);
      EXPECT_LE(p, 1.0);
      top = std::max(top, p);
    }
  }
  EXPECT_DOUBLE_EQ(top, 1.0);
  write_importance(tmp.file("imp.json"), imp);
  std::ifstream f(tmp.file("imp.json"));
  const json j = json::parse(f);
  EXPECT_EQ(j["source"], "magnitude_proxy");
  EXPECT_FALSE(j["layers"][0].contains("alpha"));
  EXPECT_EQ(importance_to_json(read_importance(tmp.file("imp.json"))), importance_to_json(imp));
}

// Expects read_importance to fail on `j` with a message naming the file and `needle`.
void expect_rejected(const json& j, const std::string& needle) {
  test::TempDir tmp;
  const std::string path = tmp.file("bad.json");
  std::ofstream(path) << j.dump();
  try {
    read_importance(path);
    ADD_FAILURE() << "accepted a file that should fail on " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

TEST(ImportanceFile, MalformedFilesAreRejected) {
  MambaLM model = random_model(tiny_config("hard_concrete"), 23);
  const json good = importance_to_json(compute_importance(*model, plan_threshold(*model)));
  ASSERT_NO_THROW(importance_from_json(good, "good"));
  auto edit = [&](auto&& change) {
    json j = good;
    change(j);
    return j;
  };
  expect_rejected(edit([](json& j) { j.erase("format"); }), "'format'");
  expect_rejected(edit([](json& j) { j["format"] = "other"; }), "'format'");
  expect_rejected(edit([](json& j) { j["version"] = 99; }), "'version'");
  expect_rejected(edit([](json& j) { j["source"] = "oracle"; }), "'source'");
  expect_rejected(edit([](json& j) { j["layers"] = json::array(); }), "'layers'");
  expect_rejected(edit([](json& j) { j["layers"][1].erase("mean_keep_prob"); }), "layers[1].mean_keep_prob");
  expect_rejected(edit([](json& j) { j["layers"][1]["mean_keep_prob"] = "high"; }), "layers[1].mean_keep_prob");
  expect_rejected(edit([](json& j) { j["layers"][0]["mean_keep_prob"] = 1.5; }), "layers[0].mean_keep_prob");
  expect_rejected(edit([](json& j) { j["layers"][2]["keep_prob"].erase(0); }), "layers[2].keep_prob");
  expect_rejected(edit([](json& j) { j["layers"][2]["keep_prob"][3] = -0.1; }), "layers[2].keep_prob[3]");
  expect_rejected(edit([](json& j) { j["layers"][0]["alpha"][5] = nullptr; }), "layers[0].alpha[5]");
  expect_rejected(edit([](json& j) { j["layers"][0].erase("alpha"); }), "layers[0].alpha");
  expect_rejected(edit([](json& j) {
                    auto& k = j["layers"][1]["kept"];
                    std::swap(k[0], k[1]);
                  }),
                  "layers[1].kept");
  expect_rejected(edit([](json& j) { j["layers"][1]["kept_width"] = 200; }), "layers[1].kept_width");
  expect_rejected(edit([](json& j) { j["totals"]["width"] = 1; }), "totals.width");
  expect_rejected(edit([](json& j) { j.erase("totals"); }), "'totals'");
  // Not JSON at all, and a missing file.
  test::TempDir tmp;
  std::ofstream(tmp.file("junk.json")) << "{\"format\": ";
  EXPECT_THROW(read_importance(tmp.file("junk.json")), Error);
  try {
    read_importance(tmp.file("absent.json"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace mcd::sdm
