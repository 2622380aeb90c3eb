// Methods and SGH-PEFT's layer allocation (see allocation.h).
#include "peft/allocation.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "eval/statistics.h"
#include "util/error.h"

namespace mcd::peft {

Method parse_method(const std::string& name) {
  if (name == "full") return Method::kFull;
  if (name == "probe") return Method::kProbe;
  if (name == "lora") return Method::kLora;
  if (name == "ia3") return Method::kIa3;
  if (name == "sgh") return Method::kSgh;
  fail(cat("unknown fine-tuning method '", name, "' (valid: full, probe, lora, ia3, sgh)"));
}

const char* method_name(Method m) {
  switch (m) {
    case Method::kFull: return "full";
    case Method::kProbe: return "probe";
    case Method::kLora: return "lora";
    case Method::kIa3: return "ia3";
    case Method::kSgh: return "sgh";
  }
  return "?";
}

const char* treatment_name(LayerTreatment t) {
  switch (t) {
    case LayerTreatment::kFull: return "full";
    case LayerTreatment::kFrozen: return "frozen";
    case LayerTreatment::kLora: return "lora";
    case LayerTreatment::kIa3: return "ia3";
  }
  return "?";
}

namespace {

LayerTreatment parse_treatment(const std::string& name, const std::string& where) {
  for (LayerTreatment t : {LayerTreatment::kFull, LayerTreatment::kFrozen, LayerTreatment::kLora, LayerTreatment::kIa3})
    if (name == treatment_name(t)) return t;
  fail(cat(where, ": unknown layer treatment '", name, "' (valid: full, frozen, lora, ia3)"));
}

// j[key] as T, with an error naming the file and the key.
template <typename T>
T get(const nlohmann::json& j, const std::string& key, const std::string& where) {
  MCD_CHECK(j.is_object() && j.contains(key), where, ": missing key '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    fail(cat(where, ": key '", key, "' has the wrong type (", e.what(), ")"));
  }
}

}  // namespace

LayerImportances read_layer_importances(const std::string& path) {
  std::ifstream in(path);
  MCD_CHECK(in.good(), "cannot read importance file ", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(cat(path, ": not valid JSON (", e.what(), ")"));
  }
  const std::string format = get<std::string>(j, "format", path);
  MCD_CHECK(format == "mcd-sdm-importance", path, ": format is '", format,
            "', expected 'mcd-sdm-importance' (written by `prune` or `importance`)");
  const int version = get<int>(j, "version", path);
  MCD_CHECK(version == 1, path, ": version ", version, " is not supported (expected 1)");
  LayerImportances r;
  r.path = path;
  r.source = get<std::string>(j, "source", path);
  MCD_CHECK(r.source == "sdm_gates" || r.source == "magnitude_proxy", path, ": source '", r.source,
            "' is neither sdm_gates nor magnitude_proxy");
  MCD_CHECK(j.contains("layers") && j["layers"].is_array() && !j["layers"].empty(), path,
            ": 'layers' must be a non-empty array");
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    const auto& l = j["layers"][i];
    const std::string where = cat(path, ": layers[", i, "]");
    MCD_CHECK(get<int64_t>(l, "layer", where) == int64_t(i), where, ": 'layer' must be ", i);
    const double v = get<double>(l, "mean_keep_prob", where);
    MCD_CHECK(std::isfinite(v) && v >= 0 && v <= 1, where, ": mean_keep_prob ", v, " is not in [0, 1]");
    const int64_t width = get<int64_t>(l, "width", where);
    auto kept = get<std::vector<int64_t>>(l, "kept", where);
    for (int64_t c : kept) MCD_CHECK(c >= 0 && c < width, where, ": kept channel ", c, " outside [0, ", width, ")");
    r.values.push_back(v);
    r.widths.push_back(width);
    r.kept.push_back(std::move(kept));
  }
  return r;
}

int64_t Allocation::count(LayerTreatment t) const {
  return std::count_if(layers.begin(), layers.end(), [&](const LayerPlan& l) { return l.treatment == t; });
}

Allocation allocate(Method method, int64_t num_layers, const PeftSettings& s, const LayerImportances* imp) {
  MCD_CHECK(num_layers >= 1, "allocation needs at least one layer");
  MCD_CHECK(s.on_in_proj || s.on_out_proj || method == Method::kFull || method == Method::kProbe,
            "adapters need a target: in_proj, out_proj or both");
  Allocation a;
  a.method = method;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int64_t l = 0; l < num_layers; ++l) a.layers.push_back({l, nan, LayerTreatment::kFull, 0});
  auto set_all = [&](LayerTreatment t) {
    for (auto& l : a.layers) {
      l.treatment = t;
      l.rank = t == LayerTreatment::kLora ? s.lora.rank : 0;
    }
  };
  switch (method) {
    case Method::kFull: set_all(LayerTreatment::kFull); return a;
    case Method::kProbe: set_all(LayerTreatment::kFrozen); return a;
    case Method::kLora: set_all(LayerTreatment::kLora); return a;
    case Method::kIa3: set_all(LayerTreatment::kIa3); return a;
    case Method::kSgh: break;
  }
  MCD_CHECK(imp != nullptr, "method sgh needs layer importances (--importance FILE from `prune` or `importance`)");
  MCD_CHECK(int64_t(imp->values.size()) == num_layers, imp->path, " has ", imp->values.size(),
            " layers but the model has ", num_layers);
  MCD_CHECK(s.lora_percentile >= 0 && s.lora_percentile <= 100, "the LoRA percentile must be in [0, 100], got ",
            s.lora_percentile);
  MCD_CHECK(s.freeze_percentile >= 0 && s.freeze_percentile <= s.lora_percentile,
            "the freeze percentile must be in [0, LoRA percentile ", s.lora_percentile, "], got ", s.freeze_percentile);
  a.importance_source = imp->source;
  a.importance_path = imp->path;
  a.lora_threshold = eval::percentile(imp->values, s.lora_percentile);
  a.freeze_threshold = s.freeze_percentile > 0 ? eval::percentile(imp->values, s.freeze_percentile) : -1;
  double lora_sum = 0;
  int64_t lora_layers = 0;
  for (auto& l : a.layers) {
    l.importance = imp->values[l.layer];
    if (l.importance >= a.lora_threshold) {
      l.treatment = LayerTreatment::kLora;
      lora_sum += l.importance;
      ++lora_layers;
    } else if (l.importance < a.freeze_threshold) {
      l.treatment = LayerTreatment::kFrozen;
    } else {
      l.treatment = LayerTreatment::kIa3;
    }
  }
  const int64_t max_rank = s.max_rank > 0 ? s.max_rank : 2 * s.lora.rank;
  MCD_CHECK(s.min_rank >= 1 && s.min_rank <= max_rank, "rank bounds must satisfy 1 ≤ min ≤ max, got ", s.min_rank,
            " and ", max_rank);
  const double mean_lora = lora_layers > 0 ? lora_sum / double(lora_layers) : 0;
  for (auto& l : a.layers) {
    if (l.treatment != LayerTreatment::kLora) continue;
    if (!s.scale_ranks || mean_lora <= 0) {
      l.rank = s.lora.rank;
    } else {
      const auto scaled = int64_t(std::llround(double(s.lora.rank) * l.importance / mean_lora));
      l.rank = std::clamp(scaled, s.min_rank, max_rank);
    }
  }
  return a;
}

nlohmann::json allocation_to_json(const Allocation& a) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : a.layers) {
    nlohmann::json e = {{"layer", l.layer}, {"treatment", treatment_name(l.treatment)}};
    e["importance"] = std::isfinite(l.importance) ? nlohmann::json(l.importance) : nlohmann::json(nullptr);
    if (l.treatment == LayerTreatment::kLora) e["rank"] = l.rank;
    layers.push_back(e);
  }
  nlohmann::json j = {{"method", method_name(a.method)},
                      {"counts",
                       {{"lora", a.count(LayerTreatment::kLora)},
                        {"ia3", a.count(LayerTreatment::kIa3)},
                        {"frozen", a.count(LayerTreatment::kFrozen)},
                        {"full", a.count(LayerTreatment::kFull)}}},
                      {"layers", layers}};
  if (a.method == Method::kSgh) {
    j["importance_source"] = a.importance_source;
    j["importance_file"] = a.importance_path;
    j["lora_threshold"] = a.lora_threshold;
    j["freeze_threshold"] = a.freeze_threshold >= 0 ? nlohmann::json(a.freeze_threshold) : nlohmann::json(nullptr);
  }
  return j;
}

Allocation allocation_from_json(const nlohmann::json& j, const std::string& where) {
  Allocation a;
  a.method = parse_method(get<std::string>(j, "method", where));
  if (a.method == Method::kSgh) {
    a.importance_source = get<std::string>(j, "importance_source", where);
    a.importance_path = get<std::string>(j, "importance_file", where);
    a.lora_threshold = get<double>(j, "lora_threshold", where);
  }
  MCD_CHECK(j.contains("layers") && j["layers"].is_array(), where, ": 'layers' must be an array");
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    const auto& e = j["layers"][i];
    const std::string w = cat(where, ": layers[", i, "]");
    LayerPlan l;
    l.layer = get<int64_t>(e, "layer", w);
    MCD_CHECK(l.layer == int64_t(i), w, ": 'layer' must be ", i);
    l.treatment = parse_treatment(get<std::string>(e, "treatment", w), w);
    l.importance = e.contains("importance") && e["importance"].is_number() ? e["importance"].get<double>()
                                                                          : std::numeric_limits<double>::quiet_NaN();
    if (l.treatment == LayerTreatment::kLora) {
      l.rank = get<int64_t>(e, "rank", w);
      MCD_CHECK(l.rank >= 1, w, ": rank must be at least 1");
    }
    a.layers.push_back(l);
  }
  return a;
}

std::string describe(const Allocation& a) {
  std::ostringstream o;
  o << "allocation (" << method_name(a.method) << "): " << a.count(LayerTreatment::kLora) << " LoRA, "
    << a.count(LayerTreatment::kIa3) << " IA3, " << a.count(LayerTreatment::kFrozen) << " frozen, "
    << a.count(LayerTreatment::kFull) << " full";
  if (a.method == Method::kSgh)
    o << "; importance from " << a.importance_source << " (" << a.importance_path << "), LoRA at I >= "
      << a.lora_threshold;
  o << "\n";
  for (const auto& l : a.layers) {
    char line[128];
    if (std::isfinite(l.importance))
      std::snprintf(line, sizeof(line), "  layer %3lld  I=%.4f  %s", static_cast<long long>(l.layer), l.importance,
                    treatment_name(l.treatment));
    else
      std::snprintf(line, sizeof(line), "  layer %3lld  %s", static_cast<long long>(l.layer), treatment_name(l.treatment));
    o << line;
    if (l.treatment == LayerTreatment::kLora) o << " r=" << l.rank;
    o << "\n";
  }
  return o.str();
}

}  // namespace mcd::peft
