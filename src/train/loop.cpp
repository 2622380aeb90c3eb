// The shared training loop (see loop.h). Data parallelism: every rank computes its share of the
// step's global batch in `micro_batches` pieces; gradients are averaged over ranks, so N processes
// make the same update as one process with the combined batch.
#include "train/loop.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>

#include "ops/adamw_step.h"
#include "ops/options.h"
#include "train/memory_stats.h"
#include "ops/step_graphs.h"
#include "util/atomic_file.h"
#include "util/cpu_threads.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::train {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kMaxUnreadSteps = 50;  // a NaN is caught at most this many steps late

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string format_duration(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof(buf), "%dm%02ds", int(s / 60), int(s) % 60);
  else std::snprintf(buf, sizeof(buf), "%.0fs", s);
  return buf;
}

// Appends JSON lines to <out_dir>/metrics.jsonl (rank 0 only). On resume, lines past the resumed
// step are dropped first so the file reads as one continuous run.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t resume_step, bool active) : active_(active) {
    if (!active_) return;
    std::vector<std::string> kept;
    if (resume_step > 0) {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        try {
          const auto j = nlohmann::json::parse(line);
          if (j.value("step", int64_t(0)) <= resume_step) kept.push_back(line);
        } catch (const nlohmann::json::exception&) {
          // a torn last line from a crash: drop it
        }
      }
    }
    std::string text;
    for (const auto& l : kept) text += l + "\n";
    write_text_atomic(path, text);
    out_.open(path, std::ios::app);
  }
  void write(const nlohmann::json& j) {
    if (!active_) return;
    out_ << j.dump() << "\n";
    out_.flush();
  }

 private:
  bool active_;
  std::ofstream out_;
};

}  // namespace

std::string Objective::describe_evaluation(const nlohmann::json& e) const {
  const double val = e.at("val_loss").get<double>();
  return "validation loss " + std::to_string(val) + " (ppl " + std::to_string(std::exp(val)) + ")";
}

nlohmann::json run_training_loop(Objective& objective, Communicator& comm, const torch::Device& device,
                                 const LoopSettings& s, const TrainOptions& options) {
  const bool main = comm.is_main();
  auto log = [&](const std::string& line) {
    if (main) std::cerr << line << std::endl;
  };
  torch::nn::Module& module = objective.module();
  auto optimizer = make_adamw(module, s.optimizer);

  int64_t start_step = 0;
  double units_seen = 0;
  if (options.resume) {
    if (const auto folder = find_latest_checkpoint(s.out_dir)) {
      LoadedCheckpoint ck = read_checkpoint([&](const std::string& f) { objective.load_weights(f); }, *folder);
      load_adamw_state(module, *optimizer, ck.optimizer, *folder + "/optimizer.safetensors");
      start_step = ck.trainer_state["step"].get<int64_t>();
      units_seen = ck.trainer_state.value("tokens_seen", 0.0);
      // (Checkpoints written before the loop was split keep the objective's state at the top level.)
      objective.load_state(ck.trainer_state.contains("objective") ? ck.trainer_state["objective"] : ck.trainer_state);
      log("resumed from " + *folder + " (step " + std::to_string(start_step) + ")");
    } else {
      log("no checkpoint in " + s.out_dir + "/checkpoints: starting from step 0");
    }
  }
  std::vector<at::Tensor> all_params = module.parameters(), trained;
  for (const auto& p : all_params)
    if (p.requires_grad()) trained.push_back(p);
  comm.broadcast_(all_params);  // every rank starts from rank 0's weights
  // Forward and backward as CUDA graphs (ops/step_graphs.h) when the settings ask, the device
  // allows and a step is one micro-batch of one process; the objective decides step by step by
  // staging its inputs (stage_micro_batch), and an unstaged step runs eagerly.
  std::unique_ptr<ops::StepGraphs> graphs;
  if (s.cuda_graphs && ops::StepGraphs::available(device) && comm.world_size() == 1 && s.grad_accum == 1)
    graphs = std::make_unique<ops::StepGraphs>(device, trained);

  if (main) fs::make_dirs(s.out_dir);
  MetricsLog metrics(fs::join(s.out_dir, "metrics.jsonl"), start_step, main);

  auto save = [&](int64_t step, double last_loss) {
    if (main) {
      CheckpointContents c;
      c.optimizer = adamw_state_tensors(module, *optimizer);
      // Batches and random draws are counter-based (seed, step): the step is the whole data
      // position and random state, so nothing else needs saving for a bit-identical resume.
      c.trainer_state = {{"tokens_seen", units_seen}, {"seed", s.seed}, {"train_loss", last_loss},
                         {"config_source", s.source},
                         {"data_position", {{"next_step", step}, {"sampler", "counter-based (seed, step, row)"}}},
                         {"objective", objective.state()}};
      const std::string dir = write_checkpoint([&](const std::string& f) { objective.save_weights(f); }, c,
                                               s.out_dir, step, s.keep_last, options.faults);
      log("checkpoint " + dir);
    }
    comm.barrier();
  };

  const bool tty = main && !options.quiet && ::isatty(STDERR_FILENO);
  const auto run_start = Clock::now();
  auto window_start = Clock::now();
  double window_units = 0;
  double last_loss = NAN;
  nlohmann::json last_eval;
  int64_t step = start_step;
  reset_peak_memory(device);
  // Step losses stay on the device until a step that logs, evaluates or checkpoints (or
  // kMaxUnreadSteps of them): reading one waits for the device, and a host that waits every step
  // cannot queue the next step while the device runs this one. Each step's value then passes the
  // NaN guard in order, before anything is logged or saved from the weights: a NaN stops the run
  // naming its step, the weights in memory are lost, and the last checkpoint on disk is intact.
  struct UnreadLoss {
    int64_t step;
    double lr;
    std::vector<at::Tensor> losses;  // one per micro-batch
  };
  std::vector<UnreadLoss> unread;
  auto read_losses = [&] {
    for (const UnreadLoss& u : unread) {
      double value = 0;
      for (const at::Tensor& l : u.losses) value += l.item<double>() / double(s.grad_accum);
      if (u.step == options.faults.nan_loss_at_step) value = NAN;  // test hook
      const double global = comm.sum(value) / double(comm.world_size());
      if (!std::isfinite(global)) {
        fail(cat("training loss is ", global, " at step ", u.step, " (lr ", u.lr, "); stopping. The last checkpoint in ",
                 s.out_dir, "/checkpoints is intact: resume from it with a lower train.lr or higher train.warmup_steps"));
      }
      last_loss = global;
    }
    unread.clear();
  };
  StepContext ctx;
  ctx.rank = comm.rank();
  ctx.world = comm.world_size();
  ctx.micro_batches = s.grad_accum;
  for (; step < s.steps; ++step) {
    ctx.step = step;
    const double lr = lr_at(step, s.steps, s.warmup_steps, s.lr, s.min_lr_ratio, s.schedule);
    set_lr(*optimizer, lr);
    if (graphs) {
      graphs->begin_step();  // no gradients: a replay writes them, an eager backward makes them
    } else {
      optimizer->zero_grad();
    }
    objective.begin_step(ctx);
    std::vector<at::Tensor> losses;  // on the device until read_losses
    const std::string graph_key = graphs ? objective.stage_micro_batch(ctx, 0) : std::string();
    if (!graph_key.empty()) {
      // A copy: the next replay overwrites the graph's own loss buffer.
      losses.push_back(graphs->forward_backward(graph_key, [&] {
        CudaAutocastScope autocast(s.bf16);
        return objective.micro_batch_loss(ctx, 0);
      }).clone());
    }
    for (int64_t m = 0; graph_key.empty() && m < s.grad_accum; ++m) {
      const at::Tensor loss = [&] {
        CudaAutocastScope autocast(s.bf16);
        return objective.micro_batch_loss(ctx, m);
      }();
      (loss / double(s.grad_accum)).backward();
      losses.push_back(loss.detach());
    }
    comm.average_gradients(trained);
    // The norm is logged either way (read at logging time only); a clip of 0 means no clipping.
    const at::Tensor grad_norm =
        clip_grad_norm(trained, s.grad_clip > 0 ? s.grad_clip : std::numeric_limits<double>::infinity());
    ops::adamw_step(*optimizer);
    unread.push_back({step, lr, std::move(losses)});
    objective.end_step(ctx);
    units_seen += objective.units_per_step();
    window_units += objective.units_per_step();

    const int64_t done = step + 1;
    const bool final_step = done == s.steps;
    const bool out_of_time = s.max_minutes > 0 && comm.sum(seconds_since(run_start) > s.max_minutes * 60 ? 1 : 0) > 0;
    const bool log_step = done % std::max<int64_t>(1, s.log_interval) == 0 || final_step || out_of_time;
    const bool eval_step = (s.eval_interval > 0 && done % s.eval_interval == 0) || final_step || out_of_time;
    const bool checkpoint_step = (s.checkpoint_interval > 0 && done % s.checkpoint_interval == 0) || final_step || out_of_time;
    // Before anything is logged, evaluated or saved from these weights.
    if (log_step || eval_step || checkpoint_step || int64_t(unread.size()) >= kMaxUnreadSteps) read_losses();
    if (log_step) {
      const double secs = seconds_since(window_start);
      const double ups = secs > 0 ? window_units / secs : 0;
      const double eta = ups > 0 ? double(s.steps - done) * objective.units_per_step() / ups : 0;
      const double norm = grad_norm.item<double>();
      nlohmann::json record = {{"step", done}, {"loss", last_loss}, {"lr", lr}, {"grad_norm", norm},
                               {"tokens_per_s", ups}, {"tokens_seen", units_seen},
                               {"peak_memory_bytes", peak_memory_bytes(device)}, {"elapsed_s", seconds_since(run_start)}};
      record.update(objective.step_metrics(done));
      metrics.write(record);
      if (main && !options.quiet) {
        char line[256];
        std::snprintf(line, sizeof(line), "step %lld/%lld | loss %.4f | lr %.2e | gnorm %.2f | %.1fk %s/s | ETA %s",
                      static_cast<long long>(done), static_cast<long long>(s.steps), last_loss, lr, norm,
                      ups / 1000, objective.unit_name(), format_duration(eta).c_str());
        std::cerr << (tty ? "\r" : "") << line << objective.progress_suffix(done) << (tty ? "   " : "\n") << std::flush;
      }
      window_start = Clock::now();
      window_units = 0;
    }
    if (eval_step) {
      last_eval = objective.evaluate(comm);
      const double val = last_eval.at("val_loss").get<double>();
      nlohmann::json record = last_eval;
      record["step"] = done;
      if (objective.reports_perplexity()) record["val_ppl"] = std::exp(val);
      metrics.write(record);
      if (tty) std::cerr << "\n";
      log("step " + std::to_string(done) + ": " + objective.describe_evaluation(last_eval));
    }
    if (checkpoint_step) save(done, last_loss);
    if (out_of_time) {
      log("run.max_minutes reached: stopped after step " + std::to_string(done));
      ++step;
      break;
    }
  }
  if (tty) std::cerr << "\n";

  nlohmann::json summary = {{"steps", step},
                            {"train_loss", last_loss},
                            {"val_loss", last_eval.is_object() && last_eval.contains("val_loss") ? last_eval["val_loss"]
                                                                                               : nlohmann::json(NAN)},
                            {"tokens_seen", units_seen},
                            {"elapsed_s", seconds_since(run_start)},
                            {"world_size", comm.world_size()},
                            {"device", device.str()},
                            {"precision", s.bf16 ? "bf16" : "fp32"},
                            {"cuda_graphs", graphs ? graphs->graphs() : 0},
                            {"graph_replays", graphs ? graphs->replays() : 0}};
  // The ops options the run used (scan plan, memory options, …): results say how they were made.
  nlohmann::json ops_used = nlohmann::json::object();
  for (const auto& [key, value] : ops::ops_option_values(ops::ops_options())) ops_used[key] = value;
  summary["ops"] = ops_used;
  summary["cpu_threads"] = cpu_threads_record(at::get_num_threads());  // the CPU pools it ran on
  if (main) {
    objective.finish(summary);
    const std::string final_dir = fs::join(s.out_dir, "final");
    objective.save_weights(final_dir);
    summary["final_model"] = final_dir;
    write_text_atomic(fs::join(s.out_dir, "summary.json"), summary.dump(2) + "\n");
  }
  return summary;
}

}  // namespace mcd::train
