// Single-threaded throughput of BpeTokenizer (src/data/tokenizer) on English text from
// ../shared/data/enwiki2015: warm (piece cache filled) and cold (fresh tokenizer each pass)
// encode, plus decode. Needs scripts/fetch_assets.sh; results go into docs/tokenizer.md.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data/tokenizer/bpe_tokenizer.h"

namespace {

using mcd::data::BpeTokenizer;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string gpt2_dir() {
  if (const char* env = std::getenv("MCD_ASSETS_DIR"); env && *env) {
    return std::string(env) + "/gpt2";
  }
  return std::string(MCD_SOURCE_DIR) + "/.cache/assets/gpt2";
}

std::unique_ptr<BpeTokenizer> load(std::string& error) {
  try {
    return std::make_unique<BpeTokenizer>(
        BpeTokenizer::from_gpt2_files(gpt2_dir() + "/encoder.json", gpt2_dir() + "/vocab.bpe"));
  } catch (const std::exception& e) {
    error = e.what();
    return nullptr;
  }
}

// The first `files` files of enwiki2015/AA (about 1 MB each).
const std::string& enwiki_text(int files) {
  static std::string cache[8];
  std::string& text = cache[files];
  if (text.empty()) {
    for (int i = 0; i < files; ++i) {
      text += read_file(std::string(MCD_SHARED_DIR) + "/data/enwiki2015/AA/wiki_0" +
                        std::to_string(i));
    }
  }
  return text;
}

void BM_EncodeWarm(benchmark::State& state) {
  std::string error;
  const auto tok = load(error);
  const std::string& text = enwiki_text(int(state.range(0)));
  if (!tok || text.empty()) {
    state.SkipWithError(tok ? "enwiki2015 text not found under MCD_SHARED_DIR" : error.c_str());
    return;
  }
  benchmark::DoNotOptimize(tok->encode(text));  // fill the piece cache
  size_t ids = 0;
  for (auto _ : state) {
    const auto out = tok->encode(text);
    ids = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["bytes_per_token"] = double(text.size()) / double(ids);
}
BENCHMARK(BM_EncodeWarm)->Arg(4)->Unit(benchmark::kMillisecond)->MinTime(3.0);

void BM_EncodeCold(benchmark::State& state) {
  const std::string& text = enwiki_text(int(state.range(0)));
  std::string error;
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = load(error);  // a new model: its piece cache starts empty
    state.ResumeTiming();
    if (!tok || text.empty()) {
      state.SkipWithError(tok ? "enwiki2015 text not found under MCD_SHARED_DIR" : error.c_str());
      return;
    }
    benchmark::DoNotOptimize(tok->encode(text).data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}
BENCHMARK(BM_EncodeCold)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_Decode(benchmark::State& state) {
  std::string error;
  const auto tok = load(error);
  const std::string& text = enwiki_text(1);
  if (!tok || text.empty()) {
    state.SkipWithError(tok ? "enwiki2015 text not found under MCD_SHARED_DIR" : error.c_str());
    return;
  }
  const auto ids = tok->encode(text);
  for (auto _ : state) benchmark::DoNotOptimize(tok->decode(ids).data());
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
