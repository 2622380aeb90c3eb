// One fine-tuning run (see finetune.h).
#include "finetune/finetune.h"

#include <chrono>
#include <cmath>
#include <iostream>
#include <map>

#include "data/hash64.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/vocab_map.h"
#include "finetune/batching.h"
#include "finetune/scoring.h"
#include "io/safetensors_torch.h"
#include "model/checkpoint.h"
#include "peft/peft_model.h"
#include "train/loop.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::finetune {
namespace {

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;

// Independent random streams of one seed.
enum Stream : uint64_t { kHead = 1, kAdapters = 2, kData = 3, kDropout = 4, kSubsample = 5 };
uint64_t stream_seed(uint64_t seed, Stream s, uint64_t counter = 0) {
  return data::mix64(data::mix64(seed ^ (uint64_t(s) << 56)) + counter);
}

class ClassificationObjective : public train::Objective {
 public:
  ClassificationObjective(MambaClassifier model, const TaskData& task, std::vector<EncodedSplit> evals,
                          EncodedSplit train, const FinetuneSettings& s)
      : model_(std::move(model)), task_(task), evals_(std::move(evals)), train_(std::move(train)), s_(s) {
    lengths_ = lengths_of(train_);
    // On CUDA every training batch is padded to a multiple of 16 tokens, with graphs or without, so
    // both run the same shapes (and a task has at most max_length / 16 graph keys per batch size).
    length_multiple_ = s.device.is_cuda() ? 16 : 1;
    steps_per_epoch_ = (int64_t(train_.ids.size()) + s.batch_size - 1) / s.batch_size;
    pad_id_ = model_->backbone->config.pad_token_id;
  }

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  MambaClassifierImpl& model() { return *model_; }

  torch::nn::Module& module() override { return *model_; }

  void save_weights(const std::string& folder) override {
    fs::make_dirs(folder);
    io::save_safetensors(fs::join(folder, "trainable.safetensors"), trainable_tensors());
    if (!best_.empty()) io::save_safetensors(fs::join(folder, "best.safetensors"), best_);
  }
  void load_weights(const std::string& folder) override {
    load_trainable(fs::join(folder, "trainable.safetensors"));
    best_.clear();
    const std::string best = fs::join(folder, "best.safetensors");
    if (fs::exists(best))
      for (auto& [name, t] : io::load_safetensors(best)) best_.emplace_back(name, t.to(s_.device));
  }

  void begin_step(const train::StepContext& ctx) override {
    const int64_t epoch = ctx.step / steps_per_epoch_, index = ctx.step % steps_per_epoch_;
    if (epoch != cached_epoch_) {
      batches_ = epoch_batches(lengths_, s_.batch_size, stream_seed(s_.seed, kData), epoch);
      cached_epoch_ = epoch;
    }
    // Rows of this rank's share, split into micro-batches below.
    const auto& all = batches_.at(index);
    const int64_t pieces = int64_t(ctx.world) * ctx.micro_batches;
    MCD_CHECK(int64_t(all.size()) >= pieces, "a batch of ", all.size(), " examples cannot be split into ", pieces,
              " pieces (ranks × grad_accum); use a larger batch");
    step_rows_.clear();
    for (int64_t m = 0; m < ctx.micro_batches; ++m) {
      const int64_t piece = int64_t(ctx.rank) * ctx.micro_batches + m;
      const size_t lo = all.size() * piece / pieces, hi = all.size() * (piece + 1) / pieces;
      step_rows_.emplace_back(all.begin() + lo, all.begin() + hi);
    }
    // Dropout draws from the global generator: reseeding it from (seed, step) makes them
    // counter-based, so a resumed run draws the same masks.
    torch::manual_seed(stream_seed(s_.seed, kDropout, uint64_t(ctx.step)));
    model_->train();
    set_gates_eval();
    staged_ = nullptr;
  }

  // The batch goes into buffers kept per (rows, length): a CUDA graph reads them (ops/step_graphs.h).
  // The checks the model would read back from the device are done here on the host.
  std::string stage_micro_batch(const train::StepContext&, int64_t micro) override {
    const Batch host = collate(train_, step_rows_.at(micro), task_.regression, pad_id_, torch::kCPU,
                               length_multiple_, /*pinned=*/s_.device.is_cuda());
    const int64_t B = host.input_ids.size(0), L = host.input_ids.size(1);
    const auto [lo, hi] = at::aminmax(host.input_ids);
    const int64_t vocab = model_->backbone->config.vocab_size;
    MCD_CHECK(lo.item<int64_t>() >= 0 && hi.item<int64_t>() < vocab, "fine-tuning batch: token ids must be in [0, ",
              vocab, ")");
    MCD_CHECK(host.lengths.min().item<int64_t>() >= 1 && host.lengths.max().item<int64_t>() <= L,
              "fine-tuning batch: lengths must be in [1, ", L, "]");
    const std::string key = std::to_string(B) + "x" + std::to_string(L);
    Batch& buf = staged_buffers_[key];
    if (!buf.input_ids.defined()) {
      auto on_device = [&](const at::Tensor& t) {
        return torch::empty(t.sizes(), torch::TensorOptions().dtype(t.scalar_type()).device(s_.device));
      };
      buf = {on_device(host.input_ids), on_device(host.lengths), on_device(host.labels)};
    }
    buf.input_ids.copy_(host.input_ids, /*non_blocking=*/true);
    buf.lengths.copy_(host.lengths, true);
    buf.labels.copy_(host.labels, true);
    staged_ = &buf;
    return key;
  }

  at::Tensor micro_batch_loss(const train::StepContext& ctx, int64_t micro) override {
    const auto& rows = step_rows_.at(micro);
    const Batch b = staged_ ? *staged_ : collate(train_, rows, task_.regression, pad_id_, s_.device, length_multiple_);
    const at::Tensor logits = model_->forward(b.input_ids, b.lengths);
    // The loop averages micro-batch means: weight each by its share of the step's rows.
    const double weight = double(rows.size()) * double(ctx.micro_batches) * double(ctx.world) /
                          double(batches_.at(ctx.step % steps_per_epoch_).size());
    return loss_of(logits, b.labels) * weight;
  }

  nlohmann::json evaluate(train::Communicator&) override {
    const auto started = Clock::now();
    model_->eval();
    torch::NoGradGuard no_grad;
    std::vector<SplitPredictions> preds;
    double loss_sum = 0;
    int64_t count = 0;
    for (const auto& split : evals_) {
      SplitPredictions p;
      p.split = split.name;
      const auto lengths = lengths_of(split);
      for (const auto& rows : eval_batches(lengths, s_.eval_batch_size)) {
        const Batch b = collate(split, rows, task_.regression, pad_id_, s_.device);
        at::Tensor logits;
        {
          CudaAutocastScope autocast(s_.bf16 && s_.device.is_cuda());
          logits = model_->forward(b.input_ids, b.lengths);
        }
        logits = logits.to(at::kFloat);
        loss_sum += loss_of(logits, b.labels).item<double>() * double(rows.size());
        count += int64_t(rows.size());
        append_predictions(logits.cpu(), b.labels.cpu(), p);
      }
      preds.push_back(std::move(p));
    }
    const eval::TaskScore score = score_predictions(task_.task, task_.regression, task_.num_labels, preds);
    ++evaluations_;
    const double epoch = double(current_step_) / double(steps_per_epoch_);
    nlohmann::json e = {{"val_loss", loss_sum / double(std::max<int64_t>(1, count))},
                        {"epoch", epoch},
                        {"score", score.score},
                        {"eval_seconds", std::chrono::duration<double>(Clock::now() - started).count()}};
    for (const auto& m : score.metrics) e[m.name] = m.value;
    history_.push_back(e);
    history_.back()["step"] = current_step_;
    if (!std::isfinite(best_score_) || score.score > best_score_) {
      best_score_ = score.score;
      best_step_ = current_step_;
      best_eval_ = history_.back();
      best_ = trainable_tensors(/*clone=*/true);
    }
    model_->train();
    set_gates_eval();
    return e;
  }

  void end_step(const train::StepContext& ctx) override {
    current_step_ = ctx.step + 1;
    staged_ = nullptr;
  }

  std::string describe_evaluation(const nlohmann::json& e) const override {
    char line[160];
    std::snprintf(line, sizeof(line), "epoch %.2f: dev loss %.4f, score %.2f (best %.2f)", e.at("epoch").get<double>(),
                  e.at("val_loss").get<double>(), e.at("score").get<double>(), best_score_);
    return line;
  }
  bool reports_perplexity() const override { return false; }
  double units_per_step() const override { return double(s_.batch_size); }
  const char* unit_name() const override { return "ex"; }

  nlohmann::json state() const override {
    return {{"best_score", std::isfinite(best_score_) ? nlohmann::json(best_score_) : nlohmann::json(nullptr)},
            {"step", current_step_},
            {"best_step", best_step_},
            {"best_eval", best_eval_},
            {"history", history_}};
  }
  void load_state(const nlohmann::json& j) override {
    best_score_ = j.value("best_score", nlohmann::json(nullptr)).is_number() ? j["best_score"].get<double>() : NAN;
    current_step_ = j.value("step", int64_t(0));
    best_step_ = j.value("best_step", int64_t(0));
    best_eval_ = j.value("best_eval", nlohmann::json());
    history_ = j.value("history", nlohmann::json::array());
  }

  // Puts the best evaluation's trainable weights back into the model.
  void restore_best() {
    MCD_CHECK(!best_.empty(), "fine-tuning ended without an evaluation");
    torch::NoGradGuard no_grad;
    auto params = model_->named_parameters();
    for (const auto& [name, t] : best_) params[name].copy_(t);
  }
  const nlohmann::json& history() const { return history_; }
  const nlohmann::json& best_eval() const { return best_eval_; }
  int64_t best_step() const { return best_step_; }
  double best_score() const { return best_score_; }

 private:
  at::Tensor loss_of(const at::Tensor& logits, const at::Tensor& labels) const {
    if (task_.regression) return F::mse_loss(logits.squeeze(1).to(at::kFloat), labels.to(at::kFloat));
    return F::cross_entropy(logits.to(at::kFloat), labels);
  }

  void append_predictions(const at::Tensor& logits, const at::Tensor& labels, SplitPredictions& p) const {
    if (task_.regression) {
      const at::Tensor v = logits.squeeze(1).to(at::kDouble).contiguous();
      const at::Tensor l = labels.to(at::kDouble).contiguous();
      for (int64_t i = 0; i < v.size(0); ++i) {
        p.predicted_scores.push_back(v.data_ptr<double>()[i]);
        p.label_scores.push_back(l.data_ptr<double>()[i]);
      }
    } else {
      const at::Tensor a = logits.argmax(1).to(at::kLong).contiguous();
      for (int64_t i = 0; i < a.size(0); ++i) {
        p.predicted.push_back(int(a.data_ptr<int64_t>()[i]));
        p.labels.push_back(int(labels.data_ptr<int64_t>()[i]));
      }
    }
  }

  std::vector<std::pair<std::string, at::Tensor>> trainable_tensors(bool clone = false) {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& p : model_->named_parameters())
      if (p.value().requires_grad()) out.emplace_back(p.key(), clone ? p.value().detach().clone() : p.value());
    return out;
  }

  void load_trainable(const std::string& path) {
    auto tensors = io::load_safetensors(path);
    torch::NoGradGuard no_grad;
    for (auto& p : model_->named_parameters()) {
      if (!p.value().requires_grad()) continue;
      auto it = tensors.find(p.key());
      MCD_CHECK(it != tensors.end(), path, ": tensor '", p.key(), "' is missing");
      MCD_CHECK(it->second.sizes() == p.value().sizes(), path, ": tensor '", p.key(), "' has shape ",
                it->second.sizes(), ", expected ", p.value().sizes());
      p.value().copy_(it->second);
      tensors.erase(it);
    }
    MCD_CHECK(tensors.empty(), path, ": unexpected tensor '", tensors.empty() ? "" : tensors.begin()->first,
              "' (another method's checkpoint?)");
  }

  void set_gates_eval() {
    for (auto& g : model_->backbone->gates()) g->eval();
  }

  MambaClassifier model_;
  const TaskData& task_;
  std::vector<EncodedSplit> evals_;
  EncodedSplit train_;
  const FinetuneSettings& s_;
  std::vector<int64_t> lengths_;
  int64_t steps_per_epoch_ = 1, pad_id_ = 0;
  int64_t cached_epoch_ = -1;
  int64_t length_multiple_ = 1;
  std::map<std::string, Batch> staged_buffers_;  // by "<rows>x<length>"
  const Batch* staged_ = nullptr;                // this step's, when staged
  std::vector<std::vector<int64_t>> batches_;
  std::vector<std::vector<int64_t>> step_rows_;
  int64_t current_step_ = 0, evaluations_ = 0;
  double best_score_ = NAN;
  int64_t best_step_ = 0;
  nlohmann::json best_eval_, history_ = nlohmann::json::array();
  std::vector<std::pair<std::string, at::Tensor>> best_;
};

// Majority-class accuracy on the (first) evaluation split, in points; null for regression.
// The majority-class predictor (the training set's most frequent label on every example), scored
// with the task's own metric so that it compares with the runs' scores: MCC 0 on CoLA, the mean of
// F1 and accuracy on MRPC. "accuracy" per split is kept beside it for reading.
nlohmann::json majority_baseline(const TaskData& task) {
  if (task.regression) return nullptr;  // a constant prediction has no correlation
  const int label = data::glue::majority_label(task.train);
  nlohmann::json out = nlohmann::json::object();
  std::vector<SplitPredictions> constant;
  for (const auto& e : task.evals) {
    SplitPredictions p;
    p.split = e.split;
    int64_t hits = 0;
    for (const auto& x : e.examples) {
      p.labels.push_back(int(x.label));
      p.predicted.push_back(label);
      hits += int(x.label) == label ? 1 : 0;
    }
    out["accuracy"][e.split] = 100.0 * double(hits) / double(e.examples.size());
    constant.push_back(std::move(p));
  }
  out["score"] = score_predictions(task.task, task.regression, task.num_labels, constant).score;
  out["label"] = task.label_names.empty() ? std::to_string(label) : task.label_names[label];
  return out;
}

// Largest |Δ logit| between the model and its merged copy on the first evaluation batch.
double merge_difference(MambaClassifierImpl& model, MambaClassifierImpl& merged, const EncodedSplit& split,
                        int64_t batch, bool regression, int64_t pad_id, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  model.eval();
  merged.eval();
  const auto rows = eval_batches(lengths_of(split), batch).front();
  const Batch b = collate(split, rows, regression, pad_id, device);
  return (model.forward(b.input_ids, b.lengths) - merged.forward(b.input_ids, b.lengths)).abs().max().item<double>();
}

}  // namespace

double default_lr(peft::Method m) {
  switch (m) {
    case peft::Method::kFull: return 5e-5;
    case peft::Method::kProbe: return 1e-3;
    case peft::Method::kLora:
    case peft::Method::kSgh: return 5e-4;
    case peft::Method::kIa3: return 3e-3;
  }
  return 1e-4;
}

nlohmann::json run_finetune(const FinetuneSettings& s) {
  const auto started = Clock::now();
  MCD_CHECK(!s.out_dir.empty(), "fine-tuning needs an output folder (--out)");
  MCD_CHECK(s.epochs >= 1 || s.max_steps >= 1, "epochs must be at least 1");
  MCD_CHECK(s.batch_size >= 1 && s.eval_batch_size >= 1 && s.grad_accum >= 1, "batch sizes must be positive");
  MCD_CHECK(s.warmup_ratio >= 0 && s.warmup_ratio < 1, "warmup ratio must be in [0, 1), got ", s.warmup_ratio);
  auto log = [&](const std::string& line) {
    if (!s.quiet) std::cerr << line << std::endl;
  };

  // Data.
  TaskData task = load_task(s.data);
  subsample(task.train, s.max_train_examples, stream_seed(s.seed, kSubsample));
  for (auto& e : task.evals) subsample(e, s.max_eval_examples, stream_seed(s.seed, kSubsample, 1));

  // Model: the pretrained backbone, a seeded head, the method's adapters and frozen set. Its
  // tokenizer is the folder's (data::tokenizer_for_model: its tokenizer.json, else GPT-2's; restricted
  // by its vocab_map.json when it has one).
  MambaLM lm = load_pretrained(s.model_dir, {s.device, at::kFloat});
  const ModelConfig& config = lm->config();
  const data::BpeTokenizer tokenizer = data::tokenizer_for_model(s.model_dir, config.real_vocab_size());
  EncodeOptions eo;
  eo.max_length = s.max_length;
  eo.separator_id = eo.end_id = int32_t(config.eos_token_id);
  EncodedSplit train = encode(task.train, tokenizer, eo);
  std::vector<EncodedSplit> evals;
  for (const auto& e : task.evals) evals.push_back(encode(e, tokenizer, eo));
  for (const auto* sp : [&] {
         std::vector<const EncodedSplit*> v{&train};
         for (const auto& e : evals) v.push_back(&e);
         return v;
       }())
    MCD_CHECK(sp->max_token_id() < config.real_vocab_size(), "token id ", sp->max_token_id(), " of split ", sp->name,
              " is outside the model's vocabulary (", config.real_vocab_size(), " ids, ", s.model_dir, ")");
  MambaClassifier model(lm->backbone, task.num_labels, s.pooling);
  {
    torch::NoGradGuard no_grad;
    at::Generator gen = make_cpu_generator(stream_seed(s.seed, kHead));
    model->classifier->weight.copy_(torch::empty(model->classifier->weight.sizes(), at::kFloat).normal_(0, 0.02, gen));
    model->classifier->bias.zero_();
  }
  model->to(s.device);
  peft::LayerImportances importances;
  const bool sgh = s.peft.method == peft::Method::kSgh;
  if (sgh) {
    MCD_CHECK(!s.importance_file.empty(), "method sgh needs --importance FILE (written by `prune` or `importance`)");
    importances = peft::read_layer_importances(s.importance_file);
  }
  const peft::Allocation allocation = peft::allocate(s.peft.method, int64_t(model->backbone->blocks.size()), s.peft,
                                                     sgh ? &importances : nullptr);
  peft::prepare(*model, allocation, s.peft, stream_seed(s.seed, kAdapters));
  const peft::ParameterCounts counts = peft::count_parameters(*model);
  log(peft::describe(allocation));
  log("parameters: " + std::to_string(counts.trainable) + " trainable of " + std::to_string(counts.total) +
      " (head " + std::to_string(counts.head) + ", adapters " + std::to_string(counts.adapters) + ")");

  nlohmann::json truncated = {{"train", train.truncated}};
  for (const auto& e : evals) truncated[e.name] = e.truncated;
  ClassificationObjective objective(model, task, std::move(evals), std::move(train), s);
  const int64_t spe = objective.steps_per_epoch();
  train::LoopSettings ls;
  ls.steps = s.max_steps > 0 ? s.max_steps : s.epochs * spe;
  ls.grad_accum = s.grad_accum;
  ls.warmup_steps = int64_t(std::floor(s.warmup_ratio * double(ls.steps)));
  ls.lr = s.lr > 0 ? s.lr : default_lr(s.peft.method);
  ls.min_lr_ratio = 0;
  ls.schedule = train::Schedule::kLinear;
  ls.optimizer.lr = ls.lr;
  ls.optimizer.weight_decay = s.weight_decay;
  ls.optimizer.beta2 = 0.999;
  ls.grad_clip = s.grad_clip;
  ls.bf16 = s.bf16 && s.device.is_cuda();
  ls.eval_interval = spe;
  ls.checkpoint_interval = spe;
  ls.keep_last = 1;
  ls.log_interval = std::max<int64_t>(1, spe / 10);
  ls.max_minutes = s.max_minutes;
  ls.out_dir = s.out_dir;
  ls.source = s.model_dir;
  ls.seed = s.seed;
  ls.cuda_graphs = s.cuda_graphs && s.device.is_cuda();
  train::TrainOptions to;
  to.resume = s.resume;
  to.quiet = s.quiet;
  to.faults = s.faults;
  train::Communicator comm(train::DistEnv{}, "gloo");
  const nlohmann::json summary = train::run_training_loop(objective, comm, s.device, ls, to);

  // The best epoch's weights are the result.
  objective.restore_best();
  MambaClassifierImpl& best = objective.model();
  nlohmann::json result = {
      {"format", "mcd-finetune-result"},
      {"version", 1},
      {"task", task.task},
      {"method", peft::method_name(s.peft.method)},
      {"seed", s.seed},
      {"model", s.model_dir},
      {"regression", task.regression},
      {"num_labels", task.num_labels},
      {"label_names", task.label_names},
      {"examples", {{"train", task.train.examples.size()}, {"eval", [&] {
                       nlohmann::json e = nlohmann::json::object();
                       for (const auto& d : task.evals) e[d.split] = d.examples.size();
                       return e;
                     }()}}},
      {"subsampled", {{"max_train_examples", s.max_train_examples}, {"max_eval_examples", s.max_eval_examples}}},
      {"truncated", truncated},
      {"majority_baseline", majority_baseline(task)},
      {"settings",
       {{"epochs", s.epochs}, {"max_steps", s.max_steps}, {"steps", ls.steps}, {"steps_per_epoch", spe},
        {"batch_size", s.batch_size}, {"grad_accum", s.grad_accum}, {"max_length", s.max_length},
        {"lr", ls.lr}, {"weight_decay", s.weight_decay}, {"warmup_steps", ls.warmup_steps},
        {"schedule", "linear"}, {"grad_clip", s.grad_clip}, {"pooling", pooling_name(s.pooling)},
        {"precision", ls.bf16 ? "bf16" : "fp32"}, {"device", s.device.str()}, {"cuda_graphs", ls.cuda_graphs},
        {"peft", peft::settings_to_json(s.peft)}}},
      {"allocation", peft::allocation_to_json(allocation)},
      {"parameters", counts.to_json()},
      {"history", objective.history()},
      {"best", objective.best_eval()},
      {"best_step", objective.best_step()},
      {"score", objective.best_score()},
      {"train_summary", summary}};

  // Outputs: adapters alone, or the whole model for full fine-tuning; merged on request.
  const nlohmann::json extra = {{"task", task.task}, {"label_names", task.label_names}, {"regression", task.regression},
                                {"method", peft::method_name(s.peft.method)}, {"seed", s.seed}};
  if (s.peft.method == peft::Method::kFull) {
    save_classifier(best, fs::join(s.out_dir, "model"), extra);
    data::copy_tokenizer_files(s.model_dir, fs::join(s.out_dir, "model"));
    result["outputs"]["model"] = fs::join(s.out_dir, "model");
  } else {
    peft::save_adapters(best, allocation, s.peft, fs::join(s.out_dir, "adapters"));
    result["outputs"]["adapters"] = fs::join(s.out_dir, "adapters");
  }
  if (s.merge && s.peft.method != peft::Method::kFull) {
    // A copy through the saved files: base model + adapters, then folded.
    MambaLM base = load_pretrained(s.model_dir, {s.device, at::kFloat});
    MambaClassifier merged(base->backbone, task.num_labels, s.pooling);
    merged->to(s.device);
    peft::load_adapters(*merged, fs::join(s.out_dir, "adapters"));
    peft::merge_adapters(*merged->backbone);
    EncodedSplit probe = encode(task.evals.front(), tokenizer, eo);
    const double diff = merge_difference(best, *merged, probe, s.eval_batch_size, task.regression,
                                         config.pad_token_id, s.device);
    save_classifier(*merged, fs::join(s.out_dir, "merged"), extra);
    data::copy_tokenizer_files(s.model_dir, fs::join(s.out_dir, "merged"));
    result["outputs"]["merged"] = fs::join(s.out_dir, "merged");
    result["merge_check"] = {{"max_abs_logit_difference", diff}, {"batch", "the first (longest) dev batch"}};
    log("merged into " + fs::join(s.out_dir, "merged") + " (max |logit difference| " + std::to_string(diff) + ")");
  }
  if (!s.keep_checkpoints) {
    fs::remove_tree(fs::join(s.out_dir, "checkpoints"));
    fs::remove_tree(fs::join(s.out_dir, "final"));  // the loop's last weights; the best are saved above
  }
  result["wall_seconds"] = std::chrono::duration<double>(Clock::now() - started).count();
  write_text_atomic(fs::join(s.out_dir, "result.json"), result.dump(2) + "\n");
  log("best: epoch " + std::to_string(double(objective.best_step()) / double(spe)) + ", score " +
      std::to_string(objective.best_score()) + " → " + fs::join(s.out_dir, "result.json"));
  return result;
}

}  // namespace mcd::finetune
