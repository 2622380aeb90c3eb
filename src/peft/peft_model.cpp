// Method application, parameter counts, merging and adapter files (see peft_model.h).
#include "peft/peft_model.h"

#include <fstream>

#include "io/safetensors_torch.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::peft {
namespace {

constexpr const char* kAdapterFormat = "mcd-peft-adapters";

// The channels an unpruned gated layer keeps (its deterministic gates open), or undefined.
at::Tensor keep_mask(MambaMixerImpl& mixer) {
  if (!mixer.gate) return at::Tensor();
  torch::NoGradGuard no_grad;
  return mixer.gate->expand(mixer.gate->deterministic_gates()).to(at::kCPU) > 0;
}

void attach(MambaMixerImpl& mixer, const LayerPlan& plan, const PeftSettings& s, at::Generator& gen) {
  const at::Tensor keep = keep_mask(mixer);
  const auto device = mixer.in_proj->weight.device();
  for (Projection p : {Projection::kIn, Projection::kOut}) {
    const bool target = p == Projection::kIn ? s.on_in_proj : s.on_out_proj;
    ProjectionAdapter a;
    if (target && plan.treatment == LayerTreatment::kLora) {
      LoraOptions o = s.lora;
      o.alpha = s.lora.alpha * double(plan.rank) / double(s.lora.rank);  // keeps α/r fixed when ranks scale
      o.rank = plan.rank;
      a = std::make_shared<LoraAdapterImpl>(p, mixer.d_model, mixer.d_inner, o, gen, keep);
    } else if (target && plan.treatment == LayerTreatment::kIa3) {
      a = std::make_shared<Ia3AdapterImpl>(p, mixer.d_model, mixer.d_inner, keep);
    }
    if (a) {
      a->to(device);
      a->train(mixer.is_training());  // a new module starts in training mode: follow the model's
    }
    mixer.set_adapter(p, a);
  }
}

bool is_adapter_parameter(const std::string& name) { return name.find("_adapter.") != std::string::npos; }

std::vector<int64_t> layer_widths(MambaBackboneImpl& backbone) {
  std::vector<int64_t> w;
  for (auto& b : backbone.blocks) w.push_back(b->mixer->d_inner);
  return w;
}

}  // namespace

nlohmann::json settings_to_json(const PeftSettings& s) {
  return {{"method", method_name(s.method)},
          {"lora", {{"rank", s.lora.rank}, {"alpha", s.lora.alpha}, {"dropout", s.lora.dropout}}},
          {"targets", [&] {
             nlohmann::json t = nlohmann::json::array();
             if (s.on_in_proj) t.push_back("in_proj");
             if (s.on_out_proj) t.push_back("out_proj");
             return t;
           }()},
          {"lora_percentile", s.lora_percentile},
          {"scale_ranks", s.scale_ranks},
          {"min_rank", s.min_rank},
          {"max_rank", s.max_rank},
          {"freeze_percentile", s.freeze_percentile}};
}

void prepare(MambaClassifierImpl& model, const Allocation& a, const PeftSettings& s, uint64_t seed) {
  MambaBackboneImpl& bb = *model.backbone;
  MCD_CHECK(a.layers.size() == bb.blocks.size(), "the allocation has ", a.layers.size(), " layers but the model has ",
            bb.blocks.size());
  at::Generator gen = make_cpu_generator(seed);
  const bool full = a.method == Method::kFull;
  for (auto& p : bb.parameters()) p.set_requires_grad(full);
  for (size_t l = 0; l < bb.blocks.size(); ++l) {
    MambaMixerImpl& mixer = *bb.blocks[l]->mixer;
    attach(mixer, a.layers[l], s, gen);
    for (auto& p : mixer.named_parameters()) {
      if (is_adapter_parameter(p.key())) p.value().set_requires_grad(true);
    }
    if (mixer.gate) mixer.gate->log_alpha.set_requires_grad(false);
  }
  for (auto& p : model.classifier->parameters()) p.set_requires_grad(true);
}

nlohmann::json ParameterCounts::to_json() const {
  return {{"total", total}, {"trainable", trainable}, {"head", head}, {"adapters", adapters}, {"base", base},
          {"trainable_without_head", trainable - head}};
}

ParameterCounts count_parameters(MambaClassifierImpl& model) {
  ParameterCounts c;
  for (const auto& p : model.named_parameters()) {
    const int64_t n = p.value().numel();
    c.total += n;
    if (p.value().requires_grad()) c.trainable += n;
    if (is_adapter_parameter(p.key())) c.adapters += n;
  }
  for (const auto& p : model.classifier->parameters()) c.head += p.numel();
  c.base = c.total - c.adapters;
  return c;
}

int64_t expected_adapter_parameters(const Allocation& a, const PeftSettings& s, int64_t D,
                                    const std::vector<int64_t>& widths) {
  MCD_CHECK(widths.size() == a.layers.size(), "widths and allocation differ in length");
  int64_t n = 0;
  for (size_t l = 0; l < widths.size(); ++l) {
    const int64_t E = widths[l], r = a.layers[l].rank;
    switch (a.layers[l].treatment) {
      case LayerTreatment::kLora:
        n += (s.on_in_proj ? r * (D + 2 * E) : 0) + (s.on_out_proj ? r * (E + D) : 0);
        break;
      case LayerTreatment::kIa3:
        n += (s.on_in_proj ? 2 * E : 0) + (s.on_out_proj ? D : 0);
        break;
      default:
        break;
    }
  }
  return n;
}

bool has_adapters(MambaBackboneImpl& bb) {
  for (auto& b : bb.blocks)
    if (b->mixer->adapter(Projection::kIn) || b->mixer->adapter(Projection::kOut)) return true;
  return false;
}

void merge_adapters(MambaBackboneImpl& bb) {
  for (auto& b : bb.blocks) {
    MambaMixerImpl& mx = *b->mixer;
    for (Projection p : {Projection::kIn, Projection::kOut}) {
      const ProjectionAdapter a = mx.adapter(p);
      if (!a) continue;
      auto& lin = p == Projection::kIn ? mx.in_proj : mx.out_proj;
      at::Tensor bias = lin->options.bias() ? lin->bias : at::Tensor();
      merge_into(a, lin->weight, bias);
      mx.set_adapter(p, nullptr);
    }
  }
}

void save_adapters(MambaClassifierImpl& model, const Allocation& a, const PeftSettings& s, const std::string& dir) {
  MCD_CHECK(a.method != Method::kFull, "full fine-tuning has no adapters to save alone: save the whole model");
  fs::make_dirs(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model.named_parameters())
    if (is_adapter_parameter(p.key())) tensors.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers())
    if (is_adapter_parameter(b.key())) tensors.emplace_back(b.key(), b.value());
  for (const auto& p : model.classifier->named_parameters()) tensors.emplace_back("classifier." + p.key(), p.value());
  io::save_safetensors(fs::join(dir, "adapter_model.safetensors"), tensors, {{"format", kAdapterFormat}});
  nlohmann::json config = {{"format", kAdapterFormat},
                           {"version", 1},
                           {"settings", settings_to_json(s)},
                           {"allocation", allocation_to_json(a)},
                           {"num_labels", model.classifier->weight.size(0)},
                           {"pooling", model.pooling == Pooling::kLastToken ? "last" : "mean"},
                           {"d_model", model.backbone->config.d_model},
                           {"widths", layer_widths(*model.backbone)}};
  write_text_atomic(fs::join(dir, "adapter_config.json"), config.dump(2) + "\n");
}

void load_adapters(MambaClassifierImpl& model, const std::string& dir) {
  const std::string config_path = fs::join(dir, "adapter_config.json");
  std::ifstream in(config_path);
  MCD_CHECK(in.good(), "cannot read ", config_path);
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(cat(config_path, ": not valid JSON (", e.what(), ")"));
  }
  MCD_CHECK(c.value("format", "") == kAdapterFormat, config_path, ": not an adapter config (format '",
            c.value("format", ""), "')");
  MCD_CHECK(c.contains("widths") && c["widths"].get<std::vector<int64_t>>() == layer_widths(*model.backbone),
            config_path, ": the adapters were trained on a model with other layer widths");
  MCD_CHECK(c.value("num_labels", int64_t(-1)) == model.classifier->weight.size(0), config_path, ": num_labels ",
            c.value("num_labels", int64_t(-1)), " differs from the classifier's ", model.classifier->weight.size(0));
  const Allocation a = allocation_from_json(c.at("allocation"), config_path + ": allocation");
  PeftSettings s;
  const auto& js = c.at("settings");
  s.method = a.method;
  s.lora.rank = js.at("lora").at("rank").get<int64_t>();
  s.lora.alpha = js.at("lora").at("alpha").get<double>();
  s.lora.dropout = js.at("lora").at("dropout").get<double>();
  const auto targets = js.at("targets").get<std::vector<std::string>>();
  s.on_in_proj = std::find(targets.begin(), targets.end(), "in_proj") != targets.end();
  s.on_out_proj = std::find(targets.begin(), targets.end(), "out_proj") != targets.end();
  prepare(model, a, s, /*seed=*/0);  // structure only: every value is loaded below
  const std::string tensors_path = fs::join(dir, "adapter_model.safetensors");
  auto tensors = io::load_safetensors(tensors_path);
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, at::Tensor& dst) {
    auto it = tensors.find(name);
    MCD_CHECK(it != tensors.end(), tensors_path, ": tensor '", name, "' is missing");
    MCD_CHECK(it->second.sizes() == dst.sizes(), tensors_path, ": tensor '", name, "' has shape ", it->second.sizes(),
              ", expected ", dst.sizes());
    dst.copy_(it->second);
    tensors.erase(it);
  };
  for (auto& p : model.named_parameters())
    if (is_adapter_parameter(p.key())) load(p.key(), p.value());
  for (auto& b : model.named_buffers())
    if (is_adapter_parameter(b.key())) load(b.key(), b.value());
  for (auto& p : model.classifier->named_parameters()) load("classifier." + p.key(), p.value());
  MCD_CHECK(tensors.empty(), tensors_path, ": unexpected tensor '", tensors.begin()->first, "'");
}

}  // namespace mcd::peft
