// The pre-training loop (see trainer.h). Data parallelism: the global batch of a step is the same
// for any number of ranks (data/batch.h); rank r takes its slice, splits it into grad_accum
// micro-batches, and gradients are averaged over ranks, so N processes compute the same update
// as one process with the combined batch.
#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "data/batch.h"
#include "data/token_cache.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/unigram.h"
#include "model/checkpoint.h"
#include "model/mamba.h"
#include "train/checkpointing.h"
#include "train/distributed.h"
#include "train/memory_stats.h"
#include "train/optimizer.h"
#include "sdm/sparsity_control.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string format_duration(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof(buf), "%dm%02ds", int(s / 60), int(s) % 60);
  else std::snprintf(buf, sizeof(buf), "%.0fs", s);
  return buf;
}

torch::Device resolve_device(const std::string& name, const DistEnv& env) {
  if (name == "auto") {
    if (cuda_available()) return torch::Device(torch::kCUDA, env.local_rank);
    return torch::kCPU;
  }
  torch::Device d(name);
  MCD_CHECK(!d.is_cuda() || cuda_available(), "run.device=", name, " but CUDA is not available");
  if (d.is_cuda() && !d.has_index()) d = torch::Device(torch::kCUDA, env.local_rank);
  return d;
}

// Appends JSON lines to <out_dir>/metrics.jsonl (rank 0 only). On resume, lines past the resumed
// step are dropped first so the file reads as one continuous run.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t resume_step, bool active) : path_(path), active_(active) {
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
  std::string path_;
  bool active_;
  std::ofstream out_;
};

}  // namespace

nlohmann::json run_pretraining(const TrainConfig& cfg, const PretrainOptions& options) {
  const DistEnv env = DistEnv::from_environment();
  const torch::Device device = resolve_device(cfg.device, env);
  if (cfg.threads > 0) at::set_num_threads(int(cfg.threads));
  MCD_CHECK(cfg.precision == "fp32" || device.is_cuda(), cfg.source,
            ": train.precision=bf16 needs a CUDA device (got ", device, ")");
  const int64_t world = env.world_size;
  MCD_CHECK(cfg.batch_size % (world * cfg.grad_accum) == 0, cfg.source, ": train.batch_size=", cfg.batch_size,
            " must be a multiple of world_size x grad_accum = ", world, " x ", cfg.grad_accum);
  Communicator comm(env, device.is_cuda() ? "nccl" : "gloo");
  const bool main = comm.is_main();
  auto log = [&](const std::string& line) {
    if (main) std::cerr << line << std::endl;
  };

  // Data: rank 0 builds (or validates) the token cache, the others open it afterwards.
  const data::BpeTokenizer tokenizer = data::BpeTokenizer::load_default();
  data::CorpusSpec spec;
  spec.format = cfg.data_format;
  spec.paths = cfg.data_paths;
  data::TokenCacheOptions cache_options;
  cache_options.cache_dir = cfg.cache_dir;
  cache_options.val_fraction = cfg.val_fraction;
  cache_options.split_seed = cfg.split_seed;
  cache_options.max_documents = cfg.max_documents;
  cache_options.log = [&](const std::string& line) { log("data: " + line); };
  std::optional<data::TokenCache> cache;
  if (main) cache = data::TokenCache::open_or_build(spec, tokenizer, cache_options);
  comm.barrier();
  if (!main) cache = data::TokenCache::open_or_build(spec, tokenizer, cache_options);
  const data::TokenSpan train_tokens = cache->train(), val_tokens = cache->val();
  const int64_t window = cfg.seq_len + 1;
  MCD_CHECK(train_tokens.size >= window, cfg.cache_dir, ": only ", train_tokens.size,
            " training tokens, fewer than one window of ", window);
  MCD_CHECK(data::num_sequential_windows(val_tokens.size, window) > 0, cfg.cache_dir, ": the validation split has ",
            val_tokens.size, " tokens, fewer than one window of ", window,
            "; raise data.val_fraction or add documents");

  // Model and optimizer.
  const ModelConfig model_config = cfg.model_config();
  MCD_CHECK(model_config.vocab_size >= int64_t(tokenizer.vocab_size()), cfg.source, ": the model's vocabulary (",
            model_config.vocab_size, ") is smaller than the tokenizer's (", tokenizer.vocab_size(), ")");
  MambaLM model(model_config);
  if (cfg.init_from.empty()) {
    init_reference(*model, cfg.seed);
  } else {
    load_state(*model, fs::join(cfg.init_from, "model.safetensors"), is_gate_parameter);
  }
  model->to(device);
  model->train();
  OptimizerSettings os{cfg.lr, cfg.weight_decay, cfg.beta1, cfg.beta2, cfg.eps, cfg.sdm_gate_lr};
  auto optimizer = make_adamw(*model, os);
  // SDM: gates in every mixer, controlled towards the target sparsity.
  std::optional<sdm::SparsityController> sparsity;
  if (cfg.sdm_enabled) {
    std::vector<sdm::ChannelGate> gates;
    for (auto& block : model->backbone->blocks) gates.push_back(block->mixer->gate);
    sdm::SparsitySettings ss;
    ss.target = cfg.sdm_target;
    ss.warmup_fraction = cfg.sdm_warmup_fraction;
    ss.control = cfg.sdm_control;
    ss.penalty_weight = cfg.sdm_penalty_weight;
    ss.lambda_lr = cfg.sdm_lambda_lr;
    ss.lambda2_init = cfg.sdm_lambda2_init;
    ss.lambda_signal = cfg.sdm_lambda_signal;
    ss.tau0 = cfg.sdm_tau0;
    ss.tau1 = cfg.sdm_tau1;
    sparsity.emplace(gates, ss, cfg.steps);
  }

  int64_t start_step = 0;
  double tokens_seen = 0;
  if (options.resume) {
    if (const auto folder = find_latest_checkpoint(cfg.out_dir)) {
      LoadedCheckpoint ck = read_checkpoint(*model, *folder);
      load_adamw_state(*model, *optimizer, ck.optimizer, *folder + "/optimizer.safetensors");
      start_step = ck.trainer_state["step"].get<int64_t>();
      tokens_seen = ck.trainer_state.value("tokens_seen", 0.0);
      if (sparsity && ck.trainer_state.contains("sdm")) sparsity->load_state(ck.trainer_state["sdm"]);
      log("resumed from " + *folder + " (step " + std::to_string(start_step) + ")");
    } else {
      log("no checkpoint in " + cfg.out_dir + "/checkpoints: starting from step 0");
    }
  }
  std::vector<at::Tensor> params = model->parameters();
  comm.broadcast_(params);  // every rank starts from rank 0's weights

  if (main) fs::make_dirs(cfg.out_dir);
  MetricsLog metrics(fs::join(cfg.out_dir, "metrics.jsonl"), start_step, main);

  const int64_t rows_per_rank = cfg.batch_size / world;
  const int64_t micro = rows_per_rank / cfg.grad_accum;
  const bool bf16 = cfg.precision == "bf16";
  std::vector<int64_t> buffer(size_t(rows_per_rank * window));

  auto evaluate = [&]() -> double {
    torch::NoGradGuard no_grad;
    model->eval();
    const int64_t available = data::num_sequential_windows(val_tokens.size, window);
    const int64_t n = cfg.eval_windows > 0 ? std::min(cfg.eval_windows, available) : available;
    double loss_sum = 0, count = 0;
    std::vector<int64_t> rows;
    // Windows are dealt to ranks round-robin; sums are combined over ranks.
    for (int64_t first = env.rank * cfg.eval_batch_size; first < n; first += world * cfg.eval_batch_size) {
      const int64_t b = std::min(cfg.eval_batch_size, n - first);
      rows.assign(size_t(b * window), 0);
      for (int64_t i = 0; i < b; ++i) data::sequential_window(val_tokens, first + i, window, rows.data() + i * window);
      const at::Tensor ids = torch::from_blob(rows.data(), {b, window}, torch::kLong).to(device);
      const at::Tensor loss = [&] {
        CudaAutocastScope autocast(bf16);
        return model->loss(ids);
      }();
      loss_sum += loss.item<double>() * double(b * cfg.seq_len);
      count += double(b * cfg.seq_len);
    }
    model->train();
    loss_sum = comm.sum(loss_sum);
    count = comm.sum(count);
    return count > 0 ? loss_sum / count : NAN;
  };

  auto save = [&](int64_t step, double last_loss) {
    if (main) {
      CheckpointContents c;
      c.optimizer = adamw_state_tensors(*model, *optimizer);
      // The batch sampler and the SDM noise are counter-based (seed, step): the step is the whole
      // data position and random state, so nothing else needs saving for a bit-identical resume.
      c.trainer_state = {{"tokens_seen", tokens_seen}, {"seed", cfg.seed}, {"train_loss", last_loss},
                         {"config_source", cfg.source}, {"data_position", {{"next_step", step}, {"sampler", "counter-based (seed, step, row)"}}}};
      if (sparsity) c.trainer_state["sdm"] = sparsity->state();
      const std::string dir = write_checkpoint(*model, c, cfg.out_dir, step, cfg.keep_last);
      log("checkpoint " + dir);
    }
    comm.barrier();
  };

  log("pretrain: " + std::to_string(model_config.num_parameters()) + " parameters, " +
      std::to_string(train_tokens.size) + " train / " + std::to_string(val_tokens.size) + " val tokens, device " +
      device.str() + ", world " + std::to_string(world) + ", " + cfg.precision);
  const bool tty = main && !options.quiet && ::isatty(STDERR_FILENO);
  const auto run_start = Clock::now();
  auto window_start = Clock::now();
  double window_tokens = 0;
  double last_loss = NAN, last_val = NAN;
  int64_t step = start_step;
  reset_peak_memory(device);
  // Test hook: MCD_FAULT_NAN_LOSS_AT_STEP=<step> makes that step's loss NaN, as a diverging run would.
  const char* fault_env = std::getenv("MCD_FAULT_NAN_LOSS_AT_STEP");
  const int64_t fault_nan_step = fault_env && *fault_env ? std::atoll(fault_env) : -1;
  for (; step < cfg.steps; ++step) {
    const double lr = lr_at(step, cfg.steps, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio);
    set_lr(*optimizer, lr);
    optimizer->zero_grad();
    data::sample_windows(train_tokens, cfg.seed, step, cfg.batch_size, env.rank, world, window, buffer.data());
    const at::Tensor batch = torch::from_blob(buffer.data(), {rows_per_rank, window}, torch::kLong).to(device);
    double loss_value = 0;
    if (sparsity) {
      sparsity->begin_step(cfg.seed, step);
      sparsity->regularizer(step).backward();  // once per step, independent of the micro-batches
    }
    for (int64_t m = 0; m < cfg.grad_accum; ++m) {
      const at::Tensor ids = batch.narrow(0, m * micro, micro);
      const at::Tensor loss = [&] {
        CudaAutocastScope autocast(bf16);
        return model->loss(ids);
      }();
      (loss / double(cfg.grad_accum)).backward();
      loss_value += loss.item<double>() / double(cfg.grad_accum);
    }
    if (fault_nan_step >= 0 && step == fault_nan_step) loss_value = NAN;  // test hook
    const double global_loss = comm.sum(loss_value) / double(world);
    if (!std::isfinite(global_loss)) {
      fail(cat("training loss is ", global_loss, " at step ", step, " (lr ", lr,
               "); stopping. The last checkpoint in ", cfg.out_dir,
               "/checkpoints is intact: resume from it with a lower train.lr or higher train.warmup_steps"));
    }
    comm.average_gradients(params);
    const double grad_norm = torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
    optimizer->step();
    if (sparsity) sparsity->end_step(step);
    last_loss = global_loss;
    tokens_seen += double(cfg.batch_size * cfg.seq_len);
    window_tokens += double(cfg.batch_size * cfg.seq_len);

    const int64_t done = step + 1;
    const bool final_step = done == cfg.steps;
    const bool out_of_time = cfg.max_minutes > 0 && comm.sum(seconds_since(run_start) > cfg.max_minutes * 60 ? 1 : 0) > 0;
    if (done % std::max<int64_t>(1, cfg.log_interval) == 0 || final_step || out_of_time) {
      const double secs = seconds_since(window_start);
      const double tps = secs > 0 ? window_tokens / secs : 0;
      const double eta = tps > 0 ? double(cfg.steps - done) * double(cfg.batch_size * cfg.seq_len) / tps : 0;
      nlohmann::json record = {{"step", done}, {"loss", global_loss}, {"lr", lr}, {"grad_norm", grad_norm},
                               {"tokens_per_s", tps}, {"tokens_seen", tokens_seen},
                               {"peak_memory_bytes", peak_memory_bytes(device)}, {"elapsed_s", seconds_since(run_start)}};
      if (sparsity) record["sdm"] = sparsity->metrics(done);
      metrics.write(record);
      if (main && !options.quiet) {
        char line[256];
        std::snprintf(line, sizeof(line), "step %lld/%lld | loss %.4f | lr %.2e | gnorm %.2f | %.1fk tok/s | ETA %s",
                      static_cast<long long>(done), static_cast<long long>(cfg.steps), global_loss, lr, grad_norm,
                      tps / 1000, format_duration(eta).c_str());
        std::string extra;
        if (sparsity) {
          const auto m = sparsity->metrics(done);
          char buf[128];
          std::snprintf(buf, sizeof(buf), " | sparsity %.3f (det %.3f, target %.3f)", m["expected_sparsity"].get<double>(),
                        m["deterministic_sparsity"].get<double>(), m["target_sparsity"].get<double>());
          extra = buf;
        }
        std::cerr << (tty ? "\r" : "") << line << extra << (tty ? "   " : "\n") << std::flush;
      }
      window_start = Clock::now();
      window_tokens = 0;
    }
    const bool eval_now = (cfg.eval_interval > 0 && done % cfg.eval_interval == 0) || final_step || out_of_time;
    if (eval_now) {
      last_val = evaluate();
      metrics.write({{"step", done}, {"val_loss", last_val}, {"val_ppl", std::exp(last_val)}});
      if (tty) std::cerr << "\n";
      log("step " + std::to_string(done) + ": validation loss " + std::to_string(last_val) + " (ppl " +
          std::to_string(std::exp(last_val)) + ")");
    }
    if ((cfg.checkpoint_interval > 0 && done % cfg.checkpoint_interval == 0) || final_step || out_of_time)
      save(done, global_loss);
    if (out_of_time) {
      log("run.max_minutes reached: stopped after step " + std::to_string(done));
      ++step;
      break;
    }
  }
  if (tty) std::cerr << "\n";

  nlohmann::json summary = {{"steps", step},
                            {"train_loss", last_loss},
                            {"val_loss", last_val},
                            {"tokens_seen", tokens_seen},
                            {"elapsed_s", seconds_since(run_start)},
                            {"world_size", world},
                            {"device", device.str()},
                            {"precision", cfg.precision},
                            {"parameters", model_config.num_parameters()}};
  if (sparsity) summary["sdm"] = sparsity->metrics(step);
  if (main) {
    // The baseline a language model must beat: a unigram model of the training tokens.
    const auto unigram = data::UnigramModel::fit(train_tokens, model_config.vocab_size);
    if (val_tokens.size > 0) summary["unigram_val_loss"] = unigram.cross_entropy(val_tokens);
    const std::string final_dir = fs::join(cfg.out_dir, "final");
    save_pretrained(*model, final_dir);
    summary["final_model"] = final_dir;
    write_text_atomic(fs::join(cfg.out_dir, "summary.json"), summary.dump(2) + "\n");
  }
  return summary;
}

}  // namespace mcd::train
