// The `summarize` subcommand: fine-tuning results (result.json of `finetune`) grouped by task and
// method over seeds — mean, sd and the 95 % t-interval of the task score and of each metric, the
// majority-class baseline and whether the interval lies above it (METHOD.md §5) — as a Markdown
// table on stdout and, with --out, JSON.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

#include "cli/commands.h"
#include "eval/statistics.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json_file.h"

namespace mcd::cli {
namespace {

// The majority-class predictor's score in the task's metric. result.json files written since the
// baseline is scored by the task's metric carry it as "score"; older ones hold only the accuracy
// per split and the label, from which the score follows exactly: a constant prediction has MCC 0
// (CoLA), and on MRPC/QQP F1 = 2p/(1+p) with precision p = accuracy when the constant label is the
// positive class (label 1; its name in label_names) (else F1 = 0), the score being the mean of F1 and accuracy.
std::optional<double> majority_score(const std::string& task, const nlohmann::json& m, const std::string& positive) {
  if (!m.is_object()) return std::nullopt;
  if (m.contains("score")) return m.at("score").get<double>();
  std::optional<double> accuracy;
  for (const auto& [k, v] : m.items())
    if (v.is_number()) {
      accuracy = v.get<double>();  // the first dev split's (MNLI: matched)
      break;
    }
  if (!accuracy) return std::nullopt;
  if (task == "cola") return 0.0;
  if (task == "mrpc" || task == "qqp") {
    const double p = *accuracy / 100, f1 = m.value("label", std::string()) == positive ? 2 * p / (1 + p) : 0.0;
    return (100 * f1 + *accuracy) / 2;
  }
  return accuracy;
}


// result.json files: the arguments themselves, or every <dir>/**/result.json one level or two down.
void collect(const std::string& path, std::vector<std::string>& out, int depth = 0) {
  if (fs::is_regular_file(path)) {
    out.push_back(path);
    return;
  }
  MCD_CHECK(fs::is_directory(path), path, ": neither a result.json nor a folder");
  const std::string direct = fs::join(path, "result.json");
  if (fs::is_regular_file(direct)) {
    out.push_back(direct);
    return;
  }
  if (depth >= 3) return;
  for (const auto& name : fs::list_dir(path))
    if (fs::is_directory(fs::join(path, name))) collect(fs::join(path, name), out, depth + 1);
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2f", v);
  return b;
}

}  // namespace

Command add_summarize(CLI::App& app) {
  auto* sub = app.add_subcommand("summarize",
                                 "fine-tuning results over seeds: mean, sd, 95% t-interval per task and method");
  struct Args {
    std::vector<std::string> inputs;
    std::string out;
    double level = 0.95;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("inputs", a->inputs, "result.json files or folders holding them")->required();
  sub->add_option("--out", a->out, "also write the summary as JSON here");
  sub->add_option("--level", a->level, "two-sided interval coverage")->check(CLI::Range(0.5, 0.999))->capture_default_str();
  return {sub, [a] {
            std::vector<std::string> files;
            for (const auto& in : a->inputs) collect(in, files);
            MCD_CHECK(!files.empty(), "no result.json found under ", a->inputs.front());
            struct Group {
              std::vector<double> scores, wall;
              std::map<std::string, std::vector<double>> metrics;
              std::vector<int64_t> seeds;
              nlohmann::json majority, parameters;
              std::string positive_label = "1";  // the name of label 1 (F1's positive class)
            };
            std::map<std::pair<std::string, std::string>, Group> groups;
            for (const auto& f : files) {
              const nlohmann::json r = read_json_file(f);
              MCD_CHECK(r.value("format", "") == "mcd-finetune-result", f, ": not a finetune result.json");
              Group& g = groups[{r.at("task").get<std::string>(), r.at("method").get<std::string>()}];
              const int64_t seed = r.at("seed").get<int64_t>();
              MCD_CHECK(std::find(g.seeds.begin(), g.seeds.end(), seed) == g.seeds.end(), f, ": seed ", seed,
                        " of ", r["task"], "/", r["method"], " appears twice");
              g.seeds.push_back(seed);
              g.scores.push_back(r.at("score").get<double>());
              g.wall.push_back(r.value("wall_seconds", 0.0));
              for (const auto& [k, v] : r.at("best").items())
                if (k != "epoch" && k != "step" && k != "val_loss" && k != "eval_seconds" && k != "score" && v.is_number())
                  g.metrics[k].push_back(v.get<double>());
              g.majority = r.value("majority_baseline", nlohmann::json(nullptr));
              g.parameters = r.value("parameters", nlohmann::json::object());
              if (r.contains("label_names") && r["label_names"].size() > 1) g.positive_label = r["label_names"][1].get<std::string>();
            }
            nlohmann::json out = nlohmann::json::array();
            std::cout << "| task | method | n | score mean | " << int(a->level * 100)
                      << "% t-interval | sd | majority | above majority | trainable (no head) | wall s/run |\n"
                      << "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
            for (const auto& [key, g] : groups) {
              nlohmann::json row = {{"task", key.first}, {"method", key.second}, {"n", g.scores.size()},
                                    {"seeds", g.seeds}, {"scores", g.scores}};
              std::string interval = "n/a (1 seed)", sd = "n/a";
              double lower = g.scores.front();
              if (g.scores.size() >= 2) {
                const eval::TInterval t = eval::t_interval(g.scores, a->level);
                row["interval"] = {{"level", a->level}, {"lower", t.lower}, {"upper", t.upper}, {"sd", t.sd}};
                interval = "[" + fmt(t.lower) + ", " + fmt(t.upper) + "]";
                sd = fmt(t.sd);
                lower = t.lower;
              }
              row["mean"] = eval::mean(g.scores);
              for (const auto& [m, v] : g.metrics) row["metrics"][m] = {{"mean", eval::mean(v)}, {"values", v}};
              std::string majority = "-", above = "-";
              if (const std::optional<double> m = majority_score(key.first, g.majority, g.positive_label)) {
                majority = fmt(*m);
                row["majority"] = *m;
                row["interval_above_majority"] = lower > *m;
                above = lower > *m ? "yes" : "NO";
              }
              row["parameters"] = g.parameters;
              row["mean_wall_seconds"] = eval::mean(g.wall);
              std::cout << "| " << key.first << " | " << key.second << " | " << g.scores.size() << " | "
                        << fmt(eval::mean(g.scores)) << " | " << interval << " | " << sd << " | " << majority << " | "
                        << above << " | " << g.parameters.value("trainable_without_head", int64_t(0)) << " | "
                        << fmt(eval::mean(g.wall)) << " |\n";
              out.push_back(row);
            }
            if (!a->out.empty()) write_text_atomic(a->out, out.dump(2) + "\n");
          }};
}

}  // namespace mcd::cli
