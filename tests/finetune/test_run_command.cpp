// `mamba-codesign run`: a minute-sized experiment on text the test writes — every stage of five
// variants runs through the real commands and the report has every variant's row, the hypotheses,
// the deployed FLOPs and the plots; a second invocation does no work, and a changed CSP setting
// re-runs exactly the stages downstream of CSP. A run killed mid-fine-tune resumes to the same
// numbers. A run with a restricted vocabulary, whose map every model folder carries and every
// command that tokenizes for a model applies.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "data/data_test_util.h"
#include "data/hash64.h"
#include "data/tokenizer/vocab_map.h"
#include "test_support.h"
#include "util/fs.h"

namespace mcd {
namespace {

// Label 1 iff the sentence holds the word "spam"; the filler words are drawn by seed.
void write_spam_task(const std::string& path, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  const char* words[] = {"the", "report", "meeting", "river", "green", "table", "quiet", "paper", "train", "light"};
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int w = 0; w < 8; ++w) text += std::string(w ? " " : "") + words[rng() % 10];
    const int label = int(rng() % 2);
    if (label) text += " spam";
    out << nlohmann::json({{"text", text}, {"label", label}}).dump() << "\n";
  }
}

std::string corpus_paths(const test::TempDir& tmp) {
  std::string paths;
  for (int doc = 0; doc < 20; ++doc) paths += (doc ? ", " : "") + tmp.file("corpus" + std::to_string(doc) + ".txt");
  return paths;
}

std::string experiment(const test::TempDir& tmp, int calibration_windows) {
  return "name: e2e\nout_dir: " + tmp.file("run") +
         "\ncorpus: {format: text, paths: [" + corpus_paths(tmp) +
         "], val_fraction: 0.2, validation_paths: [" + tmp.file("outside.txt") + "], validation_format: text}\n"
         "model: {preset: mamba-small-gpt2}\n"
         "pretrain: {steps: 8, batch_size: 2, seq_len: 32, warmup_steps: 2, eval_windows: 2}\n"
         "sdm: {target_sparsity: 0.5, granularity: 16}\n"  // M_full prunes blocks of 16 after CSP
         "csp: {calibration_windows: " +
         std::to_string(calibration_windows) +
         ", seq_len: 32}\n"
         "finetune: {epochs: 1, batch_size: 16, max_length: 32}\n"
         "peft: {rank: 4, alpha: 8}\n"
         "profile: {prefill: [1x16], decode_batch: [1], iters: 2, at_presets: [mamba-tiny]}\n"
         "tasks:\n  - {name: custom, label: spam, train: " +
         tmp.file("train.jsonl") + ", dev: " + tmp.file("dev.jsonl") +
         "}\nseeds: [1]\nvariants: [M_base, M_SDM, M_SGH, M_full, M_challenge]\n";
}

// The finished report: the ablation table's FLOPs column, H1–H4 with verdicts, the setup and
// the plots (when gnuplot is installed), and results.json with the raw numbers behind them.
void check_report(const test::TempDir& tmp, const std::string& report, const nlohmann::json& profile) {
  for (const char* section : {"## Ablation", "## Hypotheses (METHOD §5)", "## Setup", "## Plots", "classifier FLOPs/seq",
                              "LM FLOPs/token", "peak inference memory", "- Command line: `", "- Commit: "})
    EXPECT_NE(report.find(section), std::string::npos) << section << "\n" << report;
  // M_CSP and LoRA-all are not in this experiment, and one seed gives no paired interval.
  EXPECT_NE(report.find("### H1: not evaluated"), std::string::npos) << report;
  EXPECT_NE(report.find("M_CSP is not among the experiment's variants"), std::string::npos) << report;
  EXPECT_NE(report.find("LoRA-all is not among the experiment's variants"), std::string::npos) << report;
  EXPECT_NE(report.find("A quick demonstration:"), std::string::npos) << report;

  std::ifstream in(tmp.file("run/stages/report/results.json"));
  const auto results = nlohmann::json::parse(in);
  ASSERT_EQ(results["hypotheses"].size(), 4u);
  // H2's FLOPs part compares two deployed classifiers directly: it holds or fails, never more vague.
  const std::string flops_verdict = results["hypotheses"][1]["parts"][0]["verdict"];
  EXPECT_TRUE(flops_verdict == "holds" || flops_verdict == "fails") << results["hypotheses"][1].dump(1);
  EXPECT_EQ(results["hypotheses"][1]["parts"][1]["verdict"], "not evaluated");
  // Deployed classifier FLOPs = L·(forward FLOPs per token without the LM head, as the profile
  // command counts them independently) + 2·D·C + C for the head on the pooled vector; L = 32, C = 2.
  // Integers well below 2^53, so the double is exact.
  for (const auto& [v, stage] : {std::make_pair("M_base", "pretrain/dense"), std::make_pair("M_SDM", "prune/sdm")}) {
    const auto& row = results["variants"][v];
    int64_t model = -1;
    for (size_t m = 0; m < profile["models"].size(); ++m)
      if (profile["models"][m]["path"] == row["model"]) model = int64_t(m);
    ASSERT_GE(model, 0) << v;
    EXPECT_EQ(row["model_stage"], stage);
    std::ifstream cin(row["model"].get<std::string>() + "/config.json");
    const auto config = nlohmann::json::parse(cin);
    const int64_t d = config.contains("d_model") ? config["d_model"].get<int64_t>() : config["hidden_size"].get<int64_t>();
    const int64_t per_token = profile["models"][size_t(model)]["forward_flops_per_token_without_head"];
    EXPECT_EQ(row["classifier_flops_per_sequence"].get<double>(), double(32 * per_token + 2 * d * 2 + 2)) << v;
    EXPECT_EQ(row["scores"]["spam"]["1"]["score"].get<double>(), row["average_score_by_seed"]["1"].get<double>()) << v;
  }
  EXPECT_FALSE(results["setup"]["command_line"].get<std::string>().empty());
  // The CPU pools the profile ran on: the run's --threads 1 reached its stage (LibTorch's pool, and the BLAS
  // pool's where there is one of its own).
  EXPECT_EQ(results["setup"]["profile_cpu_threads"], profile["cpu_threads"]);
  EXPECT_EQ(profile["cpu_threads"]["torch"], 1);
  const std::string blas = profile["cpu_threads"]["blas"].is_null() ? "none of its own" : "1";
  EXPECT_NE(report.find("its CPU threads: LibTorch 1, BLAS " + blas + " thread(s)"), std::string::npos) << report;

  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    for (const char* png : {"pareto.png", "scores.png", "widths.png", "training.png"}) {
      EXPECT_TRUE(fs::exists(tmp.file(std::string("run/stages/report/plots/") + png))) << png;
      EXPECT_NE(report.find(std::string("](plots/") + png + ")"), std::string::npos) << png;
    }
    EXPECT_EQ(results["plots"].size(), 4u);
  } else {
    EXPECT_NE(report.find("Plots skipped: gnuplot was not found"), std::string::npos) << report;
  }
  // Data and scripts are written with or without gnuplot, so another machine can draw the plots.
  for (const char* f : {"pareto.dat", "pareto.gp", "scores.dat", "scores.gp", "widths.dat", "widths.gp",
                        "training.dat", "training.gp"})
    EXPECT_TRUE(fs::exists(tmp.file(std::string("run/stages/report/plots/") + f))) << f;
}

void write_corpus(const test::TempDir& tmp) {
  // One document per file (the text format); 20 documents, so the 10 % validation split holds some.
  std::mt19937 rng(7);
  const char* words[] = {"a", "small", "model", "reads", "the", "text", "and", "learns", "some", "words"};
  for (int doc = 0; doc < 20; ++doc) {
    std::ofstream corpus(tmp.file("corpus" + std::to_string(doc) + ".txt"));
    for (int w = 0; w < 150; ++w) corpus << words[rng() % 10] << (w % 12 == 11 ? ".\n" : " ");
  }
  // The outside validation corpus (corpus.validation_paths), as WikiText-2 is for the GPU experiments.
  std::ofstream outside(tmp.file("outside.txt"));
  for (int w = 0; w < 200; ++w) outside << words[rng() % 10] << (w % 10 == 9 ? ".\n" : " ");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RunCommand, EveryStageRunsThenNothingThenOnlyWhatACspChangeTouches) {
  test::TempDir tmp;
  write_corpus(tmp);
  write_spam_task(tmp.file("train.jsonl"), 64, 1);
  write_spam_task(tmp.file("dev.jsonl"), 32, 2);
  std::ofstream(tmp.file("e.yaml")) << experiment(tmp, 4);

  // Two stages at a time (run --jobs), one thread each: the fine-tunings of different variants overlap.
  const auto first = test::run_cli("run --jobs 2 " + tmp.file("e.yaml"), "", 1);
  if (first.status != 0 && first.err.find("gpt2") != std::string::npos) GTEST_SKIP() << "GPT-2 assets absent: " << first.err;
  ASSERT_EQ(first.status, 0) << first.err;
  auto summary = nlohmann::json::parse(first.last_line());
  // pretrain ×2, prune/sdm, importance, csp/sdm, prune/csp-sdm, prune/sdm-blocks, prune/challenge,
  // profile, 5 fine-tunings, report.
  EXPECT_EQ(summary["stages"], 15);
  EXPECT_EQ(summary["executed"], 15);
  for (const char* v : {"base", "sdm", "sgh", "full", "challenge"}) {
    const std::string result = tmp.file(std::string("run/stages/finetune/") + v + "/spam/seed1/result.json");
    ASSERT_TRUE(fs::exists(result)) << result;
    std::ifstream in(result);
    const auto r = nlohmann::json::parse(in);
    EXPECT_EQ(r["method"], std::string(v) == "base" || std::string(v) == "sdm" ? "full"
                           : std::string(v) == "challenge"                    ? "lora"
                                                                               : "sgh")
        << v;
  }
  // The profile timed every deployed model side by side, M_base's first.
  std::ifstream pin(tmp.file("run/stages/profile/profile.json"));
  const auto profile = nlohmann::json::parse(pin);
  EXPECT_EQ(profile["models"].size(), 4u);
  EXPECT_NE(first.err.find("[stage 15/15] report"), std::string::npos) << first.err;
  // The report has a row for every variant and the latency of every deployed model.
  std::ifstream rin(tmp.file("run/stages/report/report.md"));
  const std::string report((std::istreambuf_iterator<char>(rin)), {});
  for (const char* v : {"M_base", "M_SDM", "M_SGH", "M_full", "M_challenge"})
    EXPECT_NE(report.find(std::string("| spam | ") + v + " | 1 |"), std::string::npos) << v << "\n" << report;
  for (const char* m : {"| pretrain/dense |", "| prune/sdm |", "| prune/csp-sdm |", "| prune/challenge |"})
    EXPECT_NE(report.find(m), std::string::npos) << m << "\n" << report;
  // The deployed models again at mamba-tiny's shapes (E 128): the dense ones full width, the
  // pruned one at its kept fraction (to the 16-channel rounding: 16/128 of E).
  {
    std::ifstream ain(tmp.file("run/stages/profile/mamba-tiny/profile.json"));
    const auto at = nlohmann::json::parse(ain);
    ASSERT_EQ(at["models"].size(), profile["models"].size());
    auto mean_fraction = [](const nlohmann::json& m, double e) {
      double f = 0;
      for (const auto& w : m["widths"]) f += w.get<double>() / e / double(m["widths"].size());
      return f;
    };
    const double source_e = profile["models"][0]["widths"][0].get<double>();  // M_base: dense
    for (size_t m = 0; m < at["models"].size(); ++m)
      EXPECT_NEAR(mean_fraction(at["models"][m], 128), mean_fraction(profile["models"][m], source_e), 16.0 / 128)
          << m;
    EXPECT_NE(report.find("### The same models at mamba-tiny shapes"), std::string::npos) << report;
  }
  // Both pre-trained models were scored on the outside validation corpus too.
  const size_t outside = report.find("Outside validation corpus");
  ASSERT_NE(outside, std::string::npos) << report;
  EXPECT_NE(report.find("| pretrain/dense |", outside), std::string::npos) << report;
  EXPECT_NE(report.find("| pretrain/sdm |", outside), std::string::npos) << report;
  check_report(tmp, report, profile);
  // M_SDM is pruned channel by channel (prune.granularity 1); M_full in blocks of 16 after CSP, and
  // the same blocks without CSP are measured beside it: the report's totals are the files' sums.
  auto plan_of = [&](const std::string& stage) {
    std::ifstream in(tmp.file("run/stages/" + stage + "/model/importance.json"));
    return nlohmann::json::parse(in);
  };
  EXPECT_EQ(plan_of("prune/sdm")["plan"]["granularity"], 1);
  const auto blocks = plan_of("prune/sdm-blocks"), csp_blocks = plan_of("prune/csp-sdm");
  EXPECT_EQ(blocks["plan"]["granularity"], 16);
  EXPECT_EQ(csp_blocks["plan"]["granularity"], 16);
  const size_t section = report.find("## CSP and block pruning");
  ASSERT_NE(section, std::string::npos) << report;
  const std::string all_row = "| all | " + std::to_string(blocks["totals"]["width"].get<int64_t>()) + " | " +
                              std::to_string(blocks["totals"]["kept_count"].get<int64_t>()) + " (";
  EXPECT_NE(report.find(all_row, section), std::string::npos) << all_row << "\n" << report;
  EXPECT_NE(report.find(") | " + std::to_string(blocks["totals"]["kept_width"].get<int64_t>()) + " (", section),
            std::string::npos) << report;
  EXPECT_NE(report.find(") | " + std::to_string(csp_blocks["totals"]["kept_width"].get<int64_t>()) + " (", section),
            std::string::npos) << report;

  const auto second = test::run_cli("run " + tmp.file("e.yaml"), "", 2);
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(nlohmann::json::parse(second.last_line())["executed"], 0);

  std::ofstream(tmp.file("e.yaml")) << experiment(tmp, 5);
  const auto third = test::run_cli("run " + tmp.file("e.yaml"), "", 2);
  ASSERT_EQ(third.status, 0) << third.err;
  // csp/sdm, prune/csp-sdm, profile, finetune/full, report.
  EXPECT_EQ(nlohmann::json::parse(third.last_line())["executed"], 5) << third.err;
}

// Killed mid-fine-tune, `run` resumes the started stage from its checkpoint and ends with the very
// numbers of an uninterrupted run. The experiment is M_base alone; after a whole run, the
// fine-tuning's and the report's folders are removed so the next invocation runs exactly those two
// again on the same pre-trained model. That run (its process group: `run` and its `finetune`
// child) is killed with SIGKILL as soon as the fine-tuning's first epoch checkpoint exists, then
// started again. The loop's resume is bit-identical (FinetuneCli.KilledRunResumesToTheSameResult),
// so scores and validation losses must be equal, not close.
TEST(RunCommand, KilledMidFineTuneResumesToTheSameResults) {
  test::TempDir tmp;
  write_corpus(tmp);
  // 256 examples in batches of 16: 16 steps an epoch, 4 epochs, so three epochs remain after the
  // first checkpoint for the kill to land in.
  write_spam_task(tmp.file("train.jsonl"), 256, 1);
  write_spam_task(tmp.file("dev.jsonl"), 32, 2);
  std::string yaml = experiment(tmp, 4);
  yaml = yaml.substr(0, yaml.find("variants:")) + "variants: [M_base]\n";
  const std::string from = "finetune: {epochs: 1,";
  yaml.replace(yaml.find(from), from.size(), "finetune: {epochs: 4,");
  std::ofstream(tmp.file("e.yaml")) << yaml;

  const auto whole = test::run_cli("run " + tmp.file("e.yaml"), "", 2);
  if (whole.status != 0 && whole.err.find("gpt2") != std::string::npos) GTEST_SKIP() << "GPT-2 assets absent";
  ASSERT_EQ(whole.status, 0) << whole.err;
  const std::string stage = tmp.file("run/stages/finetune/base/spam/seed1");
  auto read = [](const std::string& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
  };
  const auto expected = read(stage + "/result.json");
  const auto expected_results = read(tmp.file("run/stages/report/results.json"));
  fs::remove_tree(stage);
  fs::remove_tree(tmp.file("run/stages/report"));

  // Everything the child needs is prepared before fork: it only calls async-signal-safe functions.
  const std::string out = tmp.file("killed.log"), cli = test::cli_path(), yaml_path = tmp.file("e.yaml");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group, so one kill reaches the fine-tuning child too
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(cli.c_str(), cli.c_str(), "--threads", "2", "run", yaml_path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here: no race with the child's own call
  const auto start = std::chrono::steady_clock::now();
  while (!fs::exists(stage + "/checkpoints/latest") && std::chrono::steady_clock::now() - start < std::chrono::minutes(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(-pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(fs::exists(stage + "/checkpoints/latest")) << "no checkpoint within 5 minutes";
  ASSERT_FALSE(fs::exists(stage + "/result.json")) << "the fine-tuning finished before the kill; nothing to resume";
  EXPECT_EQ(read(stage + "/stage.json")["status"], "running");

  const auto resumed = test::run_cli("run " + tmp.file("e.yaml"), "", 2);
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(nlohmann::json::parse(resumed.last_line())["executed"], 2) << resumed.err;  // the fine-tuning, the report
  std::ifstream lin(stage + "/log.txt");
  const std::string log((std::istreambuf_iterator<char>(lin)), {});
  EXPECT_NE(log.find("resumed from"), std::string::npos) << log;
  const auto got = read(stage + "/result.json");
  EXPECT_EQ(got["score"], expected["score"]);
  ASSERT_EQ(got["history"].size(), 4u);
  ASSERT_EQ(expected["history"].size(), 4u);
  for (size_t e = 0; e < 4; ++e) EXPECT_EQ(got["history"][e]["val_loss"], expected["history"][e]["val_loss"]) << e;
  const auto results = read(tmp.file("run/stages/report/results.json"));
  EXPECT_EQ(results["variants"]["M_base"]["average_score_by_seed"], expected_results["variants"]["M_base"]["average_score_by_seed"]);
}

// With --threads 0 ("every core") and --jobs N each stage's command gets cores / N threads (at least 1), not
// every core each; an explicit --threads goes to every stage as given. The corpus is missing, so both
// pre-trainings fail at once; their log.txt still begins with the command they ran.
TEST(RunCommand, StagesShareTheCoresWhenThreadsIsEveryCore) {
  test::TempDir tmp;
  write_spam_task(tmp.file("train.jsonl"), 16, 1);
  write_spam_task(tmp.file("dev.jsonl"), 8, 2);
  std::ofstream(tmp.file("e.yaml")) << experiment(tmp, 4);
  const auto threads_of_stage = [&](int threads, int jobs) {
    fs::remove_tree(tmp.file("run"));
    const auto run = test::run_cli("run --jobs " + std::to_string(jobs) + " " + tmp.file("e.yaml"), "", threads);
    EXPECT_NE(run.status, 0);  // the corpus is missing
    const std::string log = slurp(tmp.file("run/stages/pretrain/dense/log.txt"));
    const auto at = log.find(" --threads ");
    EXPECT_NE(at, std::string::npos) << log;
    EXPECT_NE(log.find(" --blas-threads -1 "), std::string::npos) << log;  // the BLAS pool follows --threads
    return at == std::string::npos ? -1 : std::stoi(log.substr(at + 11));
  };
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(threads_of_stage(0, 2), std::max(1, cores / 2));
  EXPECT_EQ(threads_of_stage(0, 1), 0);  // one stage at a time: every core, as asked
  EXPECT_EQ(threads_of_stage(3, 2), 3);
}

// vocab.restrict: the `vocab` stage's map sizes both pre-trained models, travels into every model
// folder derived from them (CSP, pruning, fine-tuning), and is what finetune, generate and score
// tokenize with; the same model without its map is refused.
TEST(RunCommand, ARestrictedVocabularyTravelsWithEveryModel) {
  test::TempDir tmp;
  write_corpus(tmp);
  write_spam_task(tmp.file("train.jsonl"), 48, 1);
  write_spam_task(tmp.file("dev.jsonl"), 16, 2);
  std::string e = experiment(tmp, 4);
  e.replace(e.find("variants: [M_base, M_SDM, M_SGH, M_full, M_challenge]"), std::string::npos,
            "variants: [M_base, M_full]\nvocab: {restrict: true}\n");
  std::ofstream(tmp.file("e.yaml")) << e;
  const auto run = test::run_cli("run " + tmp.file("e.yaml"), "", 2);
  if (run.status != 0 && run.err.find("gpt2") != std::string::npos) GTEST_SKIP() << "GPT-2 assets absent";
  ASSERT_EQ(run.status, 0) << run.err;
  // vocab, pretrain x2, csp/sdm, prune/csp-sdm, prune/sdm-blocks, profile, 2 fine-tunings, report.
  EXPECT_EQ(nlohmann::json::parse(run.last_line())["executed"], 10);

  const std::string stages = tmp.file("run/stages/");
  const data::VocabMap map = data::VocabMap::load(stages + "vocab/vocab_map.json");
  // The corpus's 10 words and the task's 11 (some with a leading space, as GPT-2 splits them), plus
  // punctuation, newlines and <|endoftext|>: a few dozen ids, far fewer than GPT-2's 50,257.
  EXPECT_LT(map.size(), 100);
  for (const char* model : {"pretrain/dense/run/final", "pretrain/sdm/run/final", "csp/sdm/model",
                            "prune/csp-sdm/model", "finetune/base/spam/seed1/model"}) {
    SCOPED_TRACE(model);
    const std::string dir = stages + model;
    ASSERT_TRUE(fs::exists(fs::join(dir, "vocab_map.json")));
    EXPECT_EQ(data::VocabMap::load(fs::join(dir, "vocab_map.json")).fingerprint(), map.fingerprint());
    const nlohmann::json config = nlohmann::json::parse(slurp(fs::join(dir, "config.json")));
    EXPECT_EQ(config["vocab_size"], (map.size() + 7) / 8 * 8);
    EXPECT_EQ(config["eos_token_id"], map.eot_id());
  }
  EXPECT_NE(slurp(stages + "pretrain/dense/log.txt").find("vocabulary restricted to " + std::to_string(map.size())),
            std::string::npos);

  // generate decodes through the inverse map: the prompt's text comes back.
  const std::string model = stages + "pretrain/dense/run/final";
  const auto gen = test::run_cli("generate --model " + model + " --prompt 'the small model' --max-new-tokens 4 "
                                 "--greedy --ignore-eos --device cpu");
  ASSERT_EQ(gen.status, 0) << gen.err;
  EXPECT_EQ(gen.out.rfind("the small model", 0), 0u) << gen.out;
  // score --corpus tokenizes through it too (ids checked against the model's vocabulary).
  const auto score = test::run_cli("score --model " + model + " --corpus " + tmp.file("corpus0.txt") +
                                   " --format text --seq-len 16 --device cpu");
  ASSERT_EQ(score.status, 0) << score.err;

  // Without its map the restricted model is refused, naming the missing file.
  const std::string bare = tmp.file("bare");
  fs::make_dirs(bare);
  for (const char* f : {"config.json", "model.safetensors"}) {
    std::ofstream(fs::join(bare, f), std::ios::binary) << slurp(fs::join(model, f));
  }
  const auto refused = test::run_cli("finetune --model " + bare + " --task custom --train " + tmp.file("train.jsonl") +
                                     " --dev " + tmp.file("dev.jsonl") + " --method full --epochs 1 --device cpu "
                                     "--precision fp32 --out " + tmp.file("ft"));
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.err.find("vocab_map.json"), std::string::npos) << refused.err;
  const auto refused_gen = test::run_cli("generate --model " + bare + " --prompt 'the' --max-new-tokens 1 --device cpu");
  EXPECT_NE(refused_gen.status, 0);
  EXPECT_NE(refused_gen.err.find("vocab_map.json"), std::string::npos) << refused_gen.err;
}

// model.init_from: both pre-trainings continue from a model folder (e.g. state-spaces/mamba-130m-hf) with its own
// tokenizer.json — here the data tests' byte-level BPE, whose ids GPT-2's cannot be mistaken for. The corpus is
// tokenized with it, the SDM pre-training adds gates to the gate-less model, and every model folder of the run
// carries the file, so CSP calibration and fine-tuning tokenize with it too.
TEST(RunCommand, InitFromContinuesAModelWithItsOwnTokenizer) {
  test::TempDir tmp;
  write_corpus(tmp);
  write_spam_task(tmp.file("train.jsonl"), 48, 1);
  write_spam_task(tmp.file("dev.jsonl"), 16, 2);
  std::ofstream(tmp.file("model.yaml")) << "d_model: 32\nn_layer: 2\nvocab_size: 264\nd_state: 4\nexpand: 2\n"
                                           "eos_token_id: 256\nbos_token_id: 256\npad_token_id: 256\n";
  const std::string base = tmp.file("base");
  ASSERT_EQ(test::run_cli("init --config " + tmp.file("model.yaml") + " --seed 2 --out " + base).status, 0);
  const uint64_t fingerprint = data::test::byte_tokenizer(tmp.path, /*with_merge=*/true).fingerprint();
  const std::string tokenizer = slurp(tmp.file("tok_merge.json"));
  std::ofstream(fs::join(base, "tokenizer.json")) << tokenizer;
  std::string e = experiment(tmp, 4);
  e.replace(e.find("model: {preset: mamba-small-gpt2}"), std::string("model: {preset: mamba-small-gpt2}").size(),
            "model: {init_from: " + base + "}");
  e.replace(e.find("max_length: 32"), std::string("max_length: 32").size(), "max_length: 96");
  e.replace(e.find("variants: [M_base, M_SDM, M_SGH, M_full, M_challenge]"), std::string::npos,
            "variants: [M_base, M_full]\n");
  std::ofstream(tmp.file("e.yaml")) << e;
  const auto run = test::run_cli("run " + tmp.file("e.yaml"), "", 2);
  ASSERT_EQ(run.status, 0) << run.err;
  // pretrain x2, csp/sdm, prune/csp-sdm, prune/sdm-blocks, profile, 2 fine-tunings, report.
  EXPECT_EQ(nlohmann::json::parse(run.last_line())["executed"], 9);

  const std::string stages = tmp.file("run/stages/");
  for (const char* stage : {"pretrain/dense", "pretrain/sdm"}) {
    SCOPED_TRACE(stage);
    EXPECT_NE(slurp(stages + stage + "/train.yaml").find("init_from: \"" + base + "\""), std::string::npos);
    const auto meta = nlohmann::json::parse(slurp(stages + stage + "/tokens/meta.json"));
    EXPECT_EQ(meta["inputs"]["tokenizer"]["fingerprint"], data::hex64(fingerprint));
  }
  for (const char* model : {"pretrain/dense/run/final", "pretrain/sdm/run/final", "csp/sdm/model",
                            "prune/csp-sdm/model", "finetune/base/spam/seed1/model"}) {
    SCOPED_TRACE(model);
    EXPECT_EQ(slurp(stages + model + "/tokenizer.json"), tokenizer);
  }
  // The SDM pre-training's model has gates; the folder it started from has none.
  const auto sdm_config = nlohmann::json::parse(slurp(stages + "pretrain/sdm/run/final/config.json"));
  EXPECT_EQ(sdm_config["sdm_gate_type"], "hard_concrete");
  EXPECT_FALSE(nlohmann::json::parse(slurp(fs::join(base, "config.json"))).contains("sdm_gate_type"));
}

}  // namespace
}  // namespace mcd
