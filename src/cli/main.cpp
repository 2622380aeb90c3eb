// Entry point of the `mamba-codesign` tool: registers the subcommands (commands.h), applies the
// global options, runs the chosen subcommand, and is the only place where exceptions become
// messages on standard error and non-zero exit codes.
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "ops/options.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"mamba-codesign: Mamba language models made cheaper in hardware, data and parameters"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mamba-codesign 0.1.0 (LibTorch " + mcd::torch_version_string() + ")");
  int threads = 0;
  // The ops layer's options (ops/options.h), each parsed strictly by parse_ops_option.
  std::string ops_backend = "auto", fused_mixer = "on", scan_plan = "auto";
  bool save_conv_output = false;
  app.add_option("--threads", threads, "CPU threads for LibTorch and the CPU ops (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--ops", ops_backend, "sequence-op implementation: auto, reference, composite")
      ->capture_default_str();
  app.add_option("--fused-mixer", fused_mixer, "the fused mixer on CUDA: on, off (off: op by op)")
      ->capture_default_str();
  app.add_flag("--save-conv-output", save_conv_output,
               "the fused mixer keeps the conv output for its backward (faster, more memory)");
  app.add_option("--scan-plan", scan_plan,
                 "selective scan memory plan: auto, low_memory (never the dense saved states)")
      ->capture_default_str();
  const std::vector<mcd::cli::Command> commands = {
      mcd::cli::add_info(app), mcd::cli::add_init(app), mcd::cli::add_generate(app),
      mcd::cli::add_score(app), mcd::cli::add_tokenize(app), mcd::cli::add_pretrain(app),
      mcd::cli::add_launch(app), mcd::cli::add_prune(app), mcd::cli::add_flops(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    at::set_num_threads(threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency())));
    mcd::ops::OpsOptions ops = mcd::ops::ops_options();
    ops = mcd::ops::parse_ops_option(ops, "backend", ops_backend);
    ops = mcd::ops::parse_ops_option(ops, "fused_mixer", fused_mixer);
    ops = mcd::ops::parse_ops_option(ops, "mixer_saves_conv_output", save_conv_output ? "true" : "false");
    ops = mcd::ops::parse_ops_option(ops, "scan_plan", scan_plan);
    mcd::ops::set_ops_options(ops);
    for (const auto& command : commands)
      if (command.app->parsed()) command.run();
  } catch (const std::exception& e) {
    std::cerr << "mamba-codesign: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
