// Which layers get which adapter (METHOD.md §4): the methods of the comparison and SGH-PEFT's
// allocation by layer importance.
//   full   every parameter trained (full fine-tuning)
//   probe  only the classification head (linear probe)
//   lora   LoRA on every layer          ia3   IA³ on every layer
//   sgh    LoRA on layers with importance at or above the p-th percentile, IA³ on the rest;
//          optionally LoRA ranks scaled by importance (budget mode) and layers frozen below a
//          percentile.
// Importance comes from the file `prune` or `importance` writes (docs/sdm.md); this component
// reads that file itself and depends on nothing but the model.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "peft/adapters.h"

namespace mcd::peft {

enum class Method { kFull, kProbe, kLora, kIa3, kSgh };
Method parse_method(const std::string& name);  // full | probe | lora | ia3 | sgh
const char* method_name(Method method);

enum class LayerTreatment { kFull, kFrozen, kLora, kIa3 };
const char* treatment_name(LayerTreatment treatment);  // full | frozen | lora | ia3

struct PeftSettings {
  Method method = Method::kSgh;
  LoraOptions lora;                 // rank 16, alpha 2·rank, dropout 0.05 (METHOD §4)
  bool on_in_proj = true, on_out_proj = true;  // adapter targets
  double lora_percentile = 75;      // sgh: importance ≥ this percentile → LoRA
  bool scale_ranks = false;         // sgh budget mode: rank_l = round(rank·I_l / mean I over LoRA layers)
  int64_t min_rank = 1, max_rank = 0;  // bounds of scaled ranks (max 0: 2·rank)
  double freeze_percentile = 0;     // sgh: importance below this percentile → frozen (0: none)
};

// The importance of every layer as read from an importance file.
struct LayerImportances {
  std::string source;          // "sdm_gates" | "magnitude_proxy"
  std::string path;            // the file it came from
  std::vector<double> values;  // I_l per layer
  std::vector<std::vector<int64_t>> kept;  // per layer, the kept channels (unpruned numbering)
  std::vector<int64_t> widths;             // per layer, the unpruned width E_l
};
// Reads format "mcd-sdm-importance" v1 (docs/sdm.md). Errors name the file and the key.
LayerImportances read_layer_importances(const std::string& path);

struct LayerPlan {
  int64_t layer = 0;
  double importance = 0;  // NaN when the method needs none
  LayerTreatment treatment = LayerTreatment::kFull;
  int64_t rank = 0;       // LoRA rank (0 unless kLora)
};

struct Allocation {
  Method method = Method::kSgh;
  std::string importance_source, importance_path;  // empty unless sgh
  double lora_threshold = 0, freeze_threshold = 0;  // sgh: the percentile values of I
  std::vector<LayerPlan> layers;
  int64_t count(LayerTreatment t) const;
};

// The plan for `num_layers` layers. `importances` is needed (and must have num_layers values) for
// sgh only. Percentiles interpolate linearly between order statistics (eval/statistics' rule).
Allocation allocate(Method method, int64_t num_layers, const PeftSettings& settings,
                    const LayerImportances* importances = nullptr);

nlohmann::json allocation_to_json(const Allocation& allocation);
Allocation allocation_from_json(const nlohmann::json& j, const std::string& where);
// One line per layer for the terminal: "layer  3  I=0.8123  lora r=16".
std::string describe(const Allocation& allocation);

}  // namespace mcd::peft
