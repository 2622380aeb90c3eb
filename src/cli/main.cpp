// Entry point of the `mamba-codesign` tool: registers the subcommands (commands.h), applies the
// global options, runs the chosen subcommand, and is the only place where exceptions become
// messages on standard error and non-zero exit codes.
#include <algorithm>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "ops/options.h"
#include "util/cpu_threads.h"
#include "util/error.h"
#include "util/heap.h"

namespace mcd::cli {

void GlobalOptions::add_to(CLI::App& app) {
  add(app, "--threads", threads,
      "CPU threads for LibTorch, the CPU ops and the BLAS library's own pool (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  add(app, "--blas-threads", blas_threads,
      "threads of the BLAS library's own pool where it has one (Debian's OpenBLAS): -1 = as --threads, 0 = all "
      "cores (docs/NOTES.md, [Note: CPU thread pools])")
      ->check(CLI::Range(-1, 4096));
  // The ops layer's options (ops/options.h), each parsed strictly by parse_ops_option in main.
  add(app, "--ops", ops, "sequence-op implementation: auto, reference, composite");
  add(app, "--fused-mixer", fused_mixer, "the fused mixer on CUDA: on, off (off: op by op)");
  add(app, "--save-conv-output", save_conv_output,
      "the fused mixer keeps the conv output for its backward: on, off (on: faster, more memory)");
  add(app, "--save-in-proj-input", save_in_proj_input,
      "training under CUDA autocast keeps each block's normed in_proj input: on, off (off: recomputed in the "
      "backward, B·L·D bf16 less per block)");
  add(app, "--keep-cast-weights", keep_cast_weights,
      "training under CUDA autocast keeps the fused mixer's and in_proj's low-precision weight copies for the "
      "backward: on, off (off: cast again there)");
  add(app, "--decode-overlap", decode_overlap,
      "the decode-step kernels start while the previous kernel runs (CUDA, sm_90): on, off (off: plain launches)");
  add(app, "--decode-fused-conv", decode_fused_conv,
      "a decode step's conv step inside the fused norm + in_proj kernel (CUDA, on the few-row kernels' rows: "
      "--decode-few-row-limit): on, off");
  add(app, "--decode-fused-head", decode_fused_head,
      "a decode step's final norm, LM head and greedy argmax in one kernel (CUDA, on the few-row kernels' rows; "
      "above, the argmax after the head's product in one): on, off");
  add(app, "--decode-few-row-limit", decode_few_row_limit,
      "up to how many rows a decode step runs the few-row kernels (CUDA): 0..8 (above it, cuBLAS's products; "
      "0: never)");
  add(app, "--scan-plan", scan_plan, "selective scan memory plan: auto, low_memory (never the dense saved states)");
  add(app, "--scan-time-segments", scan_time_segments,
      "the selective scan's backward at pruned widths splits L into segments run side by side (CUDA): on, off "
      "(off: one walk over L)");
  add(app, "--scan-narrow-backward", scan_narrow_backward,
      "the training scan's backward at pruned widths (2560 <= B*E <= 6144, CUDA): auto (four lanes up to "
      "B*E = 4096, eight above), eight_lanes, four_lanes "
      "(the four-lane backward in 4 time segments, at every B*E >= 2560; an A/B switch, docs/configs.md)");
  add(app, "--deterministic", deterministic,
      "on: deterministic algorithms (a rerun on the same card and build is bit-identical; slower backward), off");
}

std::vector<std::string> GlobalOptions::to_args() const {
  std::vector<std::string> args;
  for (const auto& [name, write] : writers_) {
    args.push_back(name);
    args.push_back(write());
  }
  return args;
}

std::vector<std::string> GlobalOptions::to_args_for(int processes) const {
  std::vector<std::string> args = to_args();
  if (threads != 0 || processes <= 1) return args;
  // N processes on every core would run N times as many busy threads as there are cores
  // (docs/NOTES.md, [Note: CPU thread pools]).
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--threads") args[i + 1] = std::to_string(std::max(1, cores / processes));
  return args;
}

}  // namespace mcd::cli

int main(int argc, char** argv) {
  mcd::keep_freed_heap();
  CLI::App app{"mamba-codesign: Mamba language models made cheaper in hardware, data and parameters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mamba-codesign 0.1.0 (LibTorch " + mcd::torch_version_string() + ")");
  mcd::cli::GlobalOptions globals;
  globals.add_to(app);
  const std::vector<mcd::cli::Command> commands = {
      mcd::cli::add_info(app),     mcd::cli::add_init(app),   mcd::cli::add_convert(app), mcd::cli::add_generate(app),
      mcd::cli::add_score(app),    mcd::cli::add_zeroshot(app), mcd::cli::add_tokenize(app), mcd::cli::add_pretrain(app),
      mcd::cli::add_launch(app, globals), mcd::cli::add_prune(app), mcd::cli::add_flops(app),
      mcd::cli::add_csp(app), mcd::cli::add_profile(app), mcd::cli::add_data(app),
      mcd::cli::add_importance(app), mcd::cli::add_finetune(app), mcd::cli::add_summarize(app),
      mcd::cli::add_run(app, globals)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    // The BLAS pool first: an OpenMP build of OpenBLAS sets OpenMP's thread count too, which
    // LibTorch's own setting then overrides (util/cpu_threads.h).
    const mcd::CpuThreads pools = mcd::resolve_cpu_threads(globals.threads, globals.blas_threads,
                                                           int(std::thread::hardware_concurrency()));
    mcd::set_blas_threads(pools.blas);
    at::set_num_threads(pools.torch);
    mcd::ops::OpsOptions ops = mcd::ops::ops_options();
    ops = mcd::ops::parse_ops_option(ops, "backend", globals.ops);
    ops = mcd::ops::parse_ops_option(ops, "fused_mixer", globals.fused_mixer);
    ops = mcd::ops::parse_ops_option(ops, "mixer_saves_conv_output", globals.save_conv_output);
    ops = mcd::ops::parse_ops_option(ops, "scan_plan", globals.scan_plan);
    ops = mcd::ops::parse_ops_option(ops, "scan_time_segments", globals.scan_time_segments);
    ops = mcd::ops::parse_ops_option(ops, "scan_narrow_backward", globals.scan_narrow_backward);
    ops = mcd::ops::parse_ops_option(ops, "in_proj_saves_input", globals.save_in_proj_input);
    ops = mcd::ops::parse_ops_option(ops, "keep_cast_weights", globals.keep_cast_weights);
    ops = mcd::ops::parse_ops_option(ops, "decode_overlap", globals.decode_overlap);
    ops = mcd::ops::parse_ops_option(ops, "decode_fused_conv", globals.decode_fused_conv);
    ops = mcd::ops::parse_ops_option(ops, "decode_fused_head", globals.decode_fused_head);
    ops = mcd::ops::parse_ops_option(ops, "decode_few_row_limit", globals.decode_few_row_limit);
    mcd::ops::set_ops_options(ops);
    MCD_CHECK(globals.deterministic == "on" || globals.deterministic == "off",
              "--deterministic must be on or off, got '", globals.deterministic, "'");
    // warn_only: LibTorch would otherwise refuse cuBLAS without CUBLAS_WORKSPACE_CONFIG, which only
    // matters for work spread over several streams; every op here runs on one.
    at::globalContext().setDeterministicAlgorithms(globals.deterministic == "on", /*warn_only=*/true);
    for (const auto& command : commands)
      if (command.app->parsed()) command.run();
  } catch (const c10::Error& e) {
    // LibTorch's own checks: the message without the C++ backtrace, which means nothing to a user.
    std::cerr << "mamba-codesign: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "mamba-codesign: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
