// The command-line contract: `generate` and `score` reproduce the HF fixture's reference.json /
// reference.safetensors from the command line, every subcommand has --help, and errors go to
// standard error with a non-zero exit code and name what was wrong (without LibTorch's C++
// backtraces); `launch` forwards the global options and validates its port.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "io/safetensors_torch.h"
#include "test_support.h"

namespace mcd {
namespace {

using test::CliRun;
using test::run_cli;

TEST(Cli, GenerateReproducesReferenceGreedyIds) {
  MCD_SKIP_IF_NO_FIXTURE();
  std::ifstream f(test::fixture_dir() + "/reference.json");
  const auto j = nlohmann::json::parse(f);
  std::string prompt, expected;
  for (auto id : j["prompt_ids"]) prompt += (prompt.empty() ? "" : ",") + std::to_string(id.get<int>());
  for (auto id : j["greedy_ids"]) expected += (expected.empty() ? "" : ",") + std::to_string(id.get<int>());
  const CliRun r = run_cli("generate --model " + test::fixture_dir() + " --prompt-ids " + prompt +
                        " --max-new-tokens " + std::to_string(j["max_new_tokens"].get<int>()) +
                        " --greedy --device cpu");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.last_line(), expected);
}

TEST(Cli, GenerateStopsAtEosUnlessIgnored) {
  MCD_SKIP_IF_NO_FIXTURE();
  // A copy of the fixture whose EOS is 27, the second token greedy decoding produces.
  test::TempDir tmp;
  {
    std::ifstream src(test::fixture_dir() + "/model.safetensors", std::ios::binary);
    std::ofstream(tmp.file("model.safetensors"), std::ios::binary) << src.rdbuf();
  }
  std::ifstream f(test::fixture_dir() + "/config.json");
  auto config = nlohmann::json::parse(f);
  config["eos_token_id"] = 27;
  std::ofstream(tmp.file("config.json")) << config.dump();
  const std::string base = "generate --model " + tmp.path +
                           " --prompt-ids 37,235,396,72,255 --max-new-tokens 16 --greedy --device cpu";
  const CliRun stopped = run_cli(base);
  ASSERT_EQ(stopped.status, 0) << stopped.err;
  EXPECT_EQ(stopped.last_line(), "37,235,396,72,255,53,27");
  const CliRun ignored = run_cli(base + " --ignore-eos");
  ASSERT_EQ(ignored.status, 0) << ignored.err;
  EXPECT_EQ(ignored.last_line(), "37,235,396,72,255,53,27,27,405,405,226,2,16,275,275,411,230,366,377,452,6");
}

// Several prompts of different lengths (';' between them) run as one batch and print one JSON line
// each, whose ids equal generating that prompt alone (float64: the batch feeds the longer prompts'
// tails through the step mode instead of the prefill, equal to ~1e-15, so no argmax can flip).
TEST(Cli, PromptsOfDifferentLengthsGenerateAsOneBatch) {
  MCD_SKIP_IF_NO_FIXTURE();
  const std::string base = "generate --model " + test::fixture_dir() + " --max-new-tokens 6 --greedy --ignore-eos "
                           "--device cpu --dtype float64 --prompt-ids ";
  const std::vector<std::string> prompts = {"37,235,396,72,255", "37,235", "72"};
  const CliRun batch = run_cli(base + "'" + prompts[0] + ";" + prompts[1] + ";" + prompts[2] + "'");
  ASSERT_EQ(batch.status, 0) << batch.err;
  std::vector<nlohmann::json> lines;
  std::istringstream out(batch.out);
  for (std::string line; std::getline(out, line);)
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), prompts.size()) << batch.out;
  for (size_t r = 0; r < prompts.size(); ++r) {
    const CliRun alone = run_cli(base + prompts[r]);
    ASSERT_EQ(alone.status, 0) << alone.err;
    std::string ids;
    for (const auto& id : lines[r]["ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int64_t>());
    EXPECT_EQ(ids, alone.last_line()) << "prompt " << r;
    EXPECT_EQ(lines[r]["prompt"], r);
    EXPECT_EQ(lines[r]["new_tokens"], 6);
  }
  const CliRun empty = run_cli(base + "'1,2;;3'");
  EXPECT_NE(empty.status, 0);
  EXPECT_NE(empty.err.find("--prompt-ids: prompt 2 of '1,2;;3' is empty"), std::string::npos) << empty.err;
}

// Sampling with min-p and a repetition penalty: a seed gives the same ids twice, another seed other
// ids (8 draws from the fixture's 512 ids at temperature 1 coincide with a vanishing chance), and
// an option out of range is refused with its rule before the model loads.
TEST(Cli, GenerateSamplesWithMinPAndRepetitionPenalty) {
  MCD_SKIP_IF_NO_FIXTURE();
  const std::string base = "generate --model " + test::fixture_dir() +
                           " --prompt-ids 37,235,396 --max-new-tokens 8 --ignore-eos --device cpu --min-p 0.01 --top-k 200";
  const std::string penalised = base + " --repetition-penalty 1.3";
  const CliRun a = run_cli(penalised + " --seed 4"), b = run_cli(penalised + " --seed 4"),
               c = run_cli(penalised + " --seed 5");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.last_line(), b.last_line());
  EXPECT_NE(a.last_line(), c.last_line());
  const std::string ids = a.last_line();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), ','), 3 + 8 - 1) << ids;
  const CliRun bad = run_cli(base + " --repetition-penalty 0");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("repetition_penalty must be positive, got 0"), std::string::npos) << bad.err;
}

TEST(Cli, ScoreReproducesReferenceLossAndLogits) {
  MCD_SKIP_IF_NO_FIXTURE();
  test::TempDir tmp;
  const std::string ref_path = test::fixture_dir() + "/reference.safetensors";
  const CliRun r = run_cli("score --model " + test::fixture_dir() + " --tokens " + ref_path + " --out " +
                        tmp.file("logits.safetensors") + " --device cpu");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.last_line());
  const auto ref = io::load_safetensors(ref_path);
  const double ref_loss = ref.at("loss").item<double>();
  EXPECT_LT(std::abs(j.at("loss").get<double>() - ref_loss) / ref_loss, 1e-5);
  EXPECT_EQ(j.at("tokens").get<int64_t>(), 2 * 36);
  const auto got = io::load_safetensors(tmp.file("logits.safetensors"));
  EXPECT_LT(test::rel_err(got.at("logits"), ref.at("logits")), 1e-4);
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const std::string sub : {"", "info", "init", "generate", "score", "zeroshot", "tokenize", "profile"}) {
    const CliRun r = run_cli(sub + " --help");
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.out.find("--"), std::string::npos) << sub << ": " << r.out;
  }
  EXPECT_NE(run_cli("generate --help").out.find("--max-new-tokens"), std::string::npos);
  EXPECT_NE(run_cli("generate --help").out.find("16"), std::string::npos);  // defaults are shown
}

TEST(Cli, ErrorsNameTheProblemAndExitNonZero) {
  const CliRun missing = run_cli("generate --model /nonexistent/model --prompt-ids 1,2 --device cpu");
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find("/nonexistent/model"), std::string::npos) << missing.err;
  EXPECT_TRUE(missing.out.empty());
  const CliRun bad_flag = run_cli("--deterministic maybe flops --preset mamba-tiny");
  EXPECT_NE(bad_flag.status, 0);
  EXPECT_NE(bad_flag.err.find("--deterministic must be on or off, got 'maybe'"), std::string::npos) << bad_flag.err;
  EXPECT_EQ(run_cli("--deterministic on flops --preset mamba-tiny").status, 0);
  MCD_SKIP_IF_NO_FIXTURE();
  const CliRun bad_ids = run_cli("generate --model " + test::fixture_dir() + " --prompt-ids 1,x,3 --device cpu");
  EXPECT_NE(bad_ids.status, 0);
  EXPECT_NE(bad_ids.err.find("invalid token id 'x'"), std::string::npos) << bad_ids.err;
  const CliRun out_of_vocab = run_cli("generate --model " + test::fixture_dir() + " --prompt-ids 1,9999 --device cpu");
  EXPECT_NE(out_of_vocab.status, 0);
  EXPECT_NE(out_of_vocab.err.find("9999"), std::string::npos) << out_of_vocab.err;
  const CliRun no_ids = run_cli("score --model " + test::fixture_dir() + " --tokens " + test::fixture_dir() +
                             "/model.safetensors --device cpu");
  EXPECT_NE(no_ids.status, 0);
  EXPECT_NE(no_ids.err.find("no tensor named 'input_ids'"), std::string::npos) << no_ids.err;
  const CliRun bad_device = run_cli("score --model " + test::fixture_dir() + " --tokens x --device tpu");
  EXPECT_NE(bad_device.status, 0);
  EXPECT_NE(bad_device.err.find("tpu"), std::string::npos) << bad_device.err;
}

TEST(Cli, InitInfoAndScoreAFreshModel) {
  test::TempDir tmp;
  const CliRun init = run_cli("init --preset mamba-tiny --seed 1 --out " + tmp.file("m"));
  ASSERT_EQ(init.status, 0) << init.err;
  const CliRun info = run_cli("info --model " + tmp.file("m"));
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.last_line()).at("parameters").get<int64_t>(),
            ModelConfig::from_json_file(tmp.file("m/config.json")).num_parameters());
  const CliRun gen = run_cli("generate --model " + tmp.file("m") + " --prompt-ids 3 --max-new-tokens 5 --greedy --ignore-eos --device cpu");
  ASSERT_EQ(gen.status, 0) << gen.err;
  const std::string line = gen.last_line();
  EXPECT_EQ(std::count(line.begin(), line.end(), ','), 5);
}

TEST(Cli, TokenizePrintsIds) {
  test::TempDir tmp;
  std::ofstream(tmp.file("t.txt")) << "Hello world";
  const CliRun r = run_cli("tokenize --text-file " + tmp.file("t.txt"));
  if (r.status != 0 && r.err.find("gpt2") != std::string::npos) GTEST_SKIP() << "GPT-2 assets absent: " << r.err;
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.last_line(), "15496,995");
}

TEST(Cli, TokenizeRefusesADirectory) {
  // A directory opens as an empty stream: it used to print an empty line and exit 0.
  test::TempDir tmp;
  const CliRun r = run_cli("tokenize --text-file " + tmp.path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(tmp.path), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("directory"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  const CliRun missing = run_cli("tokenize --text-file " + tmp.file("absent.txt"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.err.find(tmp.file("absent.txt")), std::string::npos) << missing.err;
}

// LibTorch's c10::Error carries a C++ backtrace in what(); the user sees only the message, with
// the option at fault named where the CLI can.
TEST(Cli, LibTorchErrorsReachTheUserWithoutBacktrace) {
  MCD_SKIP_IF_NO_FIXTURE();
  for (const std::string device : {"tpu", "cpu:1", "cuda:x", "cuda:"}) {
    const CliRun r = run_cli("generate --model " + test::fixture_dir() + " --prompt-ids 1,2 --device " + device);
    EXPECT_NE(r.status, 0) << device;
    EXPECT_NE(r.err.find("--device"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("'" + device + "'"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Exception raised from"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("frame #"), std::string::npos) << r.err;
  }
  // Token ids outside the vocabulary: named, no backtrace.
  test::TempDir tmp;
  io::save_safetensors(tmp.file("ids.safetensors"), {{"input_ids", torch::full({1, 4}, -3, torch::kLong)}});
  const CliRun r = run_cli("score --model " + test::fixture_dir() + " --tokens " + tmp.file("ids.safetensors") +
                           " --device cpu");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("mamba-codesign: error: score: token ids must be in [0, 512)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Exception raised from"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("frame #"), std::string::npos) << r.err;
}

// With --threads 0 ("every core") each of N local ranks gets cores / N threads (at least 1), as torchrun
// holds its ranks to one: N ranks on every core would run N times as many busy threads as there are cores.
TEST(Cli, LaunchSharesTheCoresAmongRanksWhenThreadsIsEveryCore) {
  const CliRun r = run_cli("launch --nproc 2 --master-port 0 --dry-run -- info --preset mamba-tiny", "", /*threads=*/0);
  ASSERT_EQ(r.status, 0) << r.err;
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const std::string expected = " --threads " + std::to_string(std::max(1, cores / 2)) + " --blas-threads -1 ";
  std::istringstream lines(r.out);
  int ranks = 0;
  for (std::string line; std::getline(lines, line); ++ranks) EXPECT_NE(line.find(expected), std::string::npos) << line;
  EXPECT_EQ(ranks, 2) << r.out;
}

// The global options given before `launch` reach every rank (they used to be dropped, so a rank
// ran on every core while a one-process run used --threads 1).
TEST(Cli, LaunchForwardsGlobalOptionsAndPicksAFreePort) {
  const CliRun r = run_cli("--blas-threads 2 --ops reference --scan-plan low_memory --scan-time-segments off "
                           "--scan-narrow-backward four_lanes --decode-overlap off "
                           "--decode-fused-conv off --decode-fused-head off --decode-few-row-limit 3 --deterministic on "
                           "launch --nproc 2 "
                           "--master-port 0 "
                           "--dry-run -- info --preset mamba-tiny",
                           "", /*threads=*/3);
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<std::string> ranks;
  while (std::getline(lines, line)) ranks.push_back(line);
  ASSERT_EQ(ranks.size(), 2u) << r.out;
  std::string port;
  for (int rank = 0; rank < 2; ++rank) {
    const std::string& l = ranks[size_t(rank)];
    EXPECT_NE(l.find("RANK=" + std::to_string(rank) + " "), std::string::npos) << l;
    EXPECT_NE(l.find("WORLD_SIZE=2 "), std::string::npos) << l;
    EXPECT_NE(l.find(" --threads 3 --blas-threads 2 --ops reference --fused-mixer on --save-conv-output off --save-in-proj-input on "
                     "--keep-cast-weights on --decode-overlap off --decode-fused-conv off --decode-fused-head off "
                     "--decode-few-row-limit 3 --scan-plan low_memory --scan-time-segments off --scan-narrow-backward four_lanes --deterministic on info "
                     "--preset mamba-tiny"),
              std::string::npos)
        << l;
    const auto at = l.find("MASTER_PORT=");
    ASSERT_NE(at, std::string::npos) << l;
    const std::string p = l.substr(at + 12, l.find(' ', at) - at - 12);
    if (rank == 0) port = p;
    EXPECT_EQ(p, port) << "every rank gets the same port";
    EXPECT_GE(std::stoi(p), 1);
    EXPECT_LE(std::stoi(p), 65535);
  }
  // And for real: both ranks run the subcommand.
  const CliRun real = run_cli("launch --nproc 2 --master-port 0 -- info --preset mamba-tiny");
  ASSERT_EQ(real.status, 0) << real.err;
  EXPECT_EQ(std::count(real.out.begin(), real.out.end(), '\n'), 2) << real.out;
}

TEST(Cli, MasterPortOutsideTheTcpRangeIsRefused) {
  for (const std::string port : {"65536", "70000", "-1", "4294967296"}) {
    const CliRun r = run_cli("launch --nproc 1 --master-port " + port + " -- info --preset mamba-tiny");
    EXPECT_NE(r.status, 0) << port;
    EXPECT_NE(r.err.find("--master-port"), std::string::npos) << port << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  EXPECT_EQ(run_cli("launch --nproc 1 --master-port 65535 --dry-run -- info --preset mamba-tiny").status, 0);
}

}  // namespace
}  // namespace mcd
