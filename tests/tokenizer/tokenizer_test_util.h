// Helpers shared by the tokenizer tests: where the fetched assets are, a once-per-process GPT-2
// tokenizer, running the js-tiktoken reference script, and skip messages for missing pieces.
// The assets come from scripts/fetch_assets.sh; ../shared data from MCD_SHARED_DIR.
#pragma once

#include "util/fs.h"
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizer/bpe_tokenizer.h"

namespace mcd::data::test {

inline std::string assets_root() {
  if (const char* env = std::getenv("MCD_ASSETS_DIR"); env && *env) return env;
  return std::string(MCD_SOURCE_DIR) + "/.cache/assets";
}

inline std::string gpt2_dir() { return assets_root() + "/gpt2"; }

inline bool have_gpt2_files() {
  return ::mcd::fs::exists(gpt2_dir() + "/encoder.json") &&
         ::mcd::fs::exists(gpt2_dir() + "/vocab.bpe");
}

#define MCD_REQUIRE_GPT2()                                                                  \
  do {                                                                                      \
    if (!::mcd::data::test::have_gpt2_files())                                              \
      GTEST_SKIP() << "GPT-2 files not in " << ::mcd::data::test::gpt2_dir()                \
                   << "; run scripts/fetch_assets.sh";                                      \
  } while (0)

// Loaded once per process (each ctest case is its own process, so this is cheap enough).
inline const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok =
      BpeTokenizer::from_gpt2_files(gpt2_dir() + "/encoder.json", gpt2_dir() + "/vocab.bpe");
  return tok;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

// A fresh path under the test temp dir.
inline std::string temp_path(const std::string& name) {
  static int counter = 0;
  return testing::TempDir() + "mcd_tok_" + std::to_string(::getpid()) + "_" +
         std::to_string(counter++) + "_" + name;
}

// Runs a shell command, returns its stdout and sets `status` to its exit code.
inline std::string run_command(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    status = -1;
    return out;
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int raw = ::pclose(pipe);
  status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

inline bool have_node() {
  int status = 0;
  run_command("command -v node >/dev/null 2>&1", status);
  return status == 0;
}

inline bool have_js_tiktoken() {
  return ::mcd::fs::exists(assets_root() + "/node_modules/js-tiktoken/dist/lite.cjs") &&
         ::mcd::fs::exists(assets_root() + "/node_modules/base64-js");
}

#define MCD_REQUIRE_JS_TIKTOKEN()                                                           \
  do {                                                                                      \
    if (!::mcd::data::test::have_node())                                                    \
      GTEST_SKIP() << "node not on PATH: js-tiktoken parity not checked";                   \
    if (!::mcd::data::test::have_js_tiktoken())                                             \
      GTEST_SKIP() << "js-tiktoken not in " << ::mcd::data::test::assets_root()             \
                   << "/node_modules; run scripts/fetch_assets.sh";                         \
  } while (0)

inline std::string js_script() {
  return std::string(MCD_SOURCE_DIR) + "/tests/tokenizer/js_tiktoken_encode.js";
}

// js-tiktoken's gpt2 ids for the UTF-8 text in `path`.
inline std::vector<int32_t> js_tiktoken_file_ids(const std::string& path) {
  int status = 0;
  const std::string out = run_command(
      "node '" + js_script() + "' '" + assets_root() + "' --file '" + path + "'", status);
  EXPECT_EQ(status, 0) << "js_tiktoken_encode.js failed on " << path;
  if (status != 0) return {};
  return nlohmann::json::parse(out).get<std::vector<int32_t>>();
}

inline std::string hard_cases_path() {
  return std::string(MCD_SOURCE_DIR) + "/tests/tokenizer/hard_cases.json";
}

}  // namespace mcd::data::test
