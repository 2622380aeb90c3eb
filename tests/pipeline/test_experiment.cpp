// The experiment file (strict: errors name the file and the key) and the stage plan of METHOD §5's
// variant chains.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>

#include "pipeline/experiment.h"
#include "test_support.h"
#include "pipeline/stage_graph.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::pipeline {
namespace {

struct TempDir {
  std::string dir = fs::make_temp_dir("mcd_experiment");
  ~TempDir() { fs::remove_tree(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = fs::join(dir, name);
    std::ofstream(p) << text;
    return p;
  }
};

const char* kExperiment = R"(name: demo
corpus: {format: text, paths: [data/brown]}
model: {preset: mamba-tiny}
pretrain: {steps: 50, batch_size: 4, seq_len: 64}
sdm: {target_sparsity: 0.5}
csp: {calibration_windows: 8}
tasks:
  - {name: custom, label: spam, train: spam/train.jsonl, dev: spam/dev.jsonl}
  - {name: sst2, data_dir: glue}
seeds: [1, 2]
)";

std::string error_of(const std::string& path) {
  try {
    load_experiment(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::map<std::string, PlannedStage> by_name(const std::vector<PlannedStage>& plan) {
  std::map<std::string, PlannedStage> m;
  for (const auto& s : plan) m[s.name] = s;
  return m;
}

TEST(Experiment, AllVariantsPlanTheChainsOfMethodSection5) {
  TempDir tmp;
  const Experiment e = load_experiment(tmp.write("e.yaml", kExperiment));
  EXPECT_EQ(e.variants.size(), 9u);  // all by default
  EXPECT_EQ(e.pretrain["steps"], 50);
  EXPECT_EQ(e.pretrain["lr"], 4e-3);  // a default filled in
  const auto plan = plan_stages(e);
  // Needs come first, and every stage appears once.
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_TRUE(position.emplace(plan[i].name, i).second) << plan[i].name << " twice";
    for (const auto& n : plan[i].needs) EXPECT_TRUE(position.count(n)) << plan[i].name << " before " << n;
  }
  const auto m = by_name(plan);
  auto needs = [&](const std::string& s) { return m.at(s).needs; };
  using V = std::vector<std::string>;
  EXPECT_EQ(needs("finetune/base/spam/seed1"), V{"pretrain/dense"});
  EXPECT_EQ(needs("finetune/csp/spam/seed1"), V{"csp/dense"});
  EXPECT_EQ(needs("csp/dense"), V{"pretrain/dense"});
  EXPECT_EQ(needs("finetune/sdm/spam/seed1"), V{"prune/sdm"});
  EXPECT_EQ(needs("prune/sdm"), V{"pretrain/sdm"});
  EXPECT_EQ(needs("finetune/sgh/spam/seed1"), (V{"pretrain/dense", "importance/dense"}));
  EXPECT_EQ(needs("finetune/sdm-sgh/spam/seed1"), V{"prune/sdm"});  // gate importance from the pruning
  EXPECT_EQ(needs("finetune/full/sst2/seed2"), V{"prune/csp-sdm"});
  EXPECT_EQ(needs("prune/csp-sdm"), V{"csp/sdm"});
  EXPECT_EQ(needs("csp/sdm"), V{"pretrain/sdm"});
  EXPECT_EQ(needs("prune/challenge"), (V{"pretrain/dense", "prune/sdm"}));  // SDM's kept widths
  EXPECT_EQ(m.at("finetune/challenge/spam/seed1").settings["method"], "lora");
  EXPECT_EQ(m.at("finetune/lora-all/spam/seed1").settings["method"], "lora");
  EXPECT_EQ(m.at("finetune/ia3-all/spam/seed1").settings["method"], "ia3");
  EXPECT_EQ(m.at("finetune/base/spam/seed1").settings.count("peft"), 0u);  // full FT has no PEFT settings
  // One profile stage times every deployed model side by side, M_base's first.
  EXPECT_EQ(needs("profile"), (V{"pretrain/dense", "csp/dense", "prune/sdm", "prune/csp-sdm", "prune/challenge"}));
  // 9 variants × 2 tasks × 2 seeds fine-tunings, and the report needs all of them.
  EXPECT_EQ(std::count_if(plan.begin(), plan.end(), [](const auto& s) { return s.kind == "finetune"; }), 36);
  EXPECT_EQ(plan.back().name, "report");
  EXPECT_EQ(std::count_if(plan.back().needs.begin(), plan.back().needs.end(),
                          [](const std::string& n) { return n.rfind("finetune/", 0) == 0; }),
            36);
}

// M_SDM is pruned by its gates' own channels (prune.granularity, default 1); M_full in blocks of
// sdm.granularity after CSP, and the same blocks without CSP are a measured-only stage the report
// reads. Each pruning stage's settings hold its own unit and only the shared rounding, so a run
// made before prune.granularity existed keeps M_full's stage keys (and its fine-tunings).
TEST(Experiment, SdmPrunesChannelsAndFullPrunesBlocksMeasuredAlsoWithoutCsp) {
  TempDir tmp;
  std::string text = kExperiment;
  text.replace(text.find("sdm: {target_sparsity: 0.5}"), 27, "sdm: {target_sparsity: 0.5, granularity: 16}\nprune: {round_to: 16}");
  const auto m = by_name(plan_stages(load_experiment(tmp.write("e.yaml", text))));
  EXPECT_EQ(m.at("prune/sdm").settings,
            nlohmann::json({{"source", "gates"}, {"prune", {{"round_to", 16}}}, {"granularity", 1}}));
  EXPECT_EQ(m.at("prune/csp-sdm").settings,
            nlohmann::json({{"source", "gates"}, {"prune", {{"round_to", 16}}}, {"granularity", 16}}));
  EXPECT_EQ(m.at("prune/challenge").settings,
            nlohmann::json({{"source", "magnitude_widths"}, {"prune", {{"round_to", 16}}}}));
  ASSERT_TRUE(m.count("prune/sdm-blocks"));
  EXPECT_EQ(m.at("prune/sdm-blocks").settings, m.at("prune/csp-sdm").settings);
  EXPECT_EQ(m.at("prune/sdm-blocks").needs, std::vector<std::string>{"pretrain/sdm"});
  const auto& report_needs = m.at("report").needs;
  EXPECT_NE(std::find(report_needs.begin(), report_needs.end(), "prune/sdm-blocks"), report_needs.end());
  EXPECT_NE(std::find(report_needs.begin(), report_needs.end(), "prune/csp-sdm"), report_needs.end());
  // Not fine-tuned, not profiled: it deploys nothing.
  for (const auto& [name, s] : m)
    if (name != "report")
      EXPECT_EQ(std::find(s.needs.begin(), s.needs.end(), "prune/sdm-blocks"), s.needs.end()) << name;

  // Equal units: the blocks stage would repeat prune/sdm, so there is none.
  text.replace(text.find("prune: {round_to: 16}"), 21, "prune: {round_to: 16, granularity: 16}");
  EXPECT_FALSE(by_name(plan_stages(load_experiment(tmp.write("f.yaml", text)))).count("prune/sdm-blocks"));
  // A unit below 1 is refused, naming the file and the key.
  text.replace(text.find("prune: {round_to: 16, granularity: 16}"), 38, "prune: {round_to: 16, granularity: 0}");
  EXPECT_NE(error_of(tmp.write("g.yaml", text)).find("'prune.granularity' must be at least 1"), std::string::npos)
      << error_of(tmp.write("g.yaml", text));
}

TEST(Experiment, ACspSettingChangesOnlyTheStagesDownstreamOfCsp) {
  TempDir tmp;
  auto keys_of = [](const Experiment& e) {
    StageGraph g;
    for (const auto& p : plan_stages(e)) g.add({p.name, p.needs, p.settings, p.expected_seconds,
                                                [](const StageContext&) { return nlohmann::json(); }});
    return g.keys();
  };
  Experiment e = load_experiment(tmp.write("e.yaml", kExperiment));
  const auto before = keys_of(e);
  e.csp["calibration_windows"] = 9;
  const auto after = keys_of(e);
  for (const auto& [name, key] : before) {
    // The profile times the CSP models too, and the report needs everything.
    const bool downstream_of_csp = name.find("csp") != std::string::npos || name.find("/full/") != std::string::npos ||
                                   name == "profile" || name == "report";
    EXPECT_EQ(key != after.at(name), downstream_of_csp) << name;
  }
}

TEST(Experiment, MistakesAreNamedWithFileAndKey) {
  TempDir tmp;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = kExperiment;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    return tmp.write("bad.yaml", s);
  };
  std::string e = error_of(with("pretrain: {steps: 50", "pretrain: {stpes: 50"));
  EXPECT_NE(e.find("bad.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("'pretrain.stpes'"), std::string::npos) << e;
  EXPECT_NE(e.find("steps"), std::string::npos) << e;  // the known keys are listed
  e = error_of(with("steps: 50", "steps: fifty"));
  EXPECT_NE(e.find("'pretrain.steps' must be an integer"), std::string::npos) << e;
  e = error_of(with("seeds: [1, 2]", "seeds: [1, 1]"));
  EXPECT_NE(e.find("seed 1 appears twice"), std::string::npos) << e;
  e = error_of(with("seeds: [1, 2]", "seeds: [1, 2]\nvariants: [M_base, M_fast]"));
  EXPECT_NE(e.find("variants[1]"), std::string::npos) << e;
  EXPECT_NE(e.find("M_fast"), std::string::npos) << e;
  e = error_of(with("dev: spam/dev.jsonl", "dev: ''"));
  EXPECT_NE(e.find("tasks[0]"), std::string::npos) << e;
  e = error_of(with("name: sst2", "name: sst3"));
  EXPECT_NE(e.find("unknown task 'sst3'"), std::string::npos) << e;
  e = error_of(with("target_sparsity: 0.5", "target_sparsity: 1.5"));
  EXPECT_NE(e.find("sdm.target_sparsity"), std::string::npos) << e;
  e = error_of(with("name: demo", "name: demo\nbudget: 3"));
  EXPECT_NE(e.find("unknown key 'budget'"), std::string::npos) << e;
  e = error_of(with("format: text", "format: brown"));
  EXPECT_NE(e.find("'corpus.format' must be auto, text, wikitext or wikiextractor, got 'brown'"), std::string::npos)
      << e;
  e = error_of(with("format: text", "format: text, validation_format: html"));
  EXPECT_NE(e.find("'corpus.validation_format' must be auto, text, wikitext or wikiextractor, got 'html'"),
            std::string::npos)
      << e;
  e = error_of(with("format: text", "format: text, validation_paths: wiki.valid.tokens"));
  EXPECT_NE(e.find("'corpus.validation_paths' must be a list"), std::string::npos) << e;
  e = error_of(with("seeds: [1, 2]", "seeds: [1, 2]\nvocab: {restrict: true, min_count: 0}"));
  EXPECT_NE(e.find("'vocab.min_count' must be at least 1"), std::string::npos) << e;
  {
    // `data vocab` takes one GLUE folder: a restricted vocabulary needs the GLUE tasks in one.
    std::string two_dirs = std::string(kExperiment) + "vocab: {restrict: true}\n";
    two_dirs.replace(two_dirs.find("  - {name: sst2"), 0, "  - {name: rte, data_dir: other}\n");
    e = error_of(tmp.write("two_dirs.yaml", two_dirs));
  }
  EXPECT_NE(e.find("every GLUE task must have the same data_dir"), std::string::npos) << e;
  e = error_of(fs::join(tmp.dir, "absent.yaml"));
  EXPECT_NE(e.find("absent.yaml"), std::string::npos) << e;
}

std::map<std::string, std::string> keys_of_plan(const Experiment& e) {
  StageGraph g;
  for (const auto& p : plan_stages(e))
    g.add({p.name, p.needs, p.settings, p.expected_seconds, [](const StageContext&) { return nlohmann::json(); }});
  return g.keys();
}

TEST(Experiment, ARestrictedVocabularyIsOneStageBeforeBothPretrainings) {
  TempDir tmp;
  const Experiment plain = load_experiment(tmp.write("e.yaml", kExperiment));
  const Experiment off = load_experiment(tmp.write("off.yaml", std::string(kExperiment) + "vocab: {restrict: false}\n"));
  const Experiment on =
      load_experiment(tmp.write("on.yaml", std::string(kExperiment) + "vocab: {restrict: true, min_count: 2}\n"));
  // Off (the default): no stage, and the keys are those of a file without the section.
  EXPECT_EQ(by_name(plan_stages(off)).count("vocab"), 0u);
  EXPECT_EQ(keys_of_plan(off), keys_of_plan(plain));
  const auto plan = plan_stages(on);
  ASSERT_FALSE(plan.empty());
  EXPECT_EQ(plan.front().name, "vocab");
  EXPECT_EQ(plan.front().kind, "vocab");
  const auto m = by_name(plan);
  using V = std::vector<std::string>;
  EXPECT_EQ(m.at("pretrain/dense").needs, V{"vocab"});
  EXPECT_EQ(m.at("pretrain/sdm").needs, V{"vocab"});
  // Built from the corpus and each task's training data, not its dev data.
  const auto& settings = m.at("vocab").settings;
  EXPECT_EQ(settings["vocab"]["min_count"], 2);
  EXPECT_EQ(settings["corpus"]["paths"][0], "data/brown");
  ASSERT_EQ(settings["tasks"].size(), 2u);
  EXPECT_EQ(settings["tasks"][0]["train"], "spam/train.jsonl");
  EXPECT_FALSE(settings["tasks"][0].contains("dev"));
  // Every model comes from a pre-training, so every stage's key follows the vocabulary's settings.
  const auto k_on = keys_of_plan(on), k_plain = keys_of_plan(plain);
  for (const auto& [name, key] : k_plain) EXPECT_NE(key, k_on.at(name)) << name;
}

// model.init_from: the pre-trainings' settings name the folder instead of a preset; an experiment without it keeps
// the settings (and so the stage keys) it had before the key existed; mistakes are named.
TEST(Experiment, InitFromNamesAModelFolderInsteadOfAPreset) {
  TempDir tmp;
  fs::make_dirs(fs::join(tmp.dir, "model"));
  std::ofstream(fs::join(tmp.dir, "model/config.json")) << "{}";
  const std::string model = fs::join(tmp.dir, "model");
  std::string with = kExperiment;
  with.replace(with.find("model: {preset: mamba-tiny}"), std::string("model: {preset: mamba-tiny}").size(),
               "model: {init_from: " + model + "}");
  const Experiment plain = load_experiment(tmp.write("plain.yaml", kExperiment));
  EXPECT_EQ(plain.model, nlohmann::json({{"preset", "mamba-tiny"}}));
  const Experiment from = load_experiment(tmp.write("from.yaml", with));
  EXPECT_EQ(from.model, nlohmann::json({{"init_from", model}}));
  const auto m = by_name(plan_stages(from));
  EXPECT_EQ(m.at("pretrain/dense").settings["model"]["init_from"], model);
  EXPECT_EQ(m.at("pretrain/sdm").settings["model"]["init_from"], model);
  const auto k_from = keys_of_plan(from), k_plain = keys_of_plan(plain);
  EXPECT_NE(k_from.at("pretrain/dense"), k_plain.at("pretrain/dense"));

  std::string both = with;
  both.replace(both.find("model: {init_from:"), std::string("model: {").size(), "model: {preset: mamba-tiny, ");
  std::string e = error_of(tmp.write("both.yaml", both));
  EXPECT_NE(e.find("give 'model.preset' or 'model.init_from', not both"), std::string::npos) << e;
  std::string absent = kExperiment;
  absent.replace(absent.find("model: {preset: mamba-tiny}"), std::string("model: {preset: mamba-tiny}").size(),
                 "model: {init_from: " + fs::join(tmp.dir, "nowhere") + "}");
  e = error_of(tmp.write("absent.yaml", absent));
  EXPECT_NE(e.find("is not a model folder (no config.json)"), std::string::npos) << e;
  e = error_of(tmp.write("restrict.yaml", with + "vocab: {restrict: true}\n"));
  EXPECT_NE(e.find("'vocab.restrict' builds a vocabulary for a model pre-trained from scratch"), std::string::npos) << e;
}

// Every experiment file shipped in configs/experiments loads and plans (no stage runs): each
// variant has a fine-tuning per task and seed, and the report needs them all.
TEST(Experiment, ShippedExperimentFilesLoadAndPlanEveryVariant) {
  const std::string dir = fs::join(mcd::test::source_dir(), "configs/experiments");
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int files = 0;
  for (const std::string& name : fs::list_dir(dir)) {
    if (name.size() < 5 || name.substr(name.size() - 5) != ".yaml") continue;
    ++files;
    SCOPED_TRACE(name);
    Experiment e;
    ASSERT_NO_THROW(e = load_experiment(fs::join(dir, name)));
    EXPECT_FALSE(e.description.empty());
    const auto m = by_name(plan_stages(e));
    for (const Variant v : e.variants)
      for (const auto& t : e.tasks)
        for (const int64_t seed : e.seeds) {
          const std::string stage =
              std::string("finetune/") + variant_slug(v) + "/" + t.label + "/seed" + std::to_string(seed);
          ASSERT_TRUE(m.count(stage)) << stage;
          const auto& report = m.at("report").needs;
          EXPECT_NE(std::find(report.begin(), report.end(), stage), report.end()) << stage;
        }
  }
  EXPECT_GE(files, 3);  // demo-cpu, glue-small-gpu, glue-130m-gpu
}

// The `./run.sh` demonstration (configs/experiments/demo-cpu.yaml): every variant of METHOD §5 on
// the demo data, 3 seeds, a restricted vocabulary, and labelled as a demonstration.
TEST(Experiment, DemoExperimentIsALabelledDemonstrationOfEveryVariant) {
  const Experiment e = load_experiment(fs::join(mcd::test::source_dir(), "configs/experiments/demo-cpu.yaml"));
  EXPECT_EQ(e.variants, all_variants());
  EXPECT_EQ(e.seeds.size(), 3u);
  EXPECT_TRUE(e.vocab["restrict"].get<bool>());
  ASSERT_EQ(e.tasks.size(), 1u);
  EXPECT_EQ(e.tasks[0].name, "custom");
  EXPECT_EQ(e.tasks[0].train, ".cache/demo/spam/train.jsonl");
  EXPECT_EQ(e.corpus["paths"][0], ".cache/demo/brown");
  EXPECT_NE(e.description.find("Demonstration run, not a study"), std::string::npos) << e.description;
  const auto plan = plan_stages(e);
  EXPECT_EQ(plan.front().name, "vocab");
  EXPECT_EQ(plan.back().name, "report");
  // vocab, 2 pre-trainings, importance, 2 CSP, 3 prunings, profile, 9 variants x 3 seeds, report.
  EXPECT_EQ(plan.size(), 1u + 2 + 1 + 2 + 3 + 1 + 27 + 1);
}

}  // namespace
}  // namespace mcd::pipeline
