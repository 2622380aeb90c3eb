// LM pre-training as a training-loop objective (see trainer.h). The global batch of a step is the
// same for any number of ranks (data/batch.h); rank r takes its slice and the loop splits it into
// micro-batches.
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "data/batch.h"
#include "data/token_cache.h"
#include "data/token_windows.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/vocab_map.h"
#include "data/unigram.h"
#include "model/checkpoint.h"
#include "model/mamba.h"
#include "ops/graph_capture.h"
#include "sdm/sparsity_control.h"
#include "util/cpu_threads.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::train {
namespace {

torch::Device resolve_device(const std::string& name, const DistEnv& env) {
  if (name == "auto") {
    if (cuda_available()) return torch::Device(torch::kCUDA, env.local_rank);
    return torch::kCPU;
  }
  torch::Device d(name);  // the config parser admitted only auto, cpu, cuda, cuda:N
  MCD_CHECK(!d.is_cuda() || cuda_available(), "run.device=", name, " but CUDA is not available");
  if (d.is_cuda() && !d.has_index()) d = torch::Device(torch::kCUDA, env.local_rank);
  return d;
}

class LmObjective : public Objective {
 public:
  LmObjective(const TrainConfig& cfg, MambaLM model, data::TokenSpan train, data::TokenSpan val,
              const torch::Device& device, int world)
      : cfg_(cfg), model_(std::move(model)), train_(train), val_(val), device_(device),
        window_(cfg.train.seq_len + 1), rows_per_rank_(cfg.train.batch_size / world) {
    if (cfg.sdm.enabled)
      sparsity_.emplace(model_->backbone->gates(), cfg.sdm.control, cfg.train.steps);
  }

  torch::nn::Module& module() override { return *model_; }
  void save_weights(const std::string& folder) override {
    save_pretrained(*model_, folder);
    // The model's ids are the tokenizer's and the map's: both travel with every saved model (vocab_map.h).
    if (!vocab_map_.empty()) {
      fs::make_dirs(folder);
      vocab_map_.front().save(fs::join(folder, data::VocabMap::kFileName));
    }
    if (!tokenizer_json_.empty()) write_text_atomic(fs::join(folder, data::kModelTokenizerFileName), tokenizer_json_);
  }
  void set_vocab_map(const data::VocabMap& m) { vocab_map_.assign(1, m); }
  // The text of init_from's tokenizer.json, which the saved models carry (empty: GPT-2, none).
  void set_tokenizer_json(std::string text) { tokenizer_json_ = std::move(text); }
  void load_weights(const std::string& folder) override {
    const ModelConfig saved = ModelConfig::from_json_file(fs::join(folder, "config.json"));
    MCD_CHECK(saved.to_hf_json() == model_->config().to_hf_json(), folder,
              "/config.json: the checkpoint's model configuration differs from this run's");
    mcd::load_state(*model_, folder);
  }

  void begin_step(const StepContext& ctx) override {
    // On CUDA the batch is written into page-locked memory and copied without waiting (LibTorch's
    // host allocator keeps the block until its copy is done), and its ids are checked here, so
    // the model need not read them back from the device (ops/graph_capture.h): the host can queue
    // this step while the device still runs the last one.
    at::Tensor host = torch::empty({rows_per_rank_, window_}, torch::TensorOptions(torch::kLong).pinned_memory(device_.is_cuda()));
    data::sample_windows(train_, cfg_.train.seed, ctx.step, cfg_.train.batch_size, ctx.rank, ctx.world, window_,
                         host.data_ptr<int64_t>());
    const int64_t* ids = host.data_ptr<int64_t>();
    const int64_t vocab = model_->config().vocab_size;
    for (int64_t i = 0; i < host.numel(); ++i)
      MCD_CHECK(ids[i] >= 0 && ids[i] < vocab, cfg_.data.cache_dir, ": token id ", ids[i],
                " outside the model's vocabulary [0, ", vocab, ") (a cache built with another tokenizer?)");
    host_batch_ = host;
    batch_ = at::Tensor();  // made from host_batch_ when micro_batch_loss needs it (unless staged)
    staged_ = false;
    if (sparsity_) {
      sparsity_->begin_step(cfg_.train.seed, ctx.step);
      sparsity_->regularizer(ctx.step).backward();  // once per step, independent of the micro-batches
    }
  }
  // CUDA-graph steps (train.cuda_graphs): the step's windows go into one device buffer kept for the
  // run (a graph reads the same addresses at every replay). Learned gates draw noise and run their
  // regulariser outside the step (begin_step), so such runs stay eager (the config refuses the pair).
  std::string stage_micro_batch(const StepContext& ctx, int64_t micro) override {
    if (sparsity_ || ctx.micro_batches != 1 || micro != 0) return "";
    if (!staged_buffer_.defined())
      staged_buffer_ = torch::empty(host_batch_.sizes(), torch::TensorOptions(torch::kLong).device(device_));
    staged_buffer_.copy_(host_batch_, /*non_blocking=*/true);
    staged_ = true;
    return std::to_string(host_batch_.size(0)) + "x" + std::to_string(host_batch_.size(1));
  }
  at::Tensor micro_batch_loss(const StepContext& ctx, int64_t micro) override {
    const int64_t rows = rows_per_rank_ / ctx.micro_batches;
    const ops::InputsCheckedOnHost checked;  // in begin_step
    if (staged_) return model_->loss(staged_buffer_);
    if (!batch_.defined()) batch_ = host_batch_.to(device_, /*non_blocking=*/true);
    return model_->loss(batch_.narrow(0, micro * rows, rows));
  }
  void end_step(const StepContext& ctx) override {
    if (sparsity_) sparsity_->end_step(ctx.step);
  }

  nlohmann::json evaluate(Communicator& comm) override {
    torch::NoGradGuard no_grad;
    model_->eval();
    const int64_t available = data::num_sequential_windows(val_.size, window_);
    const int64_t n = cfg_.eval.windows > 0 ? std::min(cfg_.eval.windows, available) : available;
    const int64_t eb = cfg_.eval.batch_size;
    double loss_sum = 0, count = 0;
    std::vector<int64_t> rows;
    // Windows are dealt to ranks round-robin; sums are combined over ranks.
    for (int64_t first = comm.rank() * eb; first < n; first += comm.world_size() * eb) {
      const int64_t b = std::min(eb, n - first);
      rows.assign(size_t(b * window_), 0);
      for (int64_t i = 0; i < b; ++i) data::sequential_window(val_, first + i, window_, rows.data() + i * window_);
      loss_sum += windows_loss(rows, b) * double(b * cfg_.train.seq_len);
      count += double(b * cfg_.train.seq_len);
    }
    model_->train();
    loss_sum = comm.sum(loss_sum);
    count = comm.sum(count);
    return {{"val_loss", count > 0 ? loss_sum / count : NAN}};
  }

  double units_per_step() const override { return double(cfg_.train.batch_size * cfg_.train.seq_len); }
  nlohmann::json step_metrics(int64_t done) override {
    return sparsity_ ? nlohmann::json{{"sdm", sparsity_->metrics(done)}} : nlohmann::json::object();
  }
  std::string progress_suffix(int64_t done) override {
    if (!sparsity_) return "";
    const auto m = sparsity_->metrics(done);
    char buf[128];
    std::snprintf(buf, sizeof(buf), " | sparsity %.3f (det %.3f, target %.3f)", m["expected_sparsity"].get<double>(),
                  m["deterministic_sparsity"].get<double>(), m["target_sparsity"].get<double>());
    return buf;
  }
  nlohmann::json state() const override {
    return sparsity_ ? nlohmann::json{{"sdm", sparsity_->state()}} : nlohmann::json::object();
  }
  void load_state(const nlohmann::json& j) override {
    if (sparsity_ && j.contains("sdm")) sparsity_->load_state(j["sdm"]);
  }
  void finish(nlohmann::json& summary) override {
    summary["parameters"] = model_->config().num_parameters();
    if (sparsity_) summary["sdm"] = sparsity_->metrics(summary["steps"].get<int64_t>());
    // The baseline a language model must beat: a unigram model of the training tokens.
    const auto unigram = data::UnigramModel::fit(train_, model_->config().vocab_size);
    if (val_.size > 0) summary["unigram_val_loss"] = unigram.cross_entropy(val_);
    if (!corpus_.empty()) {
      summary["corpus_val_loss"] = corpus_loss();
      const std::vector<uint16_t> predicted = corpus_predicted();
      summary["unigram_corpus_val_loss"] = unigram.cross_entropy({predicted.data(), int64_t(predicted.size())});
      summary["corpus_val_tokens"] = int64_t(predicted.size());
      summary["corpus_val_paths"] = cfg_.eval.corpus;
    }
  }

  // eval.corpus as consecutive windows of seq_len + 1 tokens, row-major.
  void set_corpus(std::vector<uint16_t> windows) { corpus_ = std::move(windows); }

 private:
  const TrainConfig& cfg_;
  MambaLM model_;
  data::TokenSpan train_, val_;
  torch::Device device_;
  int64_t window_, rows_per_rank_;
  at::Tensor host_batch_;     // this rank's windows of the step (page-locked on CUDA), from begin_step
  at::Tensor batch_;          // the same on the device, for eager steps
  at::Tensor staged_buffer_;  // the same in the one buffer CUDA-graph steps read (stage_micro_batch)
  bool staged_ = false;       // this step's windows are in staged_buffer_
  std::optional<sdm::SparsityController> sparsity_;
  std::vector<data::VocabMap> vocab_map_;  // empty or one: the restricted vocabulary
  std::string tokenizer_json_;
  std::vector<uint16_t> corpus_;            // eval.corpus's tokens, whole windows

  // The model's mean loss over the b · seq_len predicted tokens of `rows` (b windows, row-major), in
  // the run's precision: the validation split's and eval.corpus's evaluations both go through here.
  double windows_loss(std::vector<int64_t>& rows, int64_t b) {
    const at::Tensor ids = torch::from_blob(rows.data(), {b, window_}, torch::kLong).to(device_);
    const at::Tensor loss = [&] {
      CudaAutocastScope autocast(cfg_.train.precision == "bf16");
      return model_->loss(ids);
    }();
    return loss.item<double>();
  }

  // Mean loss per predicted token of the final model over every window of corpus_.
  double corpus_loss() {
    torch::NoGradGuard no_grad;
    model_->eval();
    const int64_t windows = int64_t(corpus_.size()) / window_;
    double loss_sum = 0;
    std::vector<int64_t> rows;
    for (int64_t first = 0; first < windows; first += cfg_.eval.batch_size) {
      const int64_t b = std::min(cfg_.eval.batch_size, windows - first);
      rows.assign(corpus_.begin() + first * window_, corpus_.begin() + (first + b) * window_);
      loss_sum += windows_loss(rows, b) * double(b);
    }
    model_->train();
    return loss_sum / double(windows);
  }
  // The tokens corpus_loss predicts (each window's first token is context only), for the unigram
  // baseline on exactly the same tokens.
  std::vector<uint16_t> corpus_predicted() const {
    std::vector<uint16_t> out;
    for (size_t w = 0; w + size_t(window_) <= corpus_.size(); w += size_t(window_))
      out.insert(out.end(), corpus_.begin() + w + 1, corpus_.begin() + w + window_);
    return out;
  }
};

}  // namespace

nlohmann::json run_pretraining(const TrainConfig& cfg, const TrainOptions& options) {
  const DistEnv env = DistEnv::from_environment();
  const torch::Device device = resolve_device(cfg.run.device, env);
  if (cfg.run.threads > 0) {  // both pools, as --threads (util/cpu_threads.h); the BLAS pool first
    set_blas_threads(int(cfg.run.threads));
    at::set_num_threads(int(cfg.run.threads));
  }
  const ops::ScopedOpsOptions ops_scope(cfg.ops.apply(ops::ops_options()));
  MCD_CHECK(cfg.train.precision == "fp32" || device.is_cuda(), cfg.source,
            ": train.precision=bf16 needs a CUDA device (got ", device, ")");
  const int64_t world = env.world_size;
  MCD_CHECK(cfg.train.batch_size % (world * cfg.train.grad_accum) == 0, cfg.source,
            ": train.batch_size=", cfg.train.batch_size, " must be a multiple of world_size x grad_accum = ", world,
            " x ", cfg.train.grad_accum);
  Communicator comm(env, device.is_cuda() ? "nccl" : "gloo");
  const bool main = comm.is_main();
  auto log = [&](const std::string& line) {
    if (main) std::cerr << line << std::endl;
  };

  // Data: rank 0 builds (or validates) the token cache, the others open it afterwards. The tokenizer
  // is init_from's own (its tokenizer.json, else GPT-2), GPT-2 for a model trained from scratch.
  data::BpeTokenizer tokenizer =
      cfg.model.init_from.empty() ? data::BpeTokenizer::load_default() : data::model_base_tokenizer(cfg.model.init_from);
  // A restricted vocabulary: the config's data.vocab_map, else the one init_from carries.
  std::string map_file = cfg.data.vocab_map;
  const std::string init_map =
      cfg.model.init_from.empty() ? "" : fs::join(cfg.model.init_from, data::VocabMap::kFileName);
  if (map_file.empty() && !init_map.empty() && fs::exists(init_map)) map_file = init_map;
  if (!map_file.empty()) {
    tokenizer = tokenizer.restricted(data::VocabMap::load(map_file), map_file);
    if (!init_map.empty())
      MCD_CHECK(fs::exists(init_map) && data::VocabMap::load(init_map).fingerprint() == tokenizer.fingerprint(),
                cfg.source, ": data.vocab_map ", map_file, " is not the vocabulary of model.init_from ",
                cfg.model.init_from, fs::exists(init_map) ? " (its vocab_map.json differs)" : " (it has none)");
  }
  data::CorpusSpec spec;
  spec.format = cfg.data.format;
  spec.paths = cfg.data.paths;
  data::TokenCacheOptions cache_options;
  cache_options.cache_dir = cfg.data.cache_dir;
  cache_options.val_fraction = cfg.data.val_fraction;
  cache_options.split_seed = cfg.data.split_seed;
  cache_options.max_documents = cfg.data.max_documents;
  cache_options.log = [&](const std::string& line) { log("data: " + line); };
  std::optional<data::TokenCache> cache;
  if (main) cache = data::TokenCache::open_or_build(spec, tokenizer, cache_options);
  comm.barrier();
  if (!main) cache = data::TokenCache::open_or_build(spec, tokenizer, cache_options);
  const data::TokenSpan train_tokens = cache->train(), val_tokens = cache->val();
  const int64_t window = cfg.train.seq_len + 1;
  MCD_CHECK(train_tokens.size >= window, cfg.data.cache_dir, ": only ", train_tokens.size,
            " training tokens, fewer than one window of ", window);
  MCD_CHECK(data::num_sequential_windows(val_tokens.size, window) > 0, cfg.data.cache_dir, ": the validation split has ",
            val_tokens.size, " tokens, fewer than one window of ", window, "; raise data.val_fraction or add documents");

  // Model.
  ModelConfig model_config = cfg.model_config();
  if (tokenizer.vocab_map() && cfg.model.init_from.empty()) {
    // The map decides the vocabulary: its ids, the embedding padded to a multiple of 8 (METHOD §1;
    // the padding rows are never produced), <|endoftext|> as eos/bos/pad as for GPT-2.
    const int64_t k = tokenizer.vocab_map()->size();
    model_config.tokenizer_vocab_size = k;
    model_config.vocab_size = (k + 7) / 8 * 8;
    model_config.eos_token_id = model_config.bos_token_id = model_config.pad_token_id = tokenizer.eot_id();
    model_config.validate(cfg.source + " [data.vocab_map]");
    log("pretrain: vocabulary restricted to " + std::to_string(k) + " ids by " + map_file);
  }
  MCD_CHECK(model_config.vocab_size >= int64_t(tokenizer.vocab_size()), cfg.source, ": the model's vocabulary (",
            model_config.vocab_size, ") is smaller than the tokenizer's (", tokenizer.vocab_size(), ")");
  MambaLM model(model_config);
  if (cfg.model.init_from.empty()) {
    init_reference(*model, cfg.train.seed);
  } else {
    // Gates a gate-less init_from lacks keep their initial logits.
    load_state(*model, cfg.model.init_from, is_gate_parameter);
  }
  model->to(device);
  model->train();
  log("pretrain: " + std::to_string(model_config.num_parameters()) + " parameters, " +
      std::to_string(train_tokens.size) + " train / " + std::to_string(val_tokens.size) + " val tokens, device " +
      device.str() + ", world " + std::to_string(world) + ", " + cfg.train.precision);

  LmObjective objective(cfg, model, train_tokens, val_tokens, device, int(world));
  if (tokenizer.vocab_map()) objective.set_vocab_map(*tokenizer.vocab_map());
  if (!cfg.model.init_from.empty()) {
    const std::string tokenizer_file = fs::join(cfg.model.init_from, data::kModelTokenizerFileName);
    if (fs::exists(tokenizer_file)) objective.set_tokenizer_json(fs::read_file(tokenizer_file));
  }
  if (!cfg.eval.corpus.empty() && main) {
    // Read now, so that a missing or empty corpus fails before the training, not after it.
    data::CorpusSpec corpus;
    corpus.format = cfg.eval.corpus_format;
    corpus.paths = cfg.eval.corpus;
    data::WindowOptions wo;
    wo.seq_len = window;
    const data::TokenWindows w = data::read_token_windows(corpus, tokenizer, wo);
    MCD_CHECK(w.rows > 0, cfg.source, ": eval.corpus has no window of ", window, " tokens");
    objective.set_corpus(std::vector<uint16_t>(w.ids.begin(), w.ids.end()));
    log("pretrain: eval.corpus: " + std::to_string(w.rows) + " windows of " + std::to_string(window) + " tokens from " +
        std::to_string(w.documents) + " documents");
  }
  LoopSettings s;
  s.steps = cfg.train.steps;
  s.grad_accum = cfg.train.grad_accum;
  s.warmup_steps = cfg.train.warmup_steps;
  s.lr = cfg.train.lr;
  s.min_lr_ratio = cfg.train.min_lr_ratio;
  s.optimizer = {cfg.train.lr, cfg.train.weight_decay, cfg.train.beta1, cfg.train.beta2, cfg.train.eps, cfg.sdm.gate_lr};
  s.grad_clip = cfg.train.grad_clip;
  s.bf16 = cfg.train.precision == "bf16";
  s.eval_interval = cfg.eval.interval;
  s.checkpoint_interval = cfg.checkpoint.interval;
  s.keep_last = cfg.checkpoint.keep_last;
  s.log_interval = cfg.run.log_interval;
  s.max_minutes = cfg.run.max_minutes;
  s.out_dir = cfg.run.out_dir;
  s.source = cfg.source;
  s.seed = cfg.train.seed;
  s.cuda_graphs = cfg.train.cuda_graphs;
  if (cfg.train.cuda_graphs && (!device.is_cuda() || comm.world_size() != 1))
    log("pretrain: train.cuda_graphs needs one process on a CUDA device; this run (" + device.str() + ", " +
        std::to_string(comm.world_size()) + " process(es)) steps eagerly");
  return run_training_loop(objective, comm, device, s, options);
}

}  // namespace mcd::train
