// A model folder's own tokenizer.json, through the `mamba-codesign` binary: HF checkpoints ship one
// (state-spaces/mamba-*-hf carry GPT-NeoX's BPE, not GPT-2's), and every command that turns text into ids
// for a model — tokenize --model, generate --prompt, score/csp corpora, fine-tuning, pre-training from
// init_from — must use it, and every command that writes a model derived from it must carry it along.
// The tokenizer here is the data tests' byte-level BPE (ids = bytes, 256 = <|endoftext|>, 257 = "th"):
// "the" is 257,101 with it and 1169 with GPT-2, so a command that fell back to GPT-2 shows, and no GPT-2
// assets are needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "data/hash64.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "test_support.h"
#include "util/fs.h"

namespace mcd {
namespace {

// A tiny model (vocabulary 264 ≥ the tokenizer's 258 ids) with the byte tokenizer as its tokenizer.json.
struct FolderWithTokenizer {
  test::TempDir dir;
  std::string model, tokenizer_text;
  uint64_t fingerprint = 0;
  FolderWithTokenizer() {
    model = dir.file("model");
    std::ofstream(dir.file("model.yaml")) << "d_model: 16\nn_layer: 2\nvocab_size: 264\nd_state: 4\nexpand: 2\n"
                                             "d_conv: 4\neos_token_id: 256\nbos_token_id: 256\npad_token_id: 256\n";
    const test::CliRun init = test::run_cli("init --config " + dir.file("model.yaml") + " --seed 3 --out " + model);
    EXPECT_EQ(init.status, 0) << init.err;
    fingerprint = data::test::byte_tokenizer(dir.path, /*with_merge=*/true).fingerprint();
    tokenizer_text = data::test::read_file(dir.file("tok_merge.json"));
    data::test::write_file(fs::join(model, "tokenizer.json"), tokenizer_text);
    std::ofstream(dir.file("the.txt")) << "the";
  }
  std::string tokenize(const std::string& folder) const {
    const test::CliRun r = test::run_cli("tokenize --model " + folder + " --text-file " + dir.file("the.txt"));
    EXPECT_EQ(r.status, 0) << r.err;
    return r.last_line();
  }
};

// `zeroshot` reads text through the folder's tokenizer.json like every text command, and its JSON
// is consistent: the accuracies agree with its own per-example predictions, the Wilson interval
// holds the estimate, and the model compared with itself differs by exactly 0 with no discordant
// example. Bad data is refused naming the line.
TEST(ModelTokenizer, ZeroshotScoresComparesAndRecordsEveryExample) {
  FolderWithTokenizer f;
  std::ofstream(f.dir.file("mc.jsonl")) << "{\"context\": \"the cat sat on the\", \"choices\": [\" mat\", \" moon\"], \"label\": 0}\n"
                                           "{\"context\": \"one, two,\", \"choices\": [\" three\", \" blue\", \" dog\"], \"label\": 0}\n"
                                           "{\"id\": \"x\", \"context\": \"\", \"choices\": [\"hello\", \"the\"], \"label\": 1}\n";
  const auto r = test::run_cli("zeroshot --model " + f.model + " --model " + f.model + " --data " + f.dir.file("mc.jsonl") +
                               " --device cpu --resamples 200 --out " + f.dir.file("z.json"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream in(f.dir.file("z.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["examples"], 3);
  ASSERT_EQ(j["models"].size(), 2u);
  // acc_norm divides by the choice's characters without its leading space (lm-eval's lengths).
  const std::vector<std::vector<double>> lengths = {{3, 4}, {5, 4, 3}, {5, 3}};
  for (const auto& m : j["models"]) {
    int64_t right = 0;
    for (size_t i = 0; i < 3; ++i) {
      const auto& e = m["examples"][i];
      EXPECT_EQ(e["log_likelihood"].size(), e["greedy"].size());
      right += e["prediction"] == e["label"];
      int64_t best = 0;
      for (size_t k = 1; k < lengths[i].size(); ++k)
        if (e["log_likelihood"][k].get<double>() / lengths[i][k] >
            e["log_likelihood"][size_t(best)].get<double>() / lengths[i][size_t(best)])
          best = int64_t(k);
      EXPECT_EQ(e["prediction_norm"], best) << i;
    }
    EXPECT_EQ(m["acc"]["correct"], right);
    EXPECT_DOUBLE_EQ(m["acc"]["estimate"].get<double>(), double(right) / 3.0);
    EXPECT_LE(m["acc"]["lower"].get<double>(), m["acc"]["estimate"].get<double>());
    EXPECT_GE(m["acc"]["upper"].get<double>(), m["acc"]["estimate"].get<double>());
  }
  // The byte tokenizer's ids: "hello" is five bytes, "the" 257,101 (the merge): 5 and 2 tokens scored.
  EXPECT_EQ(j["models"][0]["examples"][2]["tokens"], nlohmann::json::array({5, 2}));
  EXPECT_EQ(j["models"][1]["examples"], j["models"][0]["examples"]);  // the same model, the same scores
  EXPECT_EQ(j["models"][0]["examples"][2]["id"], "x");
  const auto& c = j["comparisons"][0]["acc"];
  EXPECT_EQ(c["difference"]["estimate"], 0.0);
  EXPECT_EQ(c["difference"]["lower"], 0.0);
  EXPECT_EQ(c["difference"]["upper"], 0.0);
  EXPECT_EQ(c["only_this_right"], 0);
  EXPECT_EQ(c["mcnemar_exact_p"], 1.0);
  std::ofstream(f.dir.file("bad.jsonl")) << "{\"context\": \"a\", \"choices\": [\" b\"], \"label\": 0}\n";
  const auto bad = test::run_cli("zeroshot --model " + f.model + " --data " + f.dir.file("bad.jsonl") + " --device cpu");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("bad.jsonl:1: needs at least 2 choices, got 1"), std::string::npos) << bad.err;
}

// generate --stream prints the same text and ids as without it (token by token instead of at the
// end), sampled with a seed; it needs one text prompt.
TEST(ModelTokenizer, GenerateStreamPrintsWhatGenerateDoes) {
  FolderWithTokenizer f;
  const std::string base = "generate --model " + f.model + " --prompt 'the the' --max-new-tokens 12 --seed 3 --device cpu";
  const test::CliRun plain = test::run_cli(base), streamed = test::run_cli(base + " --stream");
  ASSERT_EQ(plain.status, 0) << plain.err;
  ASSERT_EQ(streamed.status, 0) << streamed.err;
  EXPECT_EQ(streamed.out, plain.out);
  EXPECT_EQ(plain.last_line().rfind("257,101,32,257,101,", 0), 0u) << plain.out;  // the ids after the text
  EXPECT_EQ(plain.out.rfind("the the", 0), 0u) << plain.out;
  const test::CliRun ids = test::run_cli("generate --model " + f.model + " --prompt-ids 1,2 --stream --device cpu");
  EXPECT_NE(ids.status, 0);
  EXPECT_NE(ids.err.find("--stream prints text as it is generated: give one --prompt"), std::string::npos) << ids.err;
}

TEST(ModelTokenizer, TokenizeAndGenerateUseTheFolderTokenizerJson) {
  FolderWithTokenizer f;
  EXPECT_EQ(f.tokenize(f.model), "257,101");
  const test::CliRun gen = test::run_cli("generate --model " + f.model +
                                         " --prompt the --max-new-tokens 2 --greedy --ignore-eos --device cpu");
  ASSERT_EQ(gen.status, 0) << gen.err;
  EXPECT_EQ(gen.last_line().rfind("257,101,", 0), 0u) << gen.out;  // the prompt's ids, then two new ones
  EXPECT_EQ(gen.out.rfind("the", 0), 0u) << gen.out;                // decoded with the same tokenizer
  // A model with fewer ids than the file is refused, naming the file.
  test::TempDir small;
  std::ofstream(small.file("model.yaml")) << "d_model: 16\nn_layer: 1\nvocab_size: 200\nd_state: 4\nexpand: 2\n";
  ASSERT_EQ(test::run_cli("init --config " + small.file("model.yaml") + " --out " + small.file("m")).status, 0);
  data::test::write_file(small.file("m/tokenizer.json"), f.tokenizer_text);
  const test::CliRun refused =
      test::run_cli("tokenize --model " + small.file("m") + " --text-file " + f.dir.file("the.txt"));
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.err.find(small.file("m/tokenizer.json")), std::string::npos) << refused.err;
  // --model and --vocab-map do not combine (the folder's map is already applied).
  EXPECT_NE(test::run_cli("tokenize --model " + f.model + " --vocab-map x --text-file " + f.dir.file("the.txt")).status,
            0);
}

// prune and pretrain (init_from) write models derived from the folder: each carries its tokenizer.json, and
// pre-training tokenizes its corpus with it (the token cache records the tokenizer it was built with).
TEST(ModelTokenizer, DerivedModelsCarryItAndPretrainingTokenizesWithIt) {
  FolderWithTokenizer f;
  const test::CliRun pruned = test::run_cli("prune --model " + f.model + " --magnitude global --sparsity 0.5 --out " +
                                            f.dir.file("pruned"));
  ASSERT_EQ(pruned.status, 0) << pruned.err;
  EXPECT_EQ(data::test::read_file(f.dir.file("pruned/tokenizer.json")), f.tokenizer_text);
  EXPECT_EQ(f.tokenize(f.dir.file("pruned")), "257,101");

  fs::make_dirs(f.dir.file("corpus"));
  for (int d = 0; d < 6; ++d) {
    std::ofstream doc(f.dir.file("corpus/doc" + std::to_string(d) + ".txt"));
    for (int i = 0; i < 20; ++i) doc << "the theory of the thing " << d * 20 + i << " is that there is one.\n";
  }
  std::ofstream(f.dir.file("train.yaml")) << "model: {init_from: " << f.model << "}\n"
                                          << "data: {format: text, paths: [" << f.dir.file("corpus")
                                          << "], cache_dir: " << f.dir.file("cache") << ", val_fraction: 0.5}\n"
                                          << "train: {seq_len: 16, batch_size: 2, steps: 2, lr: 0.01, warmup_steps: 1}\n"
                                          << "eval: {interval: 0, windows: 2, batch_size: 2}\n"
                                          << "checkpoint: {interval: 0}\nrun: {device: cpu, log_interval: 1}\n";
  const test::CliRun pre = test::run_cli("pretrain --quiet --config " + f.dir.file("train.yaml") +
                                         " --set run.out_dir=" + f.dir.file("run"));
  ASSERT_EQ(pre.status, 0) << pre.err;
  EXPECT_EQ(data::test::read_file(f.dir.file("run/final/tokenizer.json")), f.tokenizer_text);
  std::ifstream meta_file(f.dir.file("cache/meta.json"));
  ASSERT_TRUE(meta_file.good()) << "no token cache meta.json";
  const nlohmann::json meta = nlohmann::json::parse(meta_file);
  EXPECT_EQ(meta["inputs"]["tokenizer"]["fingerprint"], data::hex64(f.fingerprint)) << meta.dump();
}

}  // namespace
}  // namespace mcd
