// The report of `mamba-codesign run` (see run_report.h). What it measures and the conventions
// (deployed FLOPs, peak memory, the average score, the verdict rules) are in docs/pipeline.md,
// "The report"; the verdicts themselves in pipeline/hypotheses.h.
#include "cli/run_report.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/model_config.h"
#include "eval/statistics.h"
#include "pipeline/hypotheses.h"
#include "pipeline/stage_graph.h"
#include "sdm/flops.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json_file.h"

// Everything lives in its own namespace: the CLI's sources are compiled in unity batches, where
// other files' helpers of the same names (str, fmt) would collide.
namespace mcd::cli::run_report_detail {
namespace {

std::string fmt(double v, const char* format = "%.2f") {
  if (!std::isfinite(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}
std::string str(const nlohmann::json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }
nlohmann::json num_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// Peak inference memory of one profiled sample (its `memory_bytes`): weights + recurrent state +
// the activations and workspace the CUDA allocator measured; NaN where it measured none (a CPU).
double sample_peak_bytes(const nlohmann::json& mem) {
  if (!mem.at("activations_and_workspace").is_number()) return NAN;
  return mem.at("weights").get<double>() + mem.at("states").get<double>() +
         mem["activations_and_workspace"].get<double>();
}
// The larger of two peaks, NaN standing for "none measured".
double max_peak(double a, double b) { return std::isfinite(a) && (!std::isfinite(b) || a >= b) ? a : b; }

// A deployed model: its config's widths and analytic FLOPs (sdm::count_flops, per token).
struct ModelFacts {
  std::string stage, path;
  int64_t d_model = 0, parameters = 0;
  int64_t backbone_flops = 0;  // per token: blocks + final norm (forward_total − LM head)
  int64_t lm_head_flops = 0;   // per token: 2·D·V
  std::vector<int64_t> widths;
  // From the profile: per case label, the per-iteration timings (ms) and their summary.
  std::map<std::string, std::vector<double>> samples;
  std::vector<double> prefill_1024, decode_b1;  // the cases METHOD's hypotheses name
  double decode_b1_per_token_p50 = NAN;
  double peak_memory = NAN;     // bytes: max over inference cases of weights + states + activations
  double weights_and_states = 0;  // bytes, analytic (every device)
};

// The classifier's forward FLOPs for one sequence of L tokens (METHOD §5: backbone plus its
// classification head, no LM head): L·backbone per token, then on the one pooled vector
// 2·D·C for the head's matmul and C for its bias. Last-token pooling costs nothing; mean pooling
// adds D·L additions and D divisions.
double classifier_flops(const ModelFacts& m, int64_t length, int64_t num_labels, bool mean_pooling) {
  return double(length) * double(m.backbone_flops) + double(2 * m.d_model * num_labels + num_labels) +
         (mean_pooling ? double(m.d_model * length + m.d_model) : 0.0);
}

struct VariantRow {
  pipeline::Variant v;
  std::string name, method, model_path;
  int model = -1;  // index into the deployed models
  std::map<std::string, std::map<int64_t, double>> scores;  // task label → seed → score (points)
  std::map<std::string, double> majority;                   // task label → majority-class score
  std::map<int64_t, double> average;                        // seed → mean over every task
  int64_t trainable = -1, trainable_with_head = -1;
  int64_t num_labels = 0, max_length = 0;
  bool mean_pooling = false;
  double flops = NAN;  // classifier_flops at the fine-tuning's max_length and the largest num_labels
};

// Text of a command's standard output ("" when it cannot run).
std::string capture(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[256];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      std::string v = line.substr(line.find(':') + 1);
      return v.substr(v.find_first_not_of(' '));
    }
  return "unknown";
}

// The setup line's note of the CPU pools the profile ran on ("; its CPU threads: LibTorch 1, BLAS 1 thread(s)";
// BLAS "none of its own" where it has no pool, e.g. MKL); empty for a profile written before it recorded them.
std::string cpu_threads_note(const nlohmann::json& prof) {
  if (!prof.contains("cpu_threads")) return "";
  const nlohmann::json& t = prof["cpu_threads"];
  return "; its CPU threads: LibTorch " + t.value("torch", nlohmann::json("?")).dump() + ", BLAS " +
         (t.value("blas", nlohmann::json()).is_null() ? std::string("none of its own") : t["blas"].dump()) +
         " thread(s)";
}

// This process's command line, as typed (arguments with spaces quoted).
std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), {}), out;
  std::string word;
  for (char ch : all) {
    if (ch != '\0') {
      word += ch;
      continue;
    }
    out += (out.empty() ? "" : " ") + (word.find(' ') == std::string::npos ? word : "'" + word + "'");
    word.clear();
  }
  return out.empty() ? "unknown" : out;
}

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");  // where an executable is looked up, as execvp would
  std::string p = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= p.size();) {
    const size_t end = std::min(p.find(':', start), p.size());
    const std::string dir = p.substr(start, end - start);
    if (!dir.empty() && ::access(fs::join(dir, name).c_str(), X_OK) == 0) return fs::join(dir, name);
    start = end + 1;
  }
  return "";
}

// Runs `gnuplot script` in dir with its output in log; "" on success, else why not. The log is
// opened and the script named before the chdir, so relative paths (a relative run directory) hold.
std::string run_gnuplot(const std::string& gnuplot, const std::string& dir, const std::string& script,
                        const std::string& log) {
  const std::string script_name = script.substr(script.find_last_of('/') + 1);  // npos + 1 = 0
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execl(gnuplot.c_str(), gnuplot.c_str(), script_name.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return "gnuplot " + script + " failed (see " + log + ")";
}

std::string gp_quote(const std::string& s) {  // a gnuplot string in double quotes
  std::string out = "\"";
  for (char ch : s) out += ch == '"' || ch == '\\' ? std::string("\\") + ch : std::string(1, ch);
  return out + "\"";
}

struct Plot {
  std::string file, caption;
};

// Data files and gnuplot scripts under dir; each PNG is drawn by its own gnuplot run so one bad
// plot does not cost the others. Returns the plots drawn; `skipped` says why any were not.
std::vector<Plot> draw_plots(const std::string& dir, const std::vector<VariantRow>& rows,
                             const std::vector<ModelFacts>& models, const std::vector<std::string>& tasks,
                             const std::map<std::string, std::string>& pretrain_metrics, std::string& skipped) {
  fs::make_dirs(dir);
  const std::string gnuplot = find_on_path("gnuplot");
  std::vector<std::pair<Plot, std::string>> scripts;  // plot, script text
  const std::string head = "set terminal pngcairo size 960,600 noenhanced\nset grid\nset key outside right\n";
  auto t_or_point = [](const std::vector<double>& v) {
    if (v.size() < 2) return std::make_tuple(v.empty() ? NAN : v[0], v.empty() ? NAN : v[0], v.empty() ? NAN : v[0]);
    const eval::TInterval t = eval::t_interval(v);
    return std::make_tuple(t.mean, t.lower, t.upper);
  };
  auto values = [](const std::map<int64_t, double>& m) {
    std::vector<double> v;
    for (const auto& [s, x] : m) v.push_back(x);
    return v;
  };

  {  // Accuracy–latency: average score against batch-1 decode latency, the Pareto front joined.
    std::ofstream d(fs::join(dir, "pareto.dat"));
    std::vector<std::pair<double, double>> points;
    for (const auto& r : rows) {
      if (r.model < 0 || r.average.empty() || !std::isfinite(models[size_t(r.model)].decode_b1_per_token_p50)) continue;
      const auto [m, lo, hi] = t_or_point(values(r.average));
      const double lat = models[size_t(r.model)].decode_b1_per_token_p50;
      d << lat << " " << m << " " << lo << " " << hi << " " << gp_quote(r.name) << "\n";
      points.push_back({lat, m});
    }
    std::sort(points.begin(), points.end(),
              [](const auto& a, const auto& b) { return a.first < b.first || (a.first == b.first && a.second > b.second); });
    std::ofstream f(fs::join(dir, "pareto_front.dat"));
    double best = -INFINITY;
    for (const auto& [lat, m] : points)
      if (m > best) {
        f << lat << " " << m << "\n";
        best = m;
      }
    if (!points.empty())
      scripts.push_back(
          {{"pareto.png",
            "Average task score (mean over seeds, 95 % t-interval as bars when n ≥ 2) against batch-1 decode latency "
            "(P50 ms per token, from the profile) per variant; the line joins the Pareto front (no variant faster "
            "and better)."},
           head + "set output 'pareto.png'\nset title 'average score vs batch-1 decode latency'\n"
                  "set offsets graph 0.05, graph 0.2, graph 0.1, graph 0.1\n"
                  "set xlabel 'decode latency, P50 ms/token'\nset ylabel 'average task score (points)'\n"
                  "plot 'pareto.dat' using 1:2:3:4 with yerrorbars pt 7 title 'variant', "
                  "'pareto.dat' using 1:2:5 with labels offset 1,1 left notitle, "
                  "'pareto_front.dat' using 1:2 with lines lw 2 title 'Pareto front'\n"});
  }
  {  // Per task: mean and 95 % interval per variant, one series per task (and the average).
    std::ofstream d(fs::join(dir, "scores.dat"));
    std::string xtics, plot;
    for (size_t i = 0; i < rows.size(); ++i)
      xtics += (i ? ", " : "") + gp_quote(rows[i].name) + " " + std::to_string(i);
    std::vector<std::string> series = tasks;
    series.push_back("average");
    const double step = 0.6 / double(series.size());
    for (size_t t = 0; t < series.size(); ++t) {
      for (size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        std::vector<double> v;
        if (t + 1 == series.size()) v = values(r.average);
        else if (r.scores.count(series[t])) v = values(r.scores.at(series[t]));
        if (v.empty()) continue;
        const auto [m, lo, hi] = t_or_point(v);
        d << double(i) - 0.3 + step * (double(t) + 0.5) << " " << m << " " << lo << " " << hi << "\n";
      }
      d << "\n\n";
      plot += std::string(t ? ", " : "") + "'scores.dat' index " + std::to_string(t) +
              " using 1:2:3:4 with yerrorbars pt 7 title " + gp_quote(series[t]);
    }
    scripts.push_back({{"scores.png",
                        "Score per task and variant: mean over seeds with its 95 % t-interval (bars; a point alone "
                        "when there is one seed); the last series is the average over tasks, per seed."},
                       head + "set output 'scores.png'\nset title 'scores per task and variant'\n"
                              "set ylabel 'score (points)'\nset xtics rotate by -30 (" +
                           xtics + ")\nset xrange [-0.5:" + std::to_string(double(rows.size()) - 0.5) + "]\nplot " +
                           plot + "\n"});
  }
  {  // Kept inner width per layer of every deployed model (from its config).
    std::ofstream d(fs::join(dir, "widths.dat"));
    std::string plot;
    for (size_t m = 0; m < models.size(); ++m) {
      for (size_t l = 0; l < models[m].widths.size(); ++l) d << l << " " << models[m].widths[l] << "\n";
      d << "\n\n";
      plot += std::string(m ? ", " : "") + "'widths.dat' index " + std::to_string(m) +
              " using 1:2 with linespoints lw 2 title " + gp_quote(models[m].stage);
    }
    if (!models.empty())
      scripts.push_back({{"widths.png",
                          "Inner width d_inner kept per layer in each deployed model (its config.json): the pruned "
                          "models' widths against the dense ones."},
                         head + "set output 'widths.png'\nset title 'kept inner width per layer'\n"
                                "set xlabel 'layer'\nset xtics 1\nset ylabel 'd_inner'\nset yrange [0:*]\nplot " + plot + "\n"});
  }
  {  // Pre-training curves from each pretrain stage's metrics.jsonl.
    std::ofstream d(fs::join(dir, "training.dat"));
    std::string plot;
    int index = 0;
    for (const auto& [stage, metrics] : pretrain_metrics) {
      std::ifstream in(metrics);
      std::ostringstream train, val;
      for (std::string line; std::getline(in, line);) {
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const std::exception&) {
          continue;  // a torn last line of an interrupted run
        }
        if (!j.contains("step")) continue;
        if (j.contains("loss") && j["loss"].is_number()) train << j["step"] << " " << j["loss"] << "\n";
        if (j.contains("val_loss") && j["val_loss"].is_number()) val << j["step"] << " " << j["val_loss"] << "\n";
      }
      for (const auto& [block, what, style] :
           {std::make_tuple(train.str(), "train", "linespoints lw 2 pt 1"), std::make_tuple(val.str(), "validation", "points pt 7 ps 1.5")}) {
        if (block.empty()) continue;
        d << block << "\n\n";
        plot += std::string(index ? ", " : "") + "'training.dat' index " + std::to_string(index) + " using 1:2 with " +
                style + " title " + gp_quote(stage + " " + what);
        ++index;
      }
    }
    if (index > 0)
      scripts.push_back({{"training.png",
                          "Pre-training loss (nats per token) per logged step and validation loss per evaluation, "
                          "for each pre-training stage (its metrics.jsonl)."},
                         head + "set output 'training.png'\nset title 'pre-training'\nset xlabel 'step'\n"
                                "set ylabel 'loss (nats/token)'\nplot " + plot + "\n"});
  }

  // The scripts are written in any case, so a machine without gnuplot (the GPU machine) leaves
  // everything another one needs to draw the plots.
  for (const auto& [plot, text] : scripts)
    write_text_atomic(fs::join(dir, plot.file.substr(0, plot.file.size() - 4) + ".gp"), text);
  std::vector<Plot> drawn;
  if (gnuplot.empty()) {
    skipped = "gnuplot was not found on PATH: the plots were not drawn; their data and gnuplot scripts are in " +
              dir + " (`gnuplot NAME.gp` there draws NAME.png)";
    return drawn;
  }
  std::vector<std::string> failures;
  for (const auto& [plot, text] : scripts) {
    const std::string script = fs::join(dir, plot.file.substr(0, plot.file.size() - 4) + ".gp");
    fs::remove_file(fs::join(dir, plot.file));
    // gnuplot resolves the data and output names against its working directory: run it in dir
    // (the script is named relative to dir there).
    const std::string why = run_gnuplot(gnuplot, dir, script, fs::join(dir, "gnuplot.log"));
    if (why.empty() && fs::exists(fs::join(dir, plot.file))) drawn.push_back(plot);
    else failures.push_back(why.empty() ? plot.file + " was not written" : why);
  }
  for (const auto& f : failures) skipped += (skipped.empty() ? "" : "; ") + f;
  return drawn;
}

// The report's pre-training section: the vocabulary (when restricted: its size, and that the ids
// are renumbered) and each pre-trained model's validation loss against the unigram baseline of the
// same tokens, read from the stages' records (the report does not need them directly).
std::string pretraining_section(const pipeline::Experiment& e) {
  std::ostringstream md;
  auto fmt = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", v);
    return std::string(b);
  };
  md << "## Pre-training\n\n";
  const nlohmann::json vocab = pipeline::read_stage_record(e.out_dir, "vocab");
  if (vocab.is_object() && vocab.contains("outputs")) {
    const nlohmann::json v = vocab["outputs"].value("summary", nlohmann::json::object());
    md << "Vocabulary **restricted** (stage `vocab`): the " << v.value("kept_ids", int64_t(0))
       << " GPT-2 ids (`<|endoftext|>` included) seen at least " << v.value("min_count", int64_t(1))
       << " times in the corpus's training documents and the tasks' training data, renumbered, plus one "
          "unknown id: "
       << v.value("size", int64_t(0)) << " ids instead of GPT-2's 50,257 (" << v.value("unk_tokens", int64_t(0))
       << " of the " << v.value("tokens", int64_t(0))
       << " counted tokens became unknown). The models' embedding and LM head are that wide, and the losses "
          "below are over those ids.\n\n";
  } else {
    md << "Vocabulary: GPT-2's, unrestricted.\n\n";
  }
  md << "Held-out split of the training corpus:\n\n"
     << "| model | steps | validation loss (nats/token) | unigram baseline | below it |\n| --- | --- | --- | --- | --- |\n";
  std::ostringstream outside;  // the corpus.validation_paths rows, when the experiment has them
  for (const char* stage : {"pretrain/dense", "pretrain/sdm"}) {
    const nlohmann::json r = pipeline::read_stage_record(e.out_dir, stage);
    if (!r.is_object() || !r.contains("outputs")) continue;
    const nlohmann::json sm = r["outputs"].value("summary", nlohmann::json::object());
    auto row = [&](std::ostream& os, const char* loss_key, const char* unigram_key) {
      if (!sm.contains(loss_key) || !sm.contains(unigram_key)) return;
      const double loss = sm[loss_key].get<double>(), unigram = sm[unigram_key].get<double>();
      os << "| " << stage << " | " << sm.value("steps", int64_t(0)) << " | " << fmt(loss) << " | " << fmt(unigram)
         << " | " << (loss < unigram ? "yes" : "**no**") << " |\n";
    };
    row(md, "val_loss", "unigram_val_loss");
    row(outside, "corpus_val_loss", "unigram_corpus_val_loss");
  }
  if (!outside.str().empty()) {
    md << "\nOutside validation corpus (`corpus.validation_paths`: "
       << e.corpus["validation_paths"].dump() << "; the final model over all of it in windows of "
       << e.pretrain["seq_len"].get<int64_t>() + 1
       << " tokens, the unigram model of the training tokens on the same predicted tokens):\n\n"
       << "| model | steps | validation loss (nats/token) | unigram baseline | below it |\n| --- | --- | --- | --- | --- |\n"
       << outside.str();
  }
  return md.str() + "\n";
}

// The profile stage's timings of the same deployed models at other shapes (profile.at_presets):
// each model's per-layer widths as fractions of E in a random model of the preset. One table per
// preset: P50 per case with the ratio to the first model (M_base's) and its bootstrap interval,
// and the peak inference memory.
std::string at_presets_section(const nlohmann::json& profile_outputs, const nlohmann::json& round_to) {
  if (!profile_outputs.contains("at_presets") || profile_outputs["at_presets"].empty()) return "";
  const nlohmann::json& names = profile_outputs.at("models");
  std::ostringstream md;
  for (const auto& [preset, path_json] : profile_outputs["at_presets"].items()) {
    const nlohmann::json prof = read_json_file(path_json.get<std::string>());
    md << "\n### The same models at " << preset << " shapes\n\n"
       << "Each deployed model's per-layer inner widths carried over to `" << preset
       << "` as fractions of E (rounded to multiples of " << round_to.dump()
       << "), random weights (`init --widths-from`), timed side by side in one process on "
       << prof.value("device_name", std::string("?")) << " (" << prof.value("inference_dtype", std::string("?"))
       << ", P50 of " << prof.value("iters", 0) << "). Ratios are to the first model, with a bootstrap 95 % interval.\n\n";
    const nlohmann::json& models = prof.at("models");
    md << "| deployed model | mean width / E | parameters |";
    for (const auto& cs : prof.at("cases"))
      md << " " << cs.at("label").get<std::string>() << (cs.at("case") == "decode" ? " ms/token |" : " ms |");
    md << " peak inference memory |\n|";
    for (size_t i = 0; i < 4 + prof.at("cases").size(); ++i) md << " --- |";
    md << "\n";
    for (size_t m = 0; m < models.size(); ++m) {
      const auto widths = models[m].at("widths").get<std::vector<int64_t>>();
      double mean = 0;
      for (int64_t w : widths) mean += double(w) / double(widths.size());
      const double full = double(*std::max_element(widths.begin(), widths.end()));
      md << "| " << (m < names.size() ? names[m].get<std::string>() : "model " + std::to_string(m)) << " | "
         << fmt(mean / std::max(1.0, full), "%.3f") << " | " << models[m].at("parameters").get<int64_t>() << " |";
      double peak = NAN;
      for (const auto& cs : prof.at("cases")) {
        const auto& r = cs.at("results").at(m);
        const bool decode = cs.at("case") == "decode";
        md << " " << fmt(decode ? r.at("per_token_ms_p50").get<double>() : r.at("summary_ms").at("p50").get<double>(), "%.3f");
        if (r.contains("ratio_to_model0")) {
          const auto& q = r["ratio_to_model0"];
          md << " (" << fmt(q.at("ratio_of_medians").get<double>(), "%.3f") << " [" << fmt(q.at("lower").get<double>(), "%.3f")
             << ", " << fmt(q.at("upper").get<double>(), "%.3f") << "])";
        }
        md << " |";
        if (cs.at("case") == "prefill" || decode) peak = max_peak(peak, sample_peak_bytes(r.at("memory_bytes")));
      }
      md << " " << (std::isfinite(peak) ? fmt(peak / 1048576.0, "%.1f") + " MiB" : std::string("n/a on CPU")) << " |\n";
    }
  }
  return md.str();
}

// Where CSP's order can matter (METHOD §3): the SDM model's gates pruned in blocks of g channels
// (a block is kept when any of its gates is open, so the pruned model equals the masked one),
// without CSP (prune/sdm-blocks) and after CSP's permutation (prune/csp-sdm), layer by layer from
// the two importance files. Empty when the experiment has no such pair.
std::string csp_blocks_section(const pipeline::StageContext& c) {
  if (!c.inputs.count("prune/sdm-blocks") || !c.inputs.count("prune/csp-sdm")) return "";
  const nlohmann::json without = read_json_file(c.inputs.at("prune/sdm-blocks").at("importance").get<std::string>());
  const nlohmann::json with = read_json_file(c.inputs.at("prune/csp-sdm").at("importance").get<std::string>());
  const auto& lw = without.at("layers");
  const auto& lc = with.at("layers");
  MCD_CHECK(lw.size() == lc.size(), "report: prune/sdm-blocks and prune/csp-sdm have different layer counts");
  std::ostringstream md;
  md << "\n## CSP and block pruning\n\nThe SDM model's gates pruned in blocks of "
     << without.at("plan").at("granularity").dump()
     << " adjacent channels (a block goes only when all its gates are closed, so the pruned model computes what the "
        "masked one does), in the trained channel order (`prune/sdm-blocks`, measured only) and after CSP's "
        "permutation (`prune/csp-sdm`, M_full's model). Open gates: channels with z > 0 at U = 0.5.\n\n"
        "| layer | E | open gates | kept width without CSP | kept width after CSP |\n| --- | --- | --- | --- | --- |\n";
  int64_t total = 0, open = 0, kept_without = 0, kept_with = 0;
  for (size_t l = 0; l < lw.size(); ++l) {
    const int64_t width = lw[l].at("width").get<int64_t>(), k = lw[l].at("kept_count").get<int64_t>();
    const int64_t a = lw[l].at("kept_width").get<int64_t>(), b = lc[l].at("kept_width").get<int64_t>();
    total += width, open += k, kept_without += a, kept_with += b;
    md << "| " << l << " | " << width << " | " << k << " | " << a << " | " << b << " |\n";
  }
  auto pct = [&](int64_t n) { return fmt(100.0 * double(n) / double(std::max<int64_t>(1, total)), "%.1f") + " %"; };
  md << "| all | " << total << " | " << open << " (" << pct(open) << ") | " << kept_without << " (" << pct(kept_without)
     << ") | " << kept_with << " (" << pct(kept_with) << ") |\n";
  return md.str();
}

}  // namespace

nlohmann::json write(const pipeline::Experiment& e, const pipeline::StageContext& c) {
  auto fmt_ci = [](const std::vector<double>& v) -> std::string {
    if (v.empty()) return "-";
    if (v.size() < 2) return fmt(v[0]) + " (n=1)";
    const eval::TInterval t = eval::t_interval(v);
    return fmt(t.mean) + " [" + fmt(t.lower) + ", " + fmt(t.upper) + "] (n=" + std::to_string(t.n) + ")";
  };
  auto values = [](const std::map<int64_t, double>& m) {
    std::vector<double> v;
    for (const auto& [s, x] : m) v.push_back(x);
    return v;
  };

  // ---- The deployed models: configs, FLOPs and the profile's timings and memory ----
  nlohmann::json prof = nlohmann::json::object();
  std::vector<ModelFacts> models;
  if (c.inputs.count("profile")) {
    const std::string path = c.inputs.at("profile").at("profile").get<std::string>();
    prof = read_json_file(path);
    const nlohmann::json& names = c.inputs.at("profile").at("models");
    MCD_CHECK(prof.contains("models") && prof["models"].size() == names.size(), path,
              ": 'models' does not list the profile stage's ", names.size(), " models");
    for (size_t m = 0; m < names.size(); ++m) {
      ModelFacts f;
      f.stage = str(names[m]);
      f.path = prof["models"][m].at("path").get<std::string>();
      const ModelConfig cfg = ModelConfig::from_json_file(fs::join(f.path, "config.json"));
      const sdm::FlopCount fl = sdm::count_flops(cfg);
      f.d_model = cfg.d_model;
      f.parameters = fl.parameters;
      f.backbone_flops = fl.forward_total - fl.head;
      f.lm_head_flops = fl.head;
      for (int64_t l = 0; l < cfg.n_layer; ++l) f.widths.push_back(cfg.inner_width(l));
      models.push_back(f);
    }
    for (const auto& cs : prof.at("cases")) {
      const std::string kind = cs.at("case").get<std::string>();
      const int64_t batch = cs.at("batch").get<int64_t>(), length = cs.at("length").get<int64_t>();
      const bool graph = cs.value("cuda_graph", false);
      for (const auto& r : cs.at("results")) {
        ModelFacts& f = models.at(size_t(r.at("model").get<int64_t>()));
        const auto samples = r.at("samples_ms").get<std::vector<double>>();
        f.samples[cs.at("label").get<std::string>()] = samples;
        if (kind == "prefill" && batch == 1 && length == 1024) f.prefill_1024 = samples;
        // Batch-1 decode: the CUDA-graph case when there is one (how a deployment decodes).
        if (kind == "decode" && batch == 1 && (f.decode_b1.empty() || graph)) {
          f.decode_b1 = samples;
          f.decode_b1_per_token_p50 = r.at("per_token_ms_p50").get<double>();
        }
        if (kind == "prefill" || kind == "decode") {
          const auto& mem = r.at("memory_bytes");
          const double analytic = mem.at("weights").get<double>() + mem.at("states").get<double>();
          f.weights_and_states = std::max(f.weights_and_states, analytic);
          f.peak_memory = max_peak(f.peak_memory, sample_peak_bytes(mem));
        }
      }
    }
  }
  auto model_index = [&](const std::string& path) {
    for (size_t m = 0; m < models.size(); ++m)
      if (models[m].path == path) return int(m);
    return -1;
  };

  // ---- Per variant: scores per task and seed, the average per seed, parameters, FLOPs ----
  std::vector<std::string> task_labels;
  for (const auto& t : e.tasks) task_labels.push_back(t.label);
  std::vector<VariantRow> rows;
  nlohmann::json variants_json = nlohmann::json::object();
  for (const auto v : e.variants) {
    VariantRow row;
    row.v = v;
    row.name = pipeline::variant_name(v);
    nlohmann::json per_task = nlohmann::json::object();
    for (const auto& task : e.tasks)
      for (const auto seed : e.seeds) {
        const std::string stage = std::string("finetune/") + pipeline::variant_slug(v) + "/" + task.label + "/seed" +
                                  std::to_string(seed);
        if (!c.inputs.count(stage)) continue;
        const std::string file = c.inputs.at(stage).at("result").get<std::string>();
        const nlohmann::json r = read_json_file(file);
        MCD_CHECK(r.contains("score") && r["score"].is_number(), file, ": 'score' is missing or not a number");
        row.scores[task.label][seed] = r["score"].get<double>();
        const auto& mb = r.value("majority_baseline", nlohmann::json(nullptr));
        if (mb.is_object() && mb.contains("score")) row.majority[task.label] = mb["score"].get<double>();
        row.method = r.value("method", std::string());
        row.model_path = r.value("model", std::string());
        const auto& p = r.at("parameters");
        // The same adapters or weights for every task; the head alone depends on num_labels, so
        // the largest count is kept (they agree when the tasks have the same number of labels).
        row.trainable = std::max(row.trainable, p.value("trainable_without_head", int64_t(-1)));
        row.trainable_with_head = std::max(row.trainable_with_head, p.value("trainable", int64_t(-1)));
        row.num_labels = std::max(row.num_labels, r.value("num_labels", int64_t(0)));
        row.max_length = std::max(row.max_length, r["settings"].value("max_length", int64_t(0)));
        row.mean_pooling = r["settings"].value("pooling", std::string("last")) == "mean";
        nlohmann::json seed_record = {{"score", r["score"]}, {"result", file}};
        if (r.contains("best")) seed_record["metrics"] = r["best"];
        per_task[task.label][std::to_string(seed)] = seed_record;
      }
    // The average over tasks, per seed, only where the seed has every task (so averages pair).
    for (const auto seed : e.seeds) {
      double sum = 0;
      size_t n = 0;
      for (const auto& t : task_labels)
        if (row.scores.count(t) && row.scores[t].count(seed)) {
          sum += row.scores[t][seed];
          ++n;
        }
      if (n == task_labels.size() && n > 0) row.average[seed] = sum / double(n);
    }
    row.model = model_index(row.model_path);
    if (row.model >= 0 && row.max_length > 0 && row.num_labels > 0)
      row.flops = classifier_flops(models[size_t(row.model)], row.max_length, row.num_labels, row.mean_pooling);
    nlohmann::json vj = {{"method", row.method},
                         {"model", row.model_path},
                         {"model_stage", row.model >= 0 ? models[size_t(row.model)].stage : ""},
                         {"scores", per_task},
                         {"trainable_without_head", row.trainable},
                         {"trainable", row.trainable_with_head},
                         {"classifier_flops_per_sequence", num_or_null(row.flops)},
                         {"flops_sequence_length", row.max_length},
                         {"num_labels", row.num_labels}};
    nlohmann::json avg = nlohmann::json::object();
    for (const auto& [s, x] : row.average) avg[std::to_string(s)] = x;
    vj["average_score_by_seed"] = avg;
    variants_json[row.name] = vj;
    rows.push_back(std::move(row));
  }

  // ---- The hypotheses ----
  pipeline::HypothesisInputs hin;
  for (const auto& r : rows) {
    pipeline::VariantMeasurements m;
    m.model = r.model_path;
    m.average_score = r.average;
    m.flops = r.flops;
    m.trainable = r.trainable;
    if (r.model >= 0) {
      const ModelFacts& f = models[size_t(r.model)];
      m.peak_memory_bytes = f.peak_memory;
      m.prefill_ms = f.prefill_1024;
      m.decode_ms = f.decode_b1;
    }
    hin.variants[r.name] = m;
  }
  const auto hypotheses = pipeline::evaluate_hypotheses(hin);

  // ---- Plots ----
  std::map<std::string, std::string> pretrain_metrics;
  for (const char* stage : {"pretrain/dense", "pretrain/sdm"}) {
    const std::string m = fs::join(fs::join(fs::join(e.out_dir, "stages"), stage), "run/metrics.jsonl");
    if (fs::exists(m)) pretrain_metrics[stage] = m;
  }
  std::string plots_skipped;
  const std::string plot_dir = fs::join(c.dir, "plots");
  const std::vector<Plot> plots = draw_plots(plot_dir, rows, models, task_labels, pretrain_metrics, plots_skipped);

  // ---- Setup ----
  std::string exe_dir = fs::parent_path(fs::executable_path());
  const std::string commit = capture("git -C '" + exe_dir + "' rev-parse HEAD 2>/dev/null");
  const bool dirty =
      !commit.empty() && !capture("git -C '" + exe_dir + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
  const std::string cmdline = command_line();
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  nlohmann::json setup = {
      {"experiment_file", e.file},
      {"out_dir", e.out_dir},
      {"seeds", e.seeds},
      {"settings",
       {{"corpus", e.corpus}, {"model", e.model}, {"pretrain", e.pretrain}, {"sdm", e.sdm}, {"csp", e.csp},
        {"prune", e.prune}, {"peft", e.peft}, {"finetune", e.finetune}, {"profile", e.profile}}},
      {"cpu", cpu_model()},
      {"cores", cores},
      {"profile_device", prof.value("device", std::string())},
      {"profile_device_name", prof.value("device_name", std::string())},
      {"profile_cpu_threads", prof.value("cpu_threads", nlohmann::json())},
      {"torch", prof.value("torch", std::string())},
      {"commit", commit.empty() ? nlohmann::json(nullptr) : nlohmann::json(commit)},
      {"uncommitted_changes", dirty},
      {"command_line", cmdline}};

  // ---- results.json: every raw number ----
  nlohmann::json stages = nlohmann::json::object();
  for (const auto& [k, v] : c.inputs) stages[k] = v;
  nlohmann::json models_json = nlohmann::json::array();
  for (const auto& f : models) {
    nlohmann::json lat = nlohmann::json::object();
    for (const auto& [label, s] : f.samples) lat[label] = s;
    models_json.push_back({{"stage", f.stage},
                           {"path", f.path},
                           {"parameters", f.parameters},
                           {"widths", f.widths},
                           {"backbone_flops_per_token", f.backbone_flops},
                           {"lm_head_flops_per_token", f.lm_head_flops},
                           {"lm_flops_per_token", f.backbone_flops + f.lm_head_flops},
                           {"peak_inference_memory_bytes", num_or_null(f.peak_memory)},
                           {"weights_and_states_bytes", f.weights_and_states},
                           {"latency_samples_ms", lat}});
  }
  nlohmann::json plots_json = nlohmann::json::array();
  for (const auto& p : plots) plots_json.push_back({{"file", fs::join(plot_dir, p.file)}, {"caption", p.caption}});
  const nlohmann::json all = {{"format", "mcd-run-results"},
                              {"version", 2},
                              {"experiment", e.name},
                              {"setup", setup},
                              {"models", models_json},
                              {"variants", variants_json},
                              {"hypotheses", pipeline::hypotheses_json(hypotheses)},
                              {"plots", plots_json},
                              {"plots_skipped", plots_skipped},
                              {"stages", stages}};
  const std::string results = fs::join(c.dir, "results.json");
  write_text_atomic(results, all.dump(1) + "\n");

  // ---- report.md ----
  std::ostringstream md;
  md << "# " << e.name << "\n\n" << (e.description.empty() ? "" : e.description + "\n\n")
     << "Every number below was measured in this run (raw values: `results.json` beside this file, and each "
        "stage's folder under `"
     << e.out_dir << "/stages`).";
  if (e.seeds.size() < 5)
    md << " **A quick demonstration:** " << e.seeds.size()
       << " seed(s); METHOD §5 asks for at least 5 for a reported result.";
  md << "\n\n## Ablation\n\n"
     << "Latency and memory from the one `profile` stage (every deployed model timed in one process; "
     << prof.value("device_name", std::string("?")) << ", " << prof.value("timer", std::string("?")) << ", "
     << prof.value("inference_dtype", std::string("?")) << "); P50 of " << prof.value("iters", 0)
     << " timings. FLOPs are analytic from the deployed model's actual widths: the classifier is the backbone plus its "
        "classification head for one sequence of the fine-tuning's max_length tokens (no LM head); the LM figure "
        "beside it is per token with the LM head. Trainable parameters exclude the classification head. Scores: mean "
        "over seeds [95 % t-interval] (n); the average is per seed over the tasks, then over seeds.\n\n";
  std::vector<std::string> prefill_labels, decode_labels;
  if (prof.contains("cases"))
    for (const auto& cs : prof["cases"])
      if (cs["case"] == "prefill" || cs["case"] == "decode")
        (cs["case"] == "prefill" ? prefill_labels : decode_labels).push_back(cs["label"].get<std::string>());
  md << "| variant | deployed model | method | trainable | classifier FLOPs/seq | LM FLOPs/token |";
  for (const auto& l : prefill_labels) md << " " << l << " P50 ms |";
  for (const auto& l : decode_labels) md << " " << l << " P50 ms/token |";
  md << " peak inference memory |";
  for (const auto& t : task_labels) md << " " << t << " |";
  md << " average |\n|";
  for (size_t i = 0; i < 8 + prefill_labels.size() + decode_labels.size() + task_labels.size(); ++i) md << " --- |";
  md << "\n";
  for (const auto& r : rows) {
    const ModelFacts* f = r.model >= 0 ? &models[size_t(r.model)] : nullptr;
    md << "| " << r.name << " | " << (f ? f->stage : "-") << " | " << (r.method.empty() ? "-" : r.method) << " | "
       << r.trainable << " | " << (std::isfinite(r.flops) ? fmt(r.flops / 1e6, "%.4g") + " M (L=" +
                                                                  std::to_string(r.max_length) + ")"
                                                            : "-")
       << " | " << (f ? fmt(double(f->backbone_flops + f->lm_head_flops) / 1e6, "%.4g") + " M" : "-") << " |";
    for (const auto& l : prefill_labels)
      md << " " << (f && f->samples.count(l) ? fmt(eval::median(f->samples.at(l)), "%.3f") : "-") << " |";
    for (const auto& l : decode_labels) {
      double per_token = NAN;
      if (f && prof.contains("cases"))
        for (const auto& cs : prof["cases"])
          if (cs["label"] == l)
            for (const auto& x : cs["results"])
              if (x["model"].get<int64_t>() == r.model) per_token = x.value("per_token_ms_p50", NAN);
      md << " " << fmt(per_token, "%.3f") << " |";
    }
    md << " "
       << (!f ? "-"
           : std::isfinite(f->peak_memory)
               ? fmt(f->peak_memory / 1048576.0, "%.1f") + " MiB"
               : "n/a on CPU (weights + state " + fmt(f->weights_and_states / 1048576.0, "%.2f") + " MiB)")
       << " |";
    for (const auto& t : task_labels) md << " " << (r.scores.count(t) ? fmt_ci(values(r.scores.at(t))) : "-") << " |";
    md << " " << fmt_ci(values(r.average)) << " |\n";
  }
  md << "\nPeak inference memory is weights + recurrent state + the activations and workspace of one sample, the "
        "largest over the profiled prefill and decode cases; the CUDA allocator measures the activations, so on a CPU "
        "only the analytic part is given.\n";
  if (c.inputs.count("profile")) md << at_presets_section(c.inputs.at("profile"), e.profile.at("at_round_to"));

  md << "\n## Hypotheses (METHOD §5)\n\n"
        "Latency: ratio of medians of the per-iteration timings from the profile, with a bootstrap 95 % interval "
        "(10,000 resamples). Scores: the average task score paired by seed, 95 % t-interval of the difference "
        "(variant − reference) and the paired t-test; non-inferior = lower bound above −1 point. FLOPs and parameter "
        "counts compared directly. A verdict holds when the whole interval is on the claimed side, fails when it is "
        "wholly on the other side, and is inconclusive when it straddles; a hypothesis of several parts fails if one "
        "part fails, holds if all hold, is not evaluated if a part could not be (a variant not in the experiment, a "
        "measurement missing) and none failed, and is inconclusive otherwise.\n\n"
     << "| hypothesis | verdict |\n| --- | --- |\n";
  for (const auto& h : hypotheses) md << "| " << h.id << " | **" << pipeline::verdict_name(h.verdict) << "** |\n";
  for (const auto& h : hypotheses) {
    md << "\n### " << h.id << ": " << pipeline::verdict_name(h.verdict) << "\n\n" << h.statement << ".\n\n";
    for (const auto& p : h.parts)
      md << "- " << p.claim << ": **" << pipeline::verdict_name(p.verdict) << "** — " << p.evidence << "\n";
  }

  md << "\n## Scores over seeds\n\n| task | variant | n | mean | sd | 95 % t-interval | majority class | above it | "
        "trainable (no head) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& task : task_labels)
    for (const auto& r : rows) {
      if (!r.scores.count(task)) continue;
      const std::vector<double> s = values(r.scores.at(task));
      const double majority = r.majority.count(task) ? r.majority.at(task) : NAN;
      std::string sd = "-", interval = "-", above = "-";
      if (s.size() >= 2) {
        const eval::TInterval t = eval::t_interval(s, 0.95);
        sd = fmt(t.sd);
        interval = "[" + fmt(t.lower) + ", " + fmt(t.upper) + "]";
        if (std::isfinite(majority)) above = t.lower > majority ? "yes" : "no";
      }
      md << "| " << task << " | " << r.name << " | " << s.size() << " | " << fmt(eval::mean(s)) << " | " << sd << " | "
         << interval << " | " << fmt(majority) << " | " << above << " | " << r.trainable << " |\n";
    }

  if (prof.contains("cases")) {
    md << "\n## Latency side by side\n\n| case | model | P50 ms | P95 ms | ratio of medians to " << models[0].stage
       << " [95 % bootstrap] |\n| --- | --- | --- | --- | --- |\n";
    for (const auto& cs : prof["cases"])
      for (const auto& r : cs["results"]) {
        const int64_t m = r["model"].get<int64_t>();
        std::string ratio = "1 (baseline)";
        if (r.contains("ratio_to_model0"))
          ratio = fmt(r["ratio_to_model0"]["ratio_of_medians"].get<double>()) + " [" +
                  fmt(r["ratio_to_model0"]["lower"].get<double>()) + ", " +
                  fmt(r["ratio_to_model0"]["upper"].get<double>()) + "]";
        md << "| " << str(cs["label"]) << " | " << models[size_t(m)].stage << " | "
           << fmt(r["summary_ms"]["p50"].get<double>(), "%.3f") << " | "
           << fmt(r["summary_ms"]["p95"].get<double>(), "%.3f") << " | " << ratio << " |\n";
      }
    md << "\n| model | parameters | backbone FLOPs/token | LM head FLOPs/token | kept d_inner per layer |\n"
          "| --- | --- | --- | --- | --- |\n";
    for (const auto& f : models) {
      std::string w;
      for (const auto x : f.widths) w += (w.empty() ? "" : " ") + std::to_string(x);
      md << "| " << f.stage << " | " << f.parameters << " | " << f.backbone_flops << " | " << f.lm_head_flops << " | "
         << w << " |\n";
    }
  }

  md << csp_blocks_section(c);
  md << "\n" << pretraining_section(e);
  md << "## Setup\n\n"
     << "- Experiment file: `" << e.file << "`; run directory: `" << e.out_dir << "`\n"
     << "- Command line: `" << cmdline << "`\n"
     << "- Commit: " << (commit.empty() ? std::string("unknown (not a git checkout)") : "`" + commit + "`")
     << (dirty ? " with uncommitted changes" : "") << "\n"
     << "- Hardware: CPU " << cpu_model() << " (" << cores << " cores online); profile on "
     << prof.value("device", std::string("?")) << " (" << prof.value("device_name", std::string("?")) << "), LibTorch "
     << prof.value("torch", std::string("?")) << cpu_threads_note(prof) << "\n"
     << "- Seeds: ";
  for (size_t i = 0; i < e.seeds.size(); ++i) md << (i ? ", " : "") << e.seeds[i];
  md << "; tasks:";
  for (const auto& t : e.tasks) md << " " << t.label << (t.label != t.name ? " (" + t.name + ")" : "");
  md << "; variants:";
  for (const auto& r : rows) md << " " << r.name;
  md << "\n";
  for (const auto& [k, v] : setup["settings"].items()) md << "- " << k << ": `" << v.dump() << "`\n";

  md << "\n## Plots\n\n";
  for (const auto& p : plots) md << "![" << p.file << "](plots/" << p.file << ")\n\n" << p.caption << "\n\n";
  if (!plots_skipped.empty()) md << "Plots skipped: " << plots_skipped << ".\n";
  const std::string report = fs::join(c.dir, "report.md");
  write_text_atomic(report, md.str());
  return {{"results", results}, {"report", report}};
}

}  // namespace mcd::cli::run_report_detail

namespace mcd::cli {
nlohmann::json write_run_report(const pipeline::Experiment& e, const pipeline::StageContext& c) {
  return run_report_detail::write(e, c);
}
}  // namespace mcd::cli
