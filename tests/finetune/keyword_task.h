// The synthetic fine-tuning task and tiny model that the CPU and GPU fine-tuning tests share.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <string>

#include "model/checkpoint.h"
#include "config/model_config.h"
#include "model/mamba.h"

namespace mcd::test {

// An easy task: sentences of filler words with "excellent" (label 1) or "terrible" (label 0)
// somewhere in them; 65 % are label 0, so always answering 0 scores 65 %.
inline void write_keyword_task(const std::string& path, int n, uint64_t seed) {
  static const char* filler[] = {"the", "a", "cat", "dog", "house", "blue", "runs", "quickly", "over", "green",
                                 "tree", "river", "small", "city", "walks", "under", "bright", "morning"};
  std::mt19937_64 rng(seed);
  std::ofstream f(path);
  for (int i = 0; i < n; ++i) {
    const int label = (rng() % 100) < 35 ? 1 : 0;
    const int words = 4 + int(rng() % 6), at = int(rng() % words);
    std::string text;
    for (int w = 0; w < words; ++w) {
      if (w) text += " ";
      text += w == at ? (label ? "excellent" : "terrible") : filler[rng() % 18];
    }
    f << nlohmann::json({{"text", text}, {"label", label}}).dump() << "\n";
  }
}

// A small randomly initialised model over the GPT-2 vocabulary (fine-tuning needs no pre-training
// to learn a keyword).
inline std::string write_model(const std::string& dir) {
  ModelConfig c = model_preset("mamba-tiny");
  c.d_model = 32;
  c.n_layer = 2;
  c.vocab_size = 50280;
  c.tokenizer_vocab_size = 50257;
  c.eos_token_id = c.bos_token_id = c.pad_token_id = 50256;
  c.validate("test");
  MambaLM m(c);
  init_reference(*m, 3);
  save_pretrained(*m, dir);
  return dir;
}

}  // namespace mcd::test
