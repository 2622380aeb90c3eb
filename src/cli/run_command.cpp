// `mamba-codesign run EXPERIMENT.yaml`: the co-design experiment as a stage graph
// (pipeline/experiment.h, pipeline/stage_graph.h, docs/pipeline.md). Each stage runs this very
// program's command for it (pretrain, importance, csp, prune, finetune, profile) as a child
// process with its output in the stage's log.txt: a crash in one stage fails that stage only, and
// the commands' own checkpoints make an interrupted stage resume.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "cli/run_report.h"
#include "pipeline/experiment.h"
#include "pipeline/stage_graph.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json_file.h"

namespace mcd::cli {
namespace {

using pipeline::PlannedStage;
using pipeline::StageContext;

// Runs `exe <global> args…` with stdout and stderr appended to log; throws naming the stage, the
// exit status and the log's last lines when it fails.
void run_child(const std::vector<std::string>& args, const std::string& log, const std::string& stage) {
  std::vector<char*> argv;
  for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  {
    std::ofstream l(log, std::ios::app);
    l << "$";
    for (const auto& s : args) l << " " << s;
    l << "\n";
  }
  const pid_t pid = ::fork();
  MCD_CHECK(pid >= 0, "run: fork failed for stage ", stage);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(args[0].c_str(), argv.data());
    std::perror("run: execv");
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string tail;
  for (size_t i = lines.size() > 6 ? lines.size() - 6 : 0; i < lines.size(); ++i) tail += "\n    " + lines[i];
  fail(cat("stage ", stage, ": the command ",
           WIFEXITED(status) ? cat("exited with status ", WEXITSTATUS(status)) : cat("died of signal ", WTERMSIG(status)),
           " (", log, "):", tail));
}

std::string str(const nlohmann::json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

// The last JSON line a command printed (its summary).
nlohmann::json last_json_line(const std::string& log) {
  std::ifstream in(log);
  nlohmann::json last;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.front() == '{') try {
        last = nlohmann::json::parse(line);
      } catch (const std::exception&) {
      }
  return last;
}

struct Binder {
  const pipeline::Experiment& e;
  std::string exe;
  std::vector<std::string> globals;  // the run's global options (--threads, --ops…), for every stage

  // Runs `exe <globals> args…` for stage p with its output in the stage's log.txt.
  void call(const PlannedStage& p, const StageContext& ctx, const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {exe};
    argv.insert(argv.end(), globals.begin(), globals.end());
    argv.insert(argv.end(), args.begin(), args.end());
    run_child(argv, fs::join(ctx.dir, "log.txt"), p.name);
  }

  std::string model_of(const StageContext& ctx, const std::string& stage) const {
    return ctx.inputs.at(stage).at("model").get<std::string>();
  }

  nlohmann::json pretrain(const PlannedStage& p, const StageContext& ctx) const {
    const nlohmann::json& s = p.settings;
    std::ostringstream y;  // a training config (docs/configs.md) written from the stage's settings
    const std::string init_from = s["model"].value("init_from", std::string());  // else a preset
    y << "description: " << e.name << " " << p.name << "\nmodel:\n  "
      << (init_from.empty() ? "preset: " + str(s["model"]["preset"]) : "init_from: " + nlohmann::json(init_from).dump())
      << "\ndata:\n  format: " << str(s["corpus"]["format"]) << "\n  paths: " << s["corpus"]["paths"].dump()
      << "\n  cache_dir: " << fs::join(ctx.dir, "tokens") << "\n  val_fraction: " << s["corpus"]["val_fraction"]
      << "\n  max_documents: " << s["corpus"]["max_documents"]
      << (p.needs.empty() ? std::string()  // else the restricted vocabulary of the `vocab` stage
                          : "\n  vocab_map: " + ctx.inputs.at(p.needs[0]).at("vocab_map").get<std::string>())
      << "\ntrain:\n  seq_len: " << s["pretrain"]["seq_len"]
      << "\n  batch_size: " << s["pretrain"]["batch_size"] << "\n  steps: " << s["pretrain"]["steps"]
      << "\n  lr: " << s["pretrain"]["lr"] << "\n  warmup_steps: " << s["pretrain"]["warmup_steps"]
      << "\n  precision: " << str(s["pretrain"]["precision"]) << "\n  seed: " << s["pretrain"]["seed"]
      << "\neval:\n  interval: " << s["pretrain"]["steps"] << "\n  windows: " << s["pretrain"]["eval_windows"]
      << (s["corpus"]["validation_paths"].empty()
              ? std::string()  // else the outside validation corpus (e.g. WikiText-2's validation split)
              : "\n  corpus: " + s["corpus"]["validation_paths"].dump() +
                    "\n  corpus_format: " + str(s["corpus"]["validation_format"]))
      << "\ncheckpoint:\n  interval: " << std::max<int64_t>(1, s["pretrain"]["steps"].get<int64_t>() / 4)
      << "\n  keep_last: 1\nrun:\n  out_dir: " << fs::join(ctx.dir, "run") << "\n  device: auto\n";
    if (s.contains("sdm"))
      y << "sdm:\n  enabled: true\n  gate_type: " << str(s["sdm"]["gate_type"])
        << "\n  target_sparsity: " << s["sdm"]["target_sparsity"] << "\n";
    const std::string config = fs::join(ctx.dir, "train.yaml");
    write_text_atomic(config, y.str());
    call(p, ctx, {"pretrain", "--quiet", "--resume", "--config", config});
    return {{"model", fs::join(fs::join(ctx.dir, "run"), "final")},
            {"summary", last_json_line(fs::join(ctx.dir, "log.txt"))}};
  }

  // `data vocab` over the corpus's training documents and the tasks' training data.
  nlohmann::json vocab(const PlannedStage& p, const StageContext& ctx) const {
    const nlohmann::json& s = p.settings;
    const std::string out = fs::join(ctx.dir, "vocab_map.json");
    std::vector<std::string> args = {"data", "vocab", "--format", str(s["corpus"]["format"]), "--val-fraction",
                                     str(s["corpus"]["val_fraction"]), "--max-documents",
                                     str(s["corpus"]["max_documents"]), "--min-count", str(s["vocab"]["min_count"]),
                                     "--out", out};
    for (const auto& c : s["corpus"]["paths"]) args.insert(args.end(), {"--corpus", str(c)});
    std::string glue_dir;  // one for all GLUE tasks (load_experiment checks it)
    for (const auto& t : s["tasks"]) {
      if (t["name"] == "custom") {
        args.insert(args.end(), {"--custom-task", str(t["train"])});
      } else {
        args.insert(args.end(), {"--glue-task", str(t["name"])});
        glue_dir = str(t["data_dir"]);
      }
    }
    if (!glue_dir.empty()) args.insert(args.end(), {"--data-dir", glue_dir});
    call(p, ctx, args);
    return {{"vocab_map", out}, {"summary", last_json_line(fs::join(ctx.dir, "log.txt"))}};
  }

  nlohmann::json importance(const PlannedStage& p, const StageContext& ctx) const {
    const std::string out = fs::join(ctx.dir, "importance.json");
    call(p, ctx, {"importance", "--model", model_of(ctx, p.needs[0]), "--out", out});
    return {{"importance", out}};
  }

  nlohmann::json csp(const PlannedStage& p, const StageContext& ctx) const {
    const nlohmann::json& s = p.settings;
    const std::string out = fs::join(ctx.dir, "model");
    const int64_t seq = s["csp"]["seq_len"].get<int64_t>();
    call(p, ctx,
         {"csp", "--model", model_of(ctx, p.needs[0]), "--out", out, "--calib", str(s["corpus"]["paths"][0]),
          "--format", str(s["corpus"]["format"]), "--seq-len", std::to_string(seq), "--tokens",
          std::to_string(seq * s["csp"]["calibration_windows"].get<int64_t>())});
    return {{"model", out}};
  }

  nlohmann::json prune(const PlannedStage& p, const StageContext& ctx) const {
    const nlohmann::json& s = p.settings;
    const std::string out = fs::join(ctx.dir, "model");
    std::vector<std::string> args = {"prune", "--model", model_of(ctx, p.needs[0]), "--out", out, "--round-to",
                                     str(s["prune"]["round_to"])};
    if (s["source"] == "gates") {
      args.insert(args.end(), {"--threshold", "--granularity", str(s["granularity"])});
    } else {  // magnitude ranking at the SDM model's kept widths (the challenge model)
      args.insert(args.end(), {"--magnitude", "per_layer", "--widths-from",
                               ctx.inputs.at(p.needs[1]).at("importance").get<std::string>()});
    }
    fs::remove_tree(out);  // prune refuses to overwrite; a rerun starts over (it takes seconds)
    call(p, ctx, args);
    return {{"model", out}, {"importance", fs::join(out, "importance.json")}};
  }

  nlohmann::json finetune(const PlannedStage& p, const StageContext& ctx) const {
    const nlohmann::json& s = p.settings;
    std::vector<std::string> args = {"finetune"};
    auto opt = [&](const std::string& k, const std::string& v) {
      args.push_back(k);
      args.push_back(v);
    };
    opt("--model", model_of(ctx, p.needs[0]));
    const auto& task = s["task"];
    opt("--task", str(task["name"]));
    if (task["name"] == "custom") {
      opt("--train", str(task["train"]));
      opt("--dev", str(task["dev"]));
    } else {
      opt("--data-dir", str(task["data_dir"]));
    }
    opt("--method", str(s["method"]));
    if (s["method"] == "sgh") {
      const std::string source = p.needs.size() > 1 ? p.needs[1] : p.needs[0];
      opt("--importance", ctx.inputs.at(source).at("importance").get<std::string>());
    }
    opt("--seed", str(s["seed"]));
    opt("--epochs", str(s["finetune"]["epochs"]));
    opt("--batch", str(s["finetune"]["batch_size"]));
    opt("--max-length", str(s["finetune"]["max_length"]));
    if (s["finetune"]["max_train_examples"].get<int64_t>() > 0)
      opt("--max-train-examples", str(s["finetune"]["max_train_examples"]));
    if (s["finetune"]["lr"].get<double>() > 0) opt("--lr", str(s["finetune"]["lr"]));
    // Keys added later are read with their defaults, so older stage settings keep their meaning.
    const double lr_scale = s["finetune"].value("lr_scale", 1.0);
    if (lr_scale != 1) opt("--lr-scale", str(s["finetune"]["lr_scale"]));
    opt("--pooling", s["finetune"].value("pooling", std::string("last")));
    if (s.contains("peft")) {
      opt("--rank", str(s["peft"]["rank"]));
      opt("--alpha", str(s["peft"]["alpha"]));
      opt("--dropout", str(s["peft"]["dropout"]));
      opt("--lora-percentile", str(s["peft"]["lora_percentile"]));
    }
    opt("--out", ctx.dir);
    args.insert(args.end(), {"--resume", "--quiet"});
    call(p, ctx, args);
    const nlohmann::json r = read_json_file(fs::join(ctx.dir, "result.json"));
    return {{"result", fs::join(ctx.dir, "result.json")}, {"score", r.at("score")}};
  }

  nlohmann::json profile(const PlannedStage& p, const StageContext& ctx) const {
    const nlohmann::json& s = p.settings["profile"];
    std::vector<std::string> args = {"profile"};
    for (const auto& need : p.needs) args.insert(args.end(), {"--model", model_of(ctx, need)});
    std::string prefill, decode;
    for (const auto& v : s["prefill"]) prefill += (prefill.empty() ? "" : ",") + v.get<std::string>();
    for (const auto& v : s["decode_batch"]) decode += (decode.empty() ? "" : ",") + std::to_string(v.get<int64_t>());
    const std::vector<std::string> cases = {"--prefill", prefill, "--decode-batch", decode, "--iters", str(s["iters"])};
    args.insert(args.end(), cases.begin(), cases.end());
    args.insert(args.end(), {"--out", fs::join(ctx.dir, "profile.json")});
    call(p, ctx, args);
    // The same models at other shapes (e.g. mamba-130m): each one's per-layer widths carried over as
    // fractions of E into a randomly initialised model of the preset (`init --widths-from`), then
    // timed side by side like the real ones.
    nlohmann::json at = nlohmann::json::object();
    for (const auto& preset_json : s["at_presets"]) {
      const std::string preset = preset_json.get<std::string>(), dir = fs::join(ctx.dir, preset);
      std::vector<std::string> at_args = {"profile"};
      for (size_t i = 0; i < p.needs.size(); ++i) {
        const std::string m = fs::join(dir, "model" + std::to_string(i));
        call(p, ctx, {"init", "--preset", preset, "--widths-from", model_of(ctx, p.needs[i]), "--round-to",
                      str(s["at_round_to"]), "--out", m});
        at_args.insert(at_args.end(), {"--model", m});
      }
      at_args.insert(at_args.end(), cases.begin(), cases.end());
      at_args.insert(at_args.end(), {"--out", fs::join(dir, "profile.json")});
      call(p, ctx, at_args);
      at[preset] = fs::join(dir, "profile.json");
    }
    return {{"profile", fs::join(ctx.dir, "profile.json")}, {"models", p.needs}, {"at_presets", at}};
  }
};

}  // namespace

Command add_run(CLI::App& app, const GlobalOptions& globals) {
  auto* sub = app.add_subcommand("run", "run the co-design experiment of an experiment file (docs/pipeline.md)");
  struct Args {
    std::string file;
    bool dry_run = false;
    int jobs = 1;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("experiment", a->file, "experiment YAML file")->required();
  sub->add_flag("--dry-run", a->dry_run, "print the stage plan with each stage's key and state, run nothing");
  sub->add_option("--jobs", a->jobs,
                  "stages run at once when their needs are done (each its own process; with --threads 0 each "
                  "gets cores / jobs threads; e.g. one per core with --threads 1)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  return {sub, [a, &globals] {
            const pipeline::Experiment e = pipeline::load_experiment(a->file);
            const auto plan = pipeline::plan_stages(e);
            Binder b{e, fs::executable_path(), globals.to_args_for(a->jobs)};
            pipeline::StageGraph g;
            for (const PlannedStage& p : plan) {
              pipeline::Stage s;
              s.name = p.name;
              s.needs = p.needs;
              s.settings = p.settings;
              s.expected_seconds = p.expected_seconds;
              s.exclusive = p.exclusive;
              const PlannedStage copy = p;
              if (p.kind == "vocab") s.action = [b, copy](const StageContext& c) { return b.vocab(copy, c); };
              if (p.kind == "pretrain") s.action = [b, copy](const StageContext& c) { return b.pretrain(copy, c); };
              if (p.kind == "importance") s.action = [b, copy](const StageContext& c) { return b.importance(copy, c); };
              if (p.kind == "csp") s.action = [b, copy](const StageContext& c) { return b.csp(copy, c); };
              if (p.kind == "prune") s.action = [b, copy](const StageContext& c) { return b.prune(copy, c); };
              if (p.kind == "finetune") s.action = [b, copy](const StageContext& c) { return b.finetune(copy, c); };
              if (p.kind == "profile") s.action = [b, copy](const StageContext& c) { return b.profile(copy, c); };
              if (p.kind == "report") s.action = [&e](const StageContext& c) { return write_run_report(e, c); };
              g.add(std::move(s));
            }
            if (a->dry_run) {
              const auto keys = g.keys();
              for (const auto& p : plan) {
                const nlohmann::json r = pipeline::read_stage_record(e.out_dir, p.name);
                std::cout << p.name << "  " << keys.at(p.name) << "  "
                          << (r.is_null() ? "to run"
                              : r.value("key", "") != keys.at(p.name) ? "settings changed"
                                                                       : r.value("status", "?"))
                          << "\n";
              }
              return;
            }
            const pipeline::RunReport r = g.run(e.out_dir, nullptr, a->jobs);
            std::cout << nlohmann::json({{"out_dir", e.out_dir}, {"stages", r.stages.size()},
                                         {"executed", r.executed()}, {"failed", r.failed()}})
                             .dump()
                      << "\n";
            MCD_CHECK(r.failed() == 0, "run: ", r.failed(), " stage(s) failed or were blocked; see ", e.out_dir,
                      "/stages/*/stage.json and each stage's log.txt");
          }};
}

}  // namespace mcd::cli
