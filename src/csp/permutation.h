// CSP's result and how it is applied (METHOD.md §3): a channel order per layer, the objectives it
// was chosen by, and the calibration behind it — written as permutation.json beside the permuted
// model. Applying permutes every E-indexed tensor of each mixer through the model's channel surgery
// (in_proj x and z rows, conv1d, x_proj columns, dt_proj rows and bias, A_log, D, out_proj columns,
// the SDM gate logits, adapters), so the model computes the same function. A file made for another
// model (layer count, widths, gate blocks) is refused.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "model/mamba.h"

namespace mcd::csp {

// Σ|corr| between neighbours of four orders of one layer (METHOD.md §3 asks for all four).
struct PathObjectives {
  double identity = 0, random = 0, greedy = 0, final = 0;
};

struct LayerPermutation {
  int64_t width = 0;               // E_l
  int64_t unit = 1;                // channels moved together (the SDM gate block)
  std::vector<int64_t> order;      // new channel c = old channel order[c]
  PathObjectives objective;        // channel-level Σ|corr| of each order
  bool converged = false;          // local search reached a 2-opt/Or-opt optimum within the limit
  int64_t rounds = 0, two_opt_moves = 0, or_opt_moves = 0;
  double seconds = 0;              // ordering time of this layer
};

struct Permutation {
  std::vector<LayerPermutation> layers;
  nlohmann::json calibration = nlohmann::json::object();  // tokens, sequences, seq_len, source
  nlohmann::json settings = nlohmann::json::object();     // time limit, seed, device
};

constexpr const char* kPermutationFormat = "mamba-codesign/csp-permutation";
constexpr int kPermutationVersion = 1;

nlohmann::json to_json(const Permutation& p);
// `source` names the file in errors.
Permutation permutation_from_json(const nlohmann::json& j, const std::string& source);
void write_permutation(const std::string& path, const Permutation& p);  // atomic (temp + rename)
Permutation read_permutation(const std::string& path);

// Refuses (mcd::Error naming `source` and the first mismatch) a permutation whose layer count,
// widths or units do not fit `config`, or whose orders are not permutations moving whole units.
void check_matches(const Permutation& p, const ModelConfig& config, const std::string& source);

// Checks, then permutes every layer of `model` in place.
void apply_permutation(MambaLMImpl& model, const Permutation& p, const std::string& source = "permutation");

}  // namespace mcd::csp
