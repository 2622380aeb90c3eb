// permutation.json and applying it (see permutation.h).
#include "csp/permutation.h"

#include <fstream>
#include <sstream>

#include "model/channel_surgery.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace mcd::csp {

nlohmann::json to_json(const Permutation& p) {
  nlohmann::json j;
  j["format"] = kPermutationFormat;
  j["version"] = kPermutationVersion;
  j["calibration"] = p.calibration;
  j["settings"] = p.settings;
  nlohmann::json layers = nlohmann::json::array();
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const LayerPermutation& lp = p.layers[l];
    layers.push_back({{"layer", l},
                      {"width", lp.width},
                      {"unit", lp.unit},
                      {"order", lp.order},
                      {"objective",
                       {{"identity", lp.objective.identity},
                        {"random", lp.objective.random},
                        {"greedy", lp.objective.greedy},
                        {"final", lp.objective.final}}},
                      {"converged", lp.converged},
                      {"rounds", lp.rounds},
                      {"two_opt_moves", lp.two_opt_moves},
                      {"or_opt_moves", lp.or_opt_moves},
                      {"seconds", lp.seconds}});
  }
  j["layers"] = layers;
  return j;
}

Permutation permutation_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    MCD_CHECK(j.is_object() && j.value("format", "") == kPermutationFormat, source,
              ": not a CSP permutation file (\"format\" is not \"", kPermutationFormat, "\")");
    MCD_CHECK(j.at("version").get<int>() == kPermutationVersion, source, ": version ", j.at("version"),
              " is not the supported ", kPermutationVersion);
    Permutation p;
    p.calibration = j.value("calibration", nlohmann::json::object());
    p.settings = j.value("settings", nlohmann::json::object());
    const nlohmann::json& layers = j.at("layers");
    MCD_CHECK(layers.is_array(), source, ": \"layers\" must be an array");
    for (size_t l = 0; l < layers.size(); ++l) {
      const nlohmann::json& e = layers[l];
      LayerPermutation lp;
      MCD_CHECK(e.at("layer").get<int64_t>() == int64_t(l), source, ": layers[", l, "].layer is ", e.at("layer"));
      lp.width = e.at("width").get<int64_t>();
      lp.unit = e.value("unit", int64_t(1));
      lp.order = e.at("order").get<std::vector<int64_t>>();
      const nlohmann::json& o = e.value("objective", nlohmann::json::object());
      lp.objective = {o.value("identity", 0.0), o.value("random", 0.0), o.value("greedy", 0.0), o.value("final", 0.0)};
      lp.converged = e.value("converged", false);
      lp.rounds = e.value("rounds", int64_t(0));
      lp.two_opt_moves = e.value("two_opt_moves", int64_t(0));
      lp.or_opt_moves = e.value("or_opt_moves", int64_t(0));
      lp.seconds = e.value("seconds", 0.0);
      p.layers.push_back(std::move(lp));
    }
    return p;
  } catch (const nlohmann::json::exception& e) {
    fail(cat(source, ": malformed CSP permutation file: ", e.what()));
  }
}

void write_permutation(const std::string& path, const Permutation& p) {
  write_text_atomic(path, to_json(p).dump(1) + "\n");
}

Permutation read_permutation(const std::string& path) {
  std::ifstream in(path);
  MCD_CHECK(in.good(), path, ": cannot open CSP permutation file");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    fail(cat(path, ": not valid JSON: ", e.what()));
  }
  return permutation_from_json(j, path);
}

void check_matches(const Permutation& p, const ModelConfig& config, const std::string& source) {
  MCD_CHECK(int64_t(p.layers.size()) == config.n_layer, source, ": has ", p.layers.size(),
            " layers, the model has ", config.n_layer);
  const int64_t gate_unit = config.gate_type.empty() ? 1 : config.gate_block;
  for (int64_t l = 0; l < config.n_layer; ++l) {
    const LayerPermutation& lp = p.layers[size_t(l)];
    MCD_CHECK(lp.width == config.inner_width(l), source, ": layer ", l, " is for width ", lp.width,
              ", the model's layer ", l, " has ", config.inner_width(l), " channels");
    MCD_CHECK(int64_t(lp.order.size()) == lp.width, source, ": layer ", l, "'s order has ", lp.order.size(),
              " entries, expected ", lp.width);
    const at::Tensor perm = torch::tensor(lp.order, torch::kLong);
    MCD_CHECK(is_permutation(perm, lp.width), source, ": layer ", l, "'s order is not a permutation of [0, ",
              lp.width, ")");
    MCD_CHECK(lp.unit >= 1 && lp.unit % gate_unit == 0, source, ": layer ", l, " moves units of ", lp.unit,
              " channels, but the model's SDM gates cover blocks of ", gate_unit);
    // Whole units, in order: order[u·k + i] = order[u·k] + i with order[u·k] a multiple of u.
    for (int64_t c = 0; c < lp.width; ++c) {
      const int64_t start = lp.order[size_t(c - c % lp.unit)];
      MCD_CHECK(start % lp.unit == 0 && lp.order[size_t(c)] == start + c % lp.unit, source, ": layer ", l,
                "'s order splits a unit of ", lp.unit, " channels at position ", c);
    }
  }
}

void apply_permutation(MambaLMImpl& model, const Permutation& p, const std::string& source) {
  check_matches(p, model.config(), source);
  for (size_t l = 0; l < p.layers.size(); ++l)
    permute_channels(*model.backbone->blocks[l]->mixer, torch::tensor(p.layers[l].order, torch::kLong));
}

}  // namespace mcd::csp
