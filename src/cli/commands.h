// Subcommands of the `mamba-codesign` tool. Each registers its options on a CLI11 subcommand
// and runs when selected; main.cpp turns exceptions into messages and exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "util/torch_compat.h"

namespace mcd::cli {

// A registered subcommand and the action to run once its options are parsed.
struct Command {
  CLI::App* app;
  std::function<void()> run;
};

Command add_info(CLI::App& app);
Command add_init(CLI::App& app);
Command add_generate(CLI::App& app);
Command add_score(CLI::App& app);
Command add_tokenize(CLI::App& app);
Command add_pretrain(CLI::App& app);
Command add_launch(CLI::App& app);
Command add_prune(CLI::App& app);
Command add_flops(CLI::App& app);

// --device cpu|cuda|cuda:N|auto → a device ("auto": cuda when available).
torch::Device parse_device(const std::string& name);
// Parses "1,2,3" into ids; errors name the offending item.
std::vector<int64_t> parse_id_list(const std::string& text);

}  // namespace mcd::cli
