// `mamba-codesign zeroshot`: zero-shot multiple-choice accuracy by log-likelihood (docs/eval.md,
// "Zero-shot multiple choice"). Each choice is scored by the sum of its tokens' log-probabilities
// after the context (infer/choice_scoring.h); acc takes the largest sum, acc_norm the largest sum
// per character of the choice (lm-evaluation-harness's two accuracies). Several models are scored
// on the same examples and each compared with the first: the accuracy difference with a paired
// bootstrap interval, the examples only one of the two gets right and McNemar's exact p.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <tuple>

#include "cli/commands.h"
#include "eval/statistics.h"
#include "infer/choice_scoring.h"
#include "model/checkpoint.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

#ifdef MCD_HAS_TOKENIZER
#include "data/choice_data.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/vocab_map.h"
#endif

namespace mcd::cli {
#ifdef MCD_HAS_TOKENIZER
namespace {

int64_t argmax(const std::vector<double>& v) {
  int64_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[size_t(best)]) best = int64_t(i);
  return best;
}

nlohmann::json interval_json(const eval::ProportionInterval& p) {
  return {{"estimate", p.estimate}, {"lower", p.lower}, {"upper", p.upper}, {"level", p.level}, {"correct", p.successes},
          {"n", p.n}};
}

// lm-evaluation-harness's acc_norm length: the choice's characters (code points), without the one space that
// separates it from the context (the harness keeps that delimiter out of its choices; ours carry it).
double normalising_length(const std::string& choice) {
  int64_t code_points = 0;
  for (unsigned char ch : choice) code_points += (ch & 0xC0) != 0x80;
  if (!choice.empty() && choice[0] == ' ') --code_points;
  return double(std::max<int64_t>(code_points, 1));
}

}  // namespace
#endif

Command add_zeroshot(CLI::App& app) {
  auto* sub = app.add_subcommand("zeroshot", "zero-shot multiple-choice accuracy by log-likelihood (JSON lines in, JSON out)");
  struct Args {
    std::vector<std::string> models;
    std::string data, out, device = "auto", dtype = "float32";
    int64_t batch = 8, max_length = 2048, limit = 0, resamples = 10000;
    uint64_t seed = eval::kDefaultBootstrapSeed;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->models, "model folder (repeat to compare models on the same examples; the first is the reference)")
      ->required();
  sub->add_option("--data", a->data,
                  "JSON lines, one example each: {\"context\": ..., \"choices\": [...], \"label\": k} (docs/eval.md)")
      ->required();
  sub->add_option("--batch", a->batch, "sequences (context + one choice) per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--max-length", a->max_length, "tokens per sequence; longer contexts lose their start")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 30))
      ->capture_default_str();
  sub->add_option("--limit", a->limit, "score only the first N examples (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--device", a->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  sub->add_option("--dtype", a->dtype, "parameter dtype: float32, float64, bfloat16")
      ->check(CLI::IsMember({"float32", "float64", "bfloat16"}))
      ->capture_default_str();
  sub->add_option("--resamples", a->resamples, "bootstrap resamples for the paired accuracy differences")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "bootstrap seed")->capture_default_str();
  sub->add_option("--out", a->out, "JSON file: per model the accuracies with Wilson intervals, every example's scores, "
                                   "and the comparisons with the first model");
  return {sub, [a] {
#ifndef MCD_HAS_TOKENIZER
            fail("zeroshot needs the tokenizer, which this build lacks");
#else
            std::vector<data::ChoiceExample> examples = data::read_choice_jsonl(a->data);
            if (a->limit > 0 && int64_t(examples.size()) > a->limit) examples.resize(size_t(a->limit));
            const torch::Device device = parse_device(a->device);
            LoadOptions lo;
            lo.device = device;
            lo.dtype = a->dtype == "float64" ? at::kDouble : a->dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
            // The first model's tokenizer; every model must read the same ids the same way.
            const ModelConfig first = ModelConfig::from_json_file(fs::join(a->models[0], "config.json"));
            const data::BpeTokenizer tokenizer = data::tokenizer_for_model(a->models[0], first.real_vocab_size());
            for (const std::string& dir : a->models) {
              const ModelConfig c = ModelConfig::from_json_file(fs::join(dir, "config.json"));
              MCD_CHECK(data::tokenizer_for_model(dir, c.real_vocab_size()).fingerprint() == tokenizer.fingerprint() &&
                            c.eos_token_id == first.eos_token_id,
                        "zeroshot: ", dir, " does not read text as ", a->models[0],
                        " does (another tokenizer, vocabulary map or EOS id): compared models must share them");
            }
            auto encode = [&](const std::string& text) {
              std::vector<int64_t> ids;
              for (int32_t id : tokenizer.encode(text)) ids.push_back(id);
              return ids;
            };
            std::vector<infer::ChoiceRequest> requests;
            for (const auto& e : examples) {
              infer::ChoiceRequest q;
              q.context = encode(e.context);
              for (const auto& choice : e.choices) {
                q.choices.push_back(encode(choice));
                MCD_CHECK(!q.choices.back().empty(), a->data, ":", e.line, ": choice '", choice, "' has no token");
                MCD_CHECK(int64_t(q.choices.back().size()) < a->max_length, a->data, ":", e.line, ": choice '", choice,
                          "' has ", q.choices.back().size(), " tokens; --max-length ", a->max_length,
                          " leaves room for at most ", a->max_length - 1, " after one context token");
              }
              requests.push_back(std::move(q));
            }
            const size_t n = examples.size();
            nlohmann::json models = nlohmann::json::array(), comparisons = nlohmann::json::array();
            std::vector<std::vector<double>> correct(a->models.size()), correct_norm(a->models.size());
            for (size_t m = 0; m < a->models.size(); ++m) {
              MambaLM model = load_pretrained(a->models[m], lo);
              const auto scores = infer::score_choices(*model, requests, a->batch, a->max_length);
              nlohmann::json per_example = nlohmann::json::array();
              for (size_t i = 0; i < n; ++i) {
                std::vector<double> per_character;
                for (size_t k = 0; k < examples[i].choices.size(); ++k)
                  per_character.push_back(scores[i].log_likelihood[k] / normalising_length(examples[i].choices[k]));
                const int64_t pick = argmax(scores[i].log_likelihood), pick_norm = argmax(per_character);
                correct[m].push_back(pick == examples[i].label ? 1.0 : 0.0);
                correct_norm[m].push_back(pick_norm == examples[i].label ? 1.0 : 0.0);
                per_example.push_back({{"id", examples[i].id},
                                       {"label", examples[i].label},
                                       {"prediction", pick},
                                       {"prediction_norm", pick_norm},
                                       {"log_likelihood", scores[i].log_likelihood},
                                       {"tokens", scores[i].tokens},
                                       {"greedy", scores[i].greedy}});
              }
              const auto wilson = [n](const std::vector<double>& outcomes) {  // 0/1 per example
                return eval::wilson_interval(int64_t(std::accumulate(outcomes.begin(), outcomes.end(), 0.0)), int64_t(n));
              };
              const auto acc = wilson(correct[m]), acc_norm = wilson(correct_norm[m]);
              std::fprintf(stderr, "zeroshot: model %zu (%s): acc %.4f [%.4f, %.4f], acc_norm %.4f [%.4f, %.4f] over %zu examples\n",
                           m, a->models[m].c_str(), acc.estimate, acc.lower, acc.upper, acc_norm.estimate, acc_norm.lower,
                           acc_norm.upper, n);
              models.push_back({{"path", a->models[m]},
                                {"parameters", model->config().num_parameters()},
                                {"acc", interval_json(acc)},
                                {"acc_norm", interval_json(acc_norm)},
                                {"examples", per_example}});
              if (m > 0) {
                nlohmann::json c = {{"model", m}, {"against", 0}};
                for (const auto& [name, mine, theirs] :
                     {std::make_tuple("acc", &correct[m], &correct[0]), std::make_tuple("acc_norm", &correct_norm[m], &correct_norm[0])}) {
                  int64_t only_this = 0, only_first = 0;
                  for (size_t i = 0; i < n; ++i) {
                    only_this += (*mine)[i] > (*theirs)[i];
                    only_first += (*mine)[i] < (*theirs)[i];
                  }
                  nlohmann::json d = {{"only_this_right", only_this},
                                      {"only_first_right", only_first},
                                      {"mcnemar_exact_p", eval::mcnemar_exact_p(only_this, only_first)},
                                      {"difference", nullptr}};  // a bootstrap needs two examples
                  if (n >= 2) {
                    eval::BootstrapOptions bo;
                    bo.resamples = a->resamples;
                    bo.seed = a->seed;
                    const auto ci = eval::bootstrap_mean_difference(*mine, *theirs, bo);
                    d["difference"] = {{"estimate", ci.estimate}, {"lower", ci.lower}, {"upper", ci.upper},
                                       {"level", ci.level},       {"resamples", ci.resamples}};
                  }
                  c[name] = d;
                }
                comparisons.push_back(c);
              }
            }
            nlohmann::json out = {{"data", a->data},
                                  {"examples", n},
                                  {"device", device.str()},
                                  {"dtype", a->dtype},
                                  {"max_length", a->max_length},
                                  {"scoring", "sum of the choice's token log-probabilities after the context; acc_norm "
                                              "divides by the choice's characters without its leading space"},
                                  {"models", models},
                                  {"comparisons", comparisons}};
            if (!a->out.empty()) write_text_atomic(a->out, out.dump(1) + "\n");
            nlohmann::json line = {{"examples", n}};
            nlohmann::json accs = nlohmann::json::array();
            for (const auto& m : models) accs.push_back({{"path", m["path"]}, {"acc", m["acc"]["estimate"]},
                                                        {"acc_norm", m["acc_norm"]["estimate"]}});
            line["models"] = accs;
            if (!a->out.empty()) line["out"] = a->out;
            std::cout << line.dump() << std::endl;
#endif
          }};
}

}  // namespace mcd::cli
