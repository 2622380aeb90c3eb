// Latency and memory of one model on one workload (METHOD.md §5, docs/profile.md): prefill of
// B×L tokens, per-token decode at batch B, or a training step on B×L tokens. A CaseRunner prepares
// its buffers once; each run_ms() is one timed sample — CUDA events around the device work on a GPU,
// the wall clock on the CPU — so a caller can interleave several models' samples in one process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/mamba.h"

namespace mcd::infer {

enum class CaseKind { kPrefill, kDecode, kTrain };
const char* case_kind_name(CaseKind kind);

struct ProfileCase {
  CaseKind kind = CaseKind::kPrefill;
  int64_t batch = 1;
  int64_t length = 0;  // prefill/train: tokens per sequence; decode: steps per sample
  bool cuda_graph = false;  // decode: each step a CUDA-graph replay (graph_decoder.h); prefill: the
                            // whole prefill one replay (graph_prefill.h); train: the step's forward and
                            // backward one replay (ops/step_graphs.h), the optimizer step after it
  // decode: "" takes the greedy argmax (the graph's own); else a model/generation.h parse_sampling spec,
  // the next token chosen as generate chooses it (penalty, filters, draw), on the device between steps
  std::string sampling;
  std::string label() const;  // "prefill 1x1024", "prefill 1x1024 graph", "decode b64", "decode b64 graph",
                              // "decode b64 graph sampled", "train 8x2048", "train 8x2048 graph"
};

// "1x1024,1x4096" (prefill, train) or "1,64" (decode batch sizes; `decode_steps` steps per sample).
// Errors name `option` and the offending item.
std::vector<ProfileCase> parse_cases(CaseKind kind, const std::string& text, int64_t decode_steps,
                                     const std::string& option);

// Bytes. Analytic parts are always filled; measured ones (CUDA caching allocator) are -1 on a CPU.
struct MemoryUse {
  int64_t weights = 0;      // parameters as held for this case
  int64_t states = 0;       // decode/prefill cache: conv + SSM states
  int64_t gradients = 0;    // train: parameter gradients
  int64_t optimizer = 0;    // train: AdamW moments
  int64_t baseline = -1;    // allocated before a sample (the parts above + inputs and leftovers)
  int64_t peak_allocated = -1, peak_reserved = -1;
  int64_t activations = -1;  // peak_allocated − baseline: activations and workspace of one sample
};

class CaseRunner {
 public:
  // `model` is used as given (device and dtype chosen by the caller); train cases switch it to
  // train mode and give it an AdamW optimizer, stepped as pre-training steps it (ops::adamw_step:
  // fused on CUDA), with bf16 autocast on CUDA when `autocast`. A graphed train case given
  // `share_graph_memory_with` (another model's runner of the same case, timed in turn with this one)
  // captures into that runner's graph memory (ops::StepGraphs).
  CaseRunner(MambaLM model, const ProfileCase& c, torch::Device device, uint64_t seed, bool autocast,
             const CaseRunner* share_graph_memory_with = nullptr);
  ~CaseRunner();

  double run_ms();                 // one timed sample
  MemoryUse measure_memory();      // one more sample with the allocator's peak reset (CUDA)
  int64_t tokens_per_sample() const;  // prefill/train: B·L; decode: B·steps
  const ProfileCase& profile_case() const { return case_; }

 private:
  void work();  // the sample's device work
  struct State;
  MambaLM model_;
  ProfileCase case_;
  torch::Device device_;
  bool autocast_;
  std::unique_ptr<State> s_;
};

int64_t parameter_bytes(torch::nn::Module& module);

// "NVIDIA H200" for a CUDA device (the card's name), the CPU model name from /proc/cpuinfo otherwise.
std::string device_description(const torch::Device& device);

}  // namespace mcd::infer
