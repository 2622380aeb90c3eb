// The `csp` subcommand (METHOD.md §3, docs/csp.md): calibrate u correlations on text, order each
// layer's channels, write the permuted model (HF format) and permutation.json; or, with --apply,
// permute a model by an existing permutation.json (refused when it was made for another model).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/token_input.h"
#include "csp/correlation.h"
#include "csp/permutation.h"
#include "csp/stage.h"
#include "data/tokenizer/vocab_map.h"
#include "model/checkpoint.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Command add_csp(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "csp", "correlation-guided channel permutation: calibrate, order each layer's channels, write the permuted model");
  struct Args {
    std::string model, out, calib, apply, format = "auto", device = "auto", calib_gates = "trained";
    int64_t tokens = 20000, seq_len = 256, per_document = 0, batch = 8, max_rounds = -1;
    double time_limit = 2.0;
    uint64_t seed = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "HF-format model folder (dense, SDM-gated or pruned)")->required();
  sub->add_option("--out", a->out, "output folder: config.json, model.safetensors, permutation.json")->required();
  auto* calib = sub->add_option("--calib", a->calib,
                                "calibration text: a corpus file or folder (the model's tokenizer) or a .safetensors file "
                                "with input_ids (B x L int64)");
  auto* apply = sub->add_option("--apply", a->apply, "permute by this permutation.json instead of calibrating");
  calib->excludes(apply);
  apply->excludes(calib);
  sub->add_option("--tokens", a->tokens, "calibration tokens (whole sequences covering this many)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--seq-len", a->seq_len, "tokens per calibration sequence (corpus input)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--per-document", a->per_document,
                  "at most this many tokens from each document (0: --seq-len), so the sequences span many documents")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--format", a->format, "corpus format: auto, wikitext, wikiextractor, text")->capture_default_str();
  sub->add_option("--batch", a->batch, "calibration sequences per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--time-limit", a->time_limit, "seconds of 2-opt/Or-opt search per layer")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--max-rounds", a->max_rounds, "local-search rounds per layer (-1: until a local optimum)")
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "seed of the reported random order")->capture_default_str();
  sub->add_option("--ordering-threads", a->threads, "layers ordered in parallel (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--calib-gates", a->calib_gates,
                  "SDM-gated models: calibrate with the gates as trained, or all held open (weights' correlations only)")
      ->check(CLI::IsMember({"trained", "open"}))
      ->capture_default_str();
  sub->add_option("--device", a->device, "cpu, cuda, cuda:N or auto (cuda if available)")->capture_default_str();
  return {sub, [a, calib, apply] {
            MCD_CHECK(calib->count() + apply->count() == 1, "csp: pass --calib PATH (calibrate and order) or --apply "
                      "permutation.json");
            MCD_CHECK(a->max_rounds >= -1, "csp: --max-rounds must be -1 or >= 0, got ", a->max_rounds);
            const auto t0 = std::chrono::steady_clock::now();
            const torch::Device device = parse_device(a->device);
            LoadOptions lo;
            lo.device = device;
            MambaLM model = load_pretrained(a->model, lo);
            model->eval();
            nlohmann::json summary;
            summary["out"] = a->out;
            csp::Permutation perm;
            if (apply->count()) {
              perm = csp::read_permutation(a->apply);  // apply_permutation below checks it against the model
              summary["applied"] = a->apply;
            } else {
              const auto tc = std::chrono::steady_clock::now();
              const TokenInput in = read_token_input(a->calib, a->format, a->seq_len, a->tokens,
                                                     a->per_document > 0 ? a->per_document : a->seq_len, "--calib",
                                                     a->model, model->config().real_vocab_size());
              if (in.ids.numel() < a->tokens)
                std::fprintf(stderr, "csp: warning: %s gave %lld calibration tokens, fewer than --tokens %lld\n",
                             a->calib.c_str(), (long long)in.ids.numel(), (long long)a->tokens);
              csp::CalibrationOptions co;
              co.batch_size = a->batch;
              co.open_gates = a->calib_gates == "open";
              const int64_t every = std::max<int64_t>(1, in.ids.size(0) / 10);
              co.progress = [every, tc](int64_t done, int64_t total) {
                if (done % every == 0 || done == total)
                  std::fprintf(stderr, "csp: calibration %lld/%lld sequences (%.1f s)\n", (long long)done,
                               (long long)total, seconds_since(tc));
              };
              const csp::Calibration calibration = csp::calibrate(*model, in.ids, co);
              const double calib_s = seconds_since(tc);

              const auto to = std::chrono::steady_clock::now();
              csp::OrderingOptions oo;
              oo.search.time_limit_s = a->time_limit;
              oo.search.max_rounds = a->max_rounds;
              oo.seed = a->seed;
              oo.threads = a->threads;
              const int64_t layers = model->config().n_layer;
              oo.on_layer = [layers](int64_t l, const csp::LayerPermutation& lp) {
                std::fprintf(stderr,
                             "csp: layer %lld/%lld (width %lld): sum|corr| identity %.2f random %.2f greedy %.2f "
                             "final %.2f (%s, %.2f s)\n",
                             (long long)l + 1, (long long)layers, (long long)lp.width, lp.objective.identity,
                             lp.objective.random, lp.objective.greedy, lp.objective.final,
                             lp.converged ? "local optimum" : "time limit", lp.seconds);
              };
              perm = csp::find_permutation(model->config(), calibration, oo);
              perm.calibration["source"] = a->calib;
              perm.calibration["input"] = in.source;
              perm.calibration["documents"] = in.documents;
              perm.calibration["gates"] = a->calib_gates;
              perm.settings["device"] = device.str();
              summary["calibration_seconds"] = calib_s;
              summary["ordering_seconds"] = seconds_since(to);
              summary["calibration_tokens"] = calibration.tokens();
            }
            csp::apply_permutation(*model, perm, apply->count() ? a->apply : std::string("the new permutation"));
            save_pretrained(*model, a->out);
            data::copy_tokenizer_files(a->model, a->out);  // the permuted model keeps its tokenizer
            csp::write_permutation(fs::join(a->out, "permutation.json"), perm);
            csp::PathObjectives total;
            int64_t converged = 0;
            for (const auto& lp : perm.layers) {
              total.identity += lp.objective.identity;
              total.random += lp.objective.random;
              total.greedy += lp.objective.greedy;
              total.final += lp.objective.final;
              converged += lp.converged;
            }
            summary["objective"] = {{"identity", total.identity},
                                    {"random", total.random},
                                    {"greedy", total.greedy},
                                    {"final", total.final}};
            summary["layers_converged"] = converged;
            summary["layers"] = perm.layers.size();
            summary["seconds"] = seconds_since(t0);
            std::cout << summary.dump() << std::endl;
          }};
}

}  // namespace mcd::cli
