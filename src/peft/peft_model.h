// Turning a classifier into the model a method trains (METHOD.md §4): attach the allocation's
// adapters, freeze what the method does not train, count parameters, merge for deployment, and
// save or load the adapters alone.
//   full   everything trainable (embeddings, every layer, final norm, head)
//   probe  the head only
//   lora / ia3 / sgh   adapters and the head; layers marked frozen get nothing
// SDM gate logits are never fine-tuned (they were decided in pre-training); on an unpruned gated
// model, adapters are masked to the channels the deterministic gates keep.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "model/classifier.h"
#include "peft/allocation.h"

namespace mcd::peft {

// Attaches adapters and sets requires_grad on every parameter of `model` for the method. Adapter
// initialisation is drawn from `seed`. The head stays trainable.
void prepare(MambaClassifierImpl& model, const Allocation& allocation, const PeftSettings& settings, uint64_t seed);

struct ParameterCounts {
  int64_t total = 0;       // every parameter of the classifier, adapters and head included
  int64_t trainable = 0;   // requires_grad, head included
  int64_t head = 0;        // the classification head (weight + bias), counted apart
  int64_t adapters = 0;    // LoRA/IA³ parameters
  int64_t base = 0;        // the classifier without adapters (backbone + head)
  nlohmann::json to_json() const;
};
ParameterCounts count_parameters(MambaClassifierImpl& model);

// Adapter parameter count a plan implies for a model with these widths (the formula the tests check):
// LoRA on in_proj r·(D + 2E), on out_proj r·(E + D); IA³ on in_proj 2E, on out_proj D.
int64_t expected_adapter_parameters(const Allocation& allocation, const PeftSettings& settings, int64_t d_model,
                                    const std::vector<int64_t>& widths);

// Folds every adapter into its projection and removes it: the merged model computes the same
// function (up to rounding) with no adapter cost.
void merge_adapters(MambaBackboneImpl& backbone);
bool has_adapters(MambaBackboneImpl& backbone);

// <dir>/adapter_model.safetensors (adapter tensors and the head, by name) and
// <dir>/adapter_config.json (method, settings, allocation, num_labels, pooling). Atomic.
void save_adapters(MambaClassifierImpl& model, const Allocation& allocation, const PeftSettings& settings,
                   const std::string& dir);
// Attaches the saved adapters to `model` (a classifier over the same base backbone) and loads
// them and the head. Errors name the file and the tensor.
void load_adapters(MambaClassifierImpl& model, const std::string& dir);

nlohmann::json settings_to_json(const PeftSettings& settings);

}  // namespace mcd::peft
