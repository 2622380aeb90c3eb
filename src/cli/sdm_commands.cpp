// SDM subcommands: `prune` (a KeepPlan from gates or magnitudes → a pruned HF-format checkpoint
// plus importance.json, one JSON summary line) and `flops` (the analytic FLOP/parameter breakdown
// of sdm/flops.h). Registered in main.cpp like the other commands (commands.h).
#include <nlohmann/json.hpp>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/commands.h"
#include "data/tokenizer/vocab_map.h"
#include "model/checkpoint.h"
#include "sdm/flops.h"
#include "sdm/importance.h"
#include "sdm/prune.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::cli {
namespace {

// The canonical absolute path of an existing file or folder (symlinks, `..`, trailing slashes
// resolved); errors name the option.
std::string real_path(const std::string& path, const char* option) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  MCD_CHECK(resolved, option, " ", path, ": ", std::strerror(errno));
  std::string s(resolved);
  std::free(resolved);
  return s;
}

}  // namespace

Command add_prune(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "prune", "physically prune a model's inner channels (SDM gates or magnitude) into a smaller dense model");
  struct Args {
    std::string model, out, magnitude, widths_from;
    double sparsity = 0;
    bool threshold = false;
    sdm::PlanOptions plan;
    CLI::Option* sparsity_opt = nullptr;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "HF-format model folder (with SDM gates, or gate-less with --magnitude)")
      ->required();
  sub->add_option("--out", a->out, "output folder: config.json, model.safetensors, importance.json")->required();
  a->sparsity_opt = sub->add_option("--sparsity", a->sparsity,
                                    "global channel sparsity: keep exactly the top round(total*(1-s)) channels "
                                    "(by gate logit, or by magnitude with --magnitude)");
  a->sparsity_opt->check(CLI::Range(0.0, 1.0));
  auto* threshold_opt = sub->add_flag("--threshold", a->threshold,
                                      "keep channels whose deterministic gate z (U = 0.5) is > 0 "
                                      "(default for a gated model without --sparsity)");
  threshold_opt->excludes(a->sparsity_opt);
  a->sparsity_opt->excludes(threshold_opt);
  sub->add_option("--granularity", a->plan.granularity, "prune blocks of g adjacent channels")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--round-to", a->plan.round_to,
                  "round each layer's kept width up to a multiple of m, adding its next best channels")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--min-channels", a->plan.min_channels,
                  "keep at least k channels per layer (0: refuse a layer left empty)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--magnitude", a->magnitude,
                  "gate-less models: rank channels by weight magnitude, one 'global' ranking or 'per_layer'")
      ->check(CLI::IsMember({"global", "per_layer"}));
  sub->add_option("--widths-from", a->widths_from,
                  "gate-less models: keep each layer's kept_width from this importance.json (magnitude ranking)");
  return {sub, [a] {
            const bool has_sparsity = a->sparsity_opt->count() > 0;
            // Writing into the source folder would replace the model being pruned. A missing
            // --out cannot be the (existing) --model, so only an existing one needs resolving.
            MCD_CHECK(!fs::exists(a->out) || real_path(a->out, "--out") != real_path(a->model, "--model"),
                      "prune: --out ", a->out, " is the --model folder ", a->model,
                      "; writing there would overwrite the source checkpoint (choose another --out)");
            MambaLM model = load_pretrained(a->model);
            model->eval();
            const ModelConfig& config = model->config();
            const bool gated = !config.gate_type.empty();
            sdm::KeepPlan plan;
            if (gated) {
              MCD_CHECK(a->magnitude.empty() && a->widths_from.empty(), a->model,
                        " has SDM gates: --magnitude and --widths-from are for gate-less models; use "
                        "--threshold or --sparsity");
              plan = has_sparsity ? sdm::plan_topk(*model, a->sparsity, a->plan) : sdm::plan_threshold(*model, a->plan);
            } else {
              MCD_CHECK(!a->threshold, a->model, " has no SDM gates, so --threshold has nothing to threshold; "
                        "pass --magnitude global|per_layer with --sparsity or --widths-from");
              MCD_CHECK(!a->magnitude.empty() || !a->widths_from.empty(), a->model,
                        " has no SDM gates (config.json has no sdm_gate_type): pass --magnitude global|per_layer "
                        "with --sparsity s for the magnitude baseline, or --widths-from importance.json");
              if (!a->widths_from.empty()) {
                MCD_CHECK(!has_sparsity, "--widths-from fixes every layer's width; drop --sparsity");
                const sdm::Importance source = sdm::read_importance(a->widths_from);
                MCD_CHECK(int64_t(source.layers.size()) == config.n_layer, a->widths_from, ": has ",
                          source.layers.size(), " layers, ", a->model, " has ", config.n_layer);
                std::vector<int64_t> widths;
                for (int64_t l = 0; l < config.n_layer; ++l) {
                  MCD_CHECK(source.layers[l].width == config.inner_width(l), a->widths_from, ": layers[", l,
                            "].width is ", source.layers[l].width, ", but ", a->model, "'s layer ", l, " has ",
                            config.inner_width(l), " channels");
                  widths.push_back(source.layers[l].kept_width);
                }
                plan = sdm::plan_magnitude_widths(*model, widths, a->plan, a->widths_from);
              } else {
                MCD_CHECK(has_sparsity, "--magnitude needs --sparsity s (or --widths-from importance.json)");
                plan = sdm::plan_magnitude(*model, a->sparsity, sdm::parse_magnitude_scope(a->magnitude), a->plan);
              }
            }
            MambaLM pruned = sdm::apply_plan(*model, plan);
            sdm::Importance importance = sdm::compute_importance(*model, plan);
            if (!a->widths_from.empty()) importance.plan["widths_from"] = a->widths_from;
            save_pretrained(*pruned, a->out);
            data::copy_tokenizer_files(a->model, a->out);  // the pruned model keeps its tokenizer
            sdm::write_importance(fs::join(a->out, "importance.json"), importance);

            ModelConfig dense = config;  // the unpruned model without its gates
            dense.gate_type.clear();
            dense.gate_block = 1;
            const nlohmann::json cmp = sdm::compare_flops(dense, pruned->config());
            std::vector<double> kept_fraction;
            for (const auto& l : importance.layers) kept_fraction.push_back(double(l.kept_width) / double(l.width));
            nlohmann::json j;
            j["out"] = a->out;
            j["method"] = plan.method;
            j["requested_sparsity"] =
                std::isnan(plan.requested_sparsity) ? nlohmann::json(nullptr) : nlohmann::json(plan.requested_sparsity);
            j["sparsity"] = importance.sparsity();
            j["kept_channels"] = importance.total_kept_width();
            j["total_channels"] = importance.total_width();
            j["kept_width"] = plan.widths();
            j["kept_fraction"] = kept_fraction;
            j["dense_parameters"] = cmp["dense"]["parameters"];
            j["pruned_parameters"] = cmp["pruned"]["parameters"];
            j["dense_flops_per_token"] = cmp["dense"]["forward_flops_per_token"];
            j["pruned_flops_per_token"] = cmp["pruned"]["forward_flops_per_token"];
            j["flops_ratio"] = cmp["forward_flops_ratio"];
            j["parameters_ratio"] = cmp["parameters_ratio"];
            std::cout << j.dump() << std::endl;
          }};
}

Command add_importance(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "importance", "write a model's layer/channel importance (SDM gates, or the magnitude proxy) without pruning");
  struct Args {
    std::string model, out;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "HF-format model folder (SDM-gated, or gate-less for the proxy)")->required();
  sub->add_option("--out", a->out, "importance file to write (format: docs/sdm.md)")->required();
  return {sub, [a] {
            MambaLM model = load_pretrained(a->model);
            // Gated: the gates' keep probabilities, with the channels their deterministic value keeps.
            // Gate-less: the labelled magnitude proxy of METHOD §4, every channel kept (nothing is pruned).
            const bool gated = !model->backbone->gates().empty();
            const sdm::KeepPlan plan = gated ? sdm::plan_threshold(*model)
                                             : sdm::plan_magnitude(*model, 0.0, sdm::MagnitudeScope::kPerLayer);
            const sdm::Importance importance = sdm::compute_importance(*model, plan);
            sdm::write_importance(a->out, importance);
            nlohmann::json line = {{"importance", a->out}, {"source", importance.source},
                                   {"layers", importance.layers.size()}};
            nlohmann::json per_layer = nlohmann::json::array();
            for (const auto& l : importance.layers) per_layer.push_back(l.mean_keep_prob);
            line["mean_keep_prob"] = per_layer;
            std::cout << line.dump() << std::endl;
          }};
}

Command add_flops(CLI::App& app) {
  auto* sub = app.add_subcommand("flops", "analytic forward FLOPs per token and parameter counts (one JSON line)");
  struct Args {
    std::string model, preset, config;
    int64_t seq_len = 1;
  };
  auto a = std::make_shared<Args>();
  auto* group = sub->add_option_group("model", "where the model configuration comes from");
  group->add_option("--model", a->model, "HF-format model folder (only config.json is read)");
  group->add_option("--preset", a->preset, "named preset from configs/models (e.g. mamba-130m)");
  group->add_option("--config", a->config, "model YAML file");
  group->require_option(1);
  sub->add_option("--seq-len", a->seq_len, "tokens per sequence for the per_sequence totals")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return {sub, [a] {
            const ModelConfig c = !a->model.empty()    ? ModelConfig::from_json_file(fs::join(a->model, "config.json"))
                                  : !a->preset.empty() ? model_preset(a->preset)
                                                       : ModelConfig::from_yaml_file(a->config);
            std::cout << sdm::flops_json(c, a->seq_len).dump() << std::endl;
          }};
}

}  // namespace mcd::cli
