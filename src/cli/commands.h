// Subcommands of the `mamba-codesign` tool. Each registers its options on a CLI11 subcommand
// and runs when selected; main.cpp turns exceptions into messages and exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "ops/options.h"
#include "util/torch_compat.h"

namespace mcd::cli {

// The global options (given before the subcommand). Each is registered through add(), which
// also records how to write it back as argv words, so `launch` hands every one of them to its
// ranks (a rank must run with the same --threads and --ops as a single-process run).
class GlobalOptions {
 public:
  int threads = 0;             // CPU threads (0 = all cores)
  int blas_threads = -1;       // the BLAS library's own pool (-1 = as threads, 0 = all cores; util/cpu_threads.h)
  std::string ops = "auto";    // sequence-op backend
  std::string fused_mixer = "on", save_conv_output = "off", scan_plan = "auto", scan_time_segments = "on",
              scan_narrow_backward = "auto", save_in_proj_input = "on",
              keep_cast_weights = "on", decode_overlap = "on",
              decode_fused_conv = "on", decode_fused_head = "on",
              decode_few_row_limit = std::to_string(mcd::ops::kDecodeFewRowLimitDefault);  // ops/options.h
  // on: LibTorch's deterministic algorithms and the CUDA kernels' deterministic backward sums, so a
  // rerun on the same card and build repeats a run bit for bit (docs/REPRODUCE.md); off: fastest.
  std::string deterministic = "off";

  GlobalOptions() = default;
  GlobalOptions(const GlobalOptions&) = delete;  // the recorded writers point into this object
  GlobalOptions& operator=(const GlobalOptions&) = delete;

  void add_to(CLI::App& app);
  // The parsed values as arguments for a child process, e.g. {"--threads", "1", "--ops", "auto"}.
  std::vector<std::string> to_args() const;
  // The same for one of `processes` children running at once (`run --jobs`, `launch --nproc`): with
  // --threads 0 ("every core") each gets cores / processes threads (at least 1), not every core each.
  std::vector<std::string> to_args_for(int processes) const;

 private:
  template <class T>
  CLI::Option* add(CLI::App& app, const std::string& name, T& field, const std::string& help) {
    writers_.push_back({name, [&field] {
                          std::ostringstream s;
                          s << field;
                          return s.str();
                        }});
    return app.add_option(name, field, help)->capture_default_str();
  }
  std::vector<std::pair<std::string, std::function<std::string()>>> writers_;
};

// A registered subcommand and the action to run once its options are parsed.
struct Command {
  CLI::App* app;
  std::function<void()> run;
};

Command add_info(CLI::App& app);
Command add_init(CLI::App& app);
Command add_convert(CLI::App& app);  // another format's model folder as ours
Command add_generate(CLI::App& app);
Command add_score(CLI::App& app);
Command add_zeroshot(CLI::App& app);  // multiple-choice accuracy by log-likelihood
Command add_tokenize(CLI::App& app);
Command add_pretrain(CLI::App& app);
Command add_launch(CLI::App& app, const GlobalOptions& globals);  // forwards `globals`
Command add_prune(CLI::App& app);
Command add_flops(CLI::App& app);
Command add_csp(CLI::App& app);
Command add_profile(CLI::App& app);
Command add_data(CLI::App& app);  // `data glue`, `data download`, `data demo`
Command add_importance(CLI::App& app);
Command add_finetune(CLI::App& app);
Command add_summarize(CLI::App& app);  // fine-tuning results over seeds
Command add_run(CLI::App& app, const GlobalOptions& globals);  // the experiment; stages get `globals`

// --device cpu|cuda|cuda:N|auto → a device ("auto": cuda when available).
torch::Device parse_device(const std::string& name);
// Parses "1,2,3" into ids; errors name the offending item.
std::vector<int64_t> parse_id_list(const std::string& text);

}  // namespace mcd::cli
