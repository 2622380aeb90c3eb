// Timed workloads for `profile` (see profiler.h).
#include "infer/profiler.h"

#include <chrono>
#include <fstream>

#include "infer/graph_decoder.h"
#include "infer/graph_prefill.h"
#include "model/generation.h"
#include "ops/adamw_step.h"
#include "ops/graph_capture.h"
#include "ops/step_graphs.h"
#include "util/error.h"

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace mcd::infer {
namespace {

int64_t parse_positive(const std::string& s, const std::string& option, const std::string& item) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MCD_CHECK(used == s.size() && !s.empty() && v > 0, option, ": '", item, "' is not a positive integer");
  return v;
}

int64_t tensor_bytes(const at::Tensor& t) { return t.defined() ? t.numel() * int64_t(t.element_size()) : 0; }

}  // namespace

const char* case_kind_name(CaseKind kind) {
  switch (kind) {
    case CaseKind::kPrefill: return "prefill";
    case CaseKind::kDecode: return "decode";
    case CaseKind::kTrain: return "train";
  }
  return "?";
}

std::string ProfileCase::label() const {
  if (kind == CaseKind::kDecode)
    return "decode b" + std::to_string(batch) + (cuda_graph ? " graph" : "") + (sampling.empty() ? "" : " sampled");
  return std::string(case_kind_name(kind)) + " " + std::to_string(batch) + "x" + std::to_string(length) +
         (cuda_graph ? " graph" : "");
}

std::vector<ProfileCase> parse_cases(CaseKind kind, const std::string& text, int64_t decode_steps,
                                     const std::string& option) {
  std::vector<ProfileCase> out;
  if (text.empty()) return out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    ProfileCase c;
    c.kind = kind;
    if (kind == CaseKind::kDecode) {
      c.batch = parse_positive(item, option, item);
      c.length = decode_steps;
    } else {
      const size_t x = item.find('x');
      MCD_CHECK(x != std::string::npos, option, ": '", item, "' is not BATCHxLENGTH (e.g. 1x1024)");
      c.batch = parse_positive(item.substr(0, x), option, item);
      c.length = parse_positive(item.substr(x + 1), option, item);
      MCD_CHECK(kind != CaseKind::kTrain || c.length >= 2, option, ": '", item, "' needs length >= 2");
    }
    out.push_back(c);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int64_t parameter_bytes(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += tensor_bytes(p);
  return n;
}

std::string device_description(const torch::Device& device) {
#ifdef MCD_WITH_CUDA
  if (device.is_cuda()) return at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->name;
#endif
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) return line.substr(line.find(':') + 2);
  return "cpu";
}

struct CaseRunner::State {
  at::Tensor ids;        // prefill/train input (B, L); decode: the current tokens (B)
  InferenceCache cache;  // prefill/decode
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<GraphDecoder> decoder;  // decode with cuda_graph
  std::unique_ptr<TokenSampler> sampler;  // decode with sampling
  std::unique_ptr<GraphPrefill> prefill;  // prefill with cuda_graph
  std::unique_ptr<ops::StepGraphs> train_graph;  // train with cuda_graph
  uint64_t seed = 0;
  int64_t train_step = 0;  // gated models: each sample draws the gates' noise of its own step
};

CaseRunner::CaseRunner(MambaLM model, const ProfileCase& c, torch::Device device, uint64_t seed, bool autocast,
                       const CaseRunner* share_graph_memory_with)
    : model_(std::move(model)), case_(c), device_(device), autocast_(autocast), s_(std::make_unique<State>()) {
  torch::manual_seed(seed);
  const int64_t vocab = model_->config().real_vocab_size();
  s_->seed = seed;
  if (c.kind == CaseKind::kTrain) {
    // A captured step would replay the capture's gate noise at every sample (the key is a kernel
    // argument), so gated models train eagerly, as train.cuda_graphs refuses sdm.enabled.
    MCD_CHECK(!c.cuda_graph || model_->backbone->gates().empty(),
              "profile: a CUDA-graph training step of a model with SDM gates would replay one noise sample; "
              "use --train-mode eager for it");
    model_->train();
    s_->ids = torch::randint(vocab, {c.batch, c.length}, torch::TensorOptions(torch::kLong).device(device));
    s_->optimizer = std::make_unique<torch::optim::AdamW>(model_->parameters(), torch::optim::AdamWOptions(1e-4));
    // The graph keeps its side stream current from here on (ops/step_graphs.h), so the samples'
    // events and the optimizer step run on it too. The first sample (a warm-up) runs eagerly, the
    // second is captured.
    if (c.cuda_graph) {
      const ops::StepGraphs* other = share_graph_memory_with ? share_graph_memory_with->s_->train_graph.get() : nullptr;
      s_->train_graph = std::make_unique<ops::StepGraphs>(device, model_->parameters(),
                                                         ops::StepGraphs::kDefaultMaxGraphs, other);
    }
  } else {
    model_->eval();
    torch::NoGradGuard no_grad;
    // Graph decoding keeps its own cache (the buffers its graph was captured on).
    if (!c.cuda_graph) s_->cache = model_->new_cache(c.batch);
    if (c.kind == CaseKind::kPrefill) {
      s_->ids = torch::randint(vocab, {c.batch, c.length}, torch::TensorOptions(torch::kLong).device(device));
      if (c.cuda_graph) {
        s_->prefill = std::make_unique<GraphPrefill>(*model_, c.batch, c.length);
        s_->prefill->run(s_->ids);
      }
    } else {
      // Decode continues from a 16-token prompt; the state's size does not grow with the position.
      const at::Tensor prompt = torch::randint(vocab, {c.batch, 16}, torch::TensorOptions(torch::kLong).device(device));
      DecodeOutput first;
      if (c.cuda_graph) {
        s_->decoder = std::make_unique<GraphDecoder>(*model_, c.batch);
        first.argmax = s_->decoder->prefill(prompt);
        first.logits = s_->decoder->logits();
      } else {
        first.logits = model_->prefill(prompt, s_->cache);
        s_->ids = first.logits.argmax(-1);
      }
      if (!c.sampling.empty()) {
        s_->sampler = std::make_unique<TokenSampler>(parse_sampling(c.sampling, "sampling"), c.batch, model_->config(), device);
        s_->sampler->observe(prompt);
        s_->ids = s_->sampler->next(first);
      }
    }
  }
}

CaseRunner::~CaseRunner() = default;

int64_t CaseRunner::tokens_per_sample() const { return case_.batch * case_.length; }

void CaseRunner::work() {
  switch (case_.kind) {
    case CaseKind::kPrefill: {
      torch::NoGradGuard no_grad;
      if (s_->prefill) {
        s_->prefill->replay();
        break;
      }
      s_->cache.reset();
      model_->prefill(s_->ids, s_->cache);
      break;
    }
    case CaseKind::kDecode: {
      torch::NoGradGuard no_grad;
      // The next token on the device: no host synchronisation between steps.
      if (s_->sampler) {
        // As generate's loop: record the token, step on it, choose the next from the step's output.
        for (int64_t i = 0; i < case_.length; ++i) {
          s_->sampler->observe(s_->ids);
          DecodeOutput out;
          if (s_->decoder) {
            out.argmax = s_->decoder->step(s_->ids);
            out.logits = s_->decoder->logits();
          } else {
            out.logits = model_->step(s_->ids, s_->cache);
          }
          s_->ids = s_->sampler->next(out);
        }
      } else if (s_->decoder) {
        for (int64_t i = 0; i < case_.length; ++i) s_->decoder->step();
      } else {
        for (int64_t i = 0; i < case_.length; ++i) s_->ids = model_->step(s_->ids, s_->cache).argmax(-1);
      }
      break;
    }
    case CaseKind::kTrain: {
      resample_gates(model_->backbone->gates(), s_->seed, s_->train_step++);  // as a training step does
      auto loss_of_batch = [&] {
        CudaAutocastScope scope(autocast_ && device_.is_cuda());
        const ops::InputsCheckedOnHost checked;  // random ids below the vocabulary (the constructor)
        return model_->loss(s_->ids);
      };
      if (s_->train_graph) {
        s_->train_graph->begin_step();  // the replay writes the gradients (ops/step_gradients.h)
        s_->train_graph->forward_backward("train", loss_of_batch);
      } else {
        s_->optimizer->zero_grad();
        loss_of_batch().backward();
      }
      ops::adamw_step(*s_->optimizer);  // as pre-training steps it: fused on CUDA
      break;
    }
  }
}

double CaseRunner::run_ms() {
#ifdef MCD_WITH_CUDA
  if (device_.is_cuda()) {
    at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
    const auto stream = at::cuda::getCurrentCUDAStream();
    start.record(stream);
    work();
    stop.record(stream);
    stop.synchronize();
    return double(start.elapsed_time(stop));
  }
#endif
  const auto t0 = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

MemoryUse CaseRunner::measure_memory() {
  MemoryUse m;
  m.weights = parameter_bytes(*model_);
  const InferenceCache& cache = s_->decoder ? s_->decoder->cache() : s_->prefill ? s_->prefill->cache() : s_->cache;
  for (const LayerState& l : cache.layers) m.states += tensor_bytes(l.conv) + tensor_bytes(l.ssm);
#ifdef MCD_WITH_CUDA
  if (device_.is_cuda()) {
    const int index = device_.index() < 0 ? 0 : device_.index();
    torch::cuda::synchronize();
    c10::cuda::CUDACachingAllocator::resetPeakStats(index);
    m.baseline = c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].current;
    work();
    torch::cuda::synchronize();
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    m.peak_allocated = stats.allocated_bytes[0].peak;
    m.peak_reserved = stats.reserved_bytes[0].peak;
    m.activations = m.peak_allocated - m.baseline;
  } else
#endif
  {
    work();
  }
  if (case_.kind == CaseKind::kTrain) {
    for (const auto& p : model_->parameters()) m.gradients += tensor_bytes(p.grad());
    // AdamW keeps two moments per parameter, in the parameter's dtype.
    m.optimizer = 2 * m.weights;
  }
  return m;
}

}  // namespace mcd::infer
