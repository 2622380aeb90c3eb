// Options of the ops layer in one struct: which implementation runs (backend), the fused mixer and
// what it keeps, the scan's memory plan and the test-only output poisoning. One process-wide value,
// set by the CLI's global options, a training config's `ops:` section (docs/configs.md) and, in
// tests, ScopedOpsOptions. Torch-free: the CUDA kernels' scan_params.h reads ScanPlan from here.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ops/backend.h"

namespace mcd::ops {

// How the selective scan trades memory for time (ops/cuda/scan_params.h, choose_scan_algorithm).
enum class ScanPlan {
  kAuto,       // the fastest algorithm for the shape and device (may save a state every 8 steps)
  kLowMemory,  // never the dense-state algorithm: 130M at 8 × 2048 ~3.6 GB less for ~4 % time
};

// Which backward the training scan runs at the pruned widths, where the choice is the eight-lane
// forward (N ≤ 16 and 2560 ≤ B·E ≤ 6144; ops/cuda/scan_params.h, [Note: scan algorithm choice]).
// Both save the same states, so the forward is one kernel either way.
enum class NarrowScanBackward {
  kAuto,        // four lanes at B·E ≤ 4096, eight above (measured: docs/PERF_NOTES.md, twenty-fifth session)
  kEightLanes,  // state_sequential_eight_lanes: eight lanes per channel (8 time segments at B·E ≤ 4096)
  kFourLanes,   // state_sequential_segmented: the four-lane backward (kStateSequential's) in 4 time segments,
                // at every B·E ≥ 2560 (also above the narrow widths)
};

// The most rows the few-row decode kernels take (ops/cuda/decode_linear_params.h kDecodeLinearMaxRows,
// checked against this in ops/cuda), and the option's default.
constexpr int kDecodeFewRowMaxRows = 8;
// One row: batches 2–8 ran 0.6115–0.6294 ms per 130M token on cuBLAS against 0.66–1.67 on the kernels
// (370M: batch 2 1.646 against 1.559, batches 3–8 1.37–1.46 against 1.96–4.06; H200, twenty-fifth
// session, docs/PERF_NOTES.md).
constexpr int kDecodeFewRowLimitDefault = 1;

struct OpsOptions {
  Backend backend = Backend::kAuto;     // key `backend`: auto | reference | composite
  bool fused_mixer = true;              // key `fused_mixer`: the fused mixer on CUDA (ops/mamba_inner.h)
  bool mixer_saves_conv_output = false; // key `mixer_saves_conv_output`: the fused mixer keeps u
  ScanPlan scan_plan = ScanPlan::kAuto; // key `scan_plan`: auto | low_memory
  bool scan_time_segments = true;       // key `scan_time_segments`: the eight-lane, segmented and dense-state
                                        // scan backwards (pruned widths, where their blocks leave SMs idle)
                                        // split L into the segments scan_backward_time_segments gives
                                        // (ops/cuda/scan_params.h); false: it walks L once. The same
                                        // gradients up to the order of fp32 operations
  NarrowScanBackward scan_narrow_backward = NarrowScanBackward::kAuto;  // key `scan_narrow_backward`:
                                        // auto | eight_lanes | four_lanes (above); the same gradients up
                                        // to the order of fp32 operations. Forcing one is the A/B switch
                                        // for the pruned widths' training step
  bool keep_cast_weights = true;        // key `keep_cast_weights`: ops that cast fp32 weights to autocast's
                                        // dtype (the fused mixer, in_proj) keep the casts for the backward;
                                        // false casts again there (370M: 0.64 GB less, one cast per weight)
  bool in_proj_saves_input = true;      // key `in_proj_saves_input`: false = training under CUDA autocast
                                        // recomputes each block's normed in_proj input in the backward
                                        // (ops/add_rms_norm.h add_rms_norm_linear): B·L·D bf16 less per block
  bool decode_overlap = true;           // key `decode_overlap`: the decode-step kernels (decode_linear; the conv
                                        // and scan steps at batch ≤ 8) start while the previous kernel runs
                                        // (programmatic dependent launch, sm_90; ops/cuda/cuda_common.cuh);
                                        // the same results
  bool decode_fused_conv = true;        // key `decode_fused_conv`: a decode step on the few-row kernels
                                        // (up to decode_few_row_limit rows, below) runs its conv step
                                        // inside the fused norm + in_proj kernel
                                        // (ops::add_rms_norm_decode_linear_conv_step): one launch less per
                                        // layer (batch 1: −4 %, docs/PERF_NOTES.md), the same results
  bool decode_fused_head = true;        // key `decode_fused_head`: a decode step on the few-row kernels runs the final
                                        // norm with the LM head, and a greedy step (the CUDA-graph decoder)
                                        // its argmax too, in one kernel (ops::add_rms_norm_decode_linear_argmax);
                                        // above them, the greedy step's widening and argmax after cuBLAS's
                                        // head in one kernel (ops::widen_argmax); off: norm, head, cast, copy
                                        // and torch's argmax as separate kernels
  int decode_few_row_limit = kDecodeFewRowLimitDefault;  // key `decode_few_row_limit`: 0..8, up to how many
                                        // rows a decode step runs the few-row kernels (decode_linear and the
                                        // fused norm + product, which take at most 8: ops/decode_linear.h);
                                        // above it, cuBLAS's products and the separate norm. 0: never.
                                        // Those kernels' time grows with rows (the default: above)
  // Tests only (no key): NaN-fill every output buffer of the CUDA ops before the kernels write it,
  // so an element a kernel forgets shows up as NaN.
  bool poison_outputs = false;
};

// The current options (a copy: safe to read from autograd's backward threads).
OpsOptions ops_options();
void set_ops_options(const OpsOptions& options);

// Sets options for a scope and restores the previous ones in its destructor (tests).
class ScopedOpsOptions {
 public:
  explicit ScopedOpsOptions(const OpsOptions& options);
  ~ScopedOpsOptions();
  ScopedOpsOptions(const ScopedOpsOptions&) = delete;
  ScopedOpsOptions& operator=(const ScopedOpsOptions&) = delete;

 private:
  OpsOptions saved_;
};

// `base` with one key set from its text value, strictly: an unknown key or value throws
// mcd::Error listing the valid ones. Booleans take true/false (also on/off). The keys are those of
// ops_option_keys(); the YAML `ops:` section and the CLI's global options go through here.
OpsOptions parse_ops_option(OpsOptions base, const std::string& key, const std::string& value);
const std::vector<std::string>& ops_option_keys();
// Every key of ops_option_keys() with its value in `options`, as parse_ops_option reads it back
// (what a training run records in its summary.json, so results say how they were made).
std::vector<std::pair<std::string, std::string>> ops_option_values(const OpsOptions& options);

ScanPlan parse_scan_plan(const std::string& name);  // auto | low_memory; throws listing them
NarrowScanBackward parse_narrow_scan_backward(const std::string& name);  // auto | eight_lanes | four_lanes
const char* narrow_scan_backward_name(NarrowScanBackward b);
const char* scan_plan_name(ScanPlan plan);

}  // namespace mcd::ops
