// The SDM importance file (see importance.h): computing it from a model and a KeepPlan, and
// writing/reading it as JSON with every key checked, so a later stage never reads a half-valid file.
#include "sdm/importance.h"

#include <cmath>
#include <fstream>

#include "util/atomic_file.h"
#include "util/error.h"

namespace mcd::sdm {
using nlohmann::json;

namespace {

std::vector<double> to_doubles(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(torch::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Typed access with errors naming the file and the key path.
const json& need(const json& obj, const char* key, const std::string& where, const std::string& path) {
  MCD_CHECK(obj.is_object(), where, ": '", path.empty() ? "(top level)" : path, "' must be a JSON object");
  const auto it = obj.find(key);
  MCD_CHECK(it != obj.end(), where, ": required key '", path.empty() ? "" : path + ".", key, "' is missing");
  return *it;
}

int64_t need_int(const json& obj, const char* key, const std::string& where, const std::string& path) {
  const json& v = need(obj, key, where, path);
  MCD_CHECK(v.is_number_integer(), where, ": key '", path.empty() ? "" : path + ".", key,
            "' must be an integer, got ", v.type_name());
  return v.get<int64_t>();
}

double need_number(const json& obj, const char* key, const std::string& where, const std::string& path) {
  const json& v = need(obj, key, where, path);
  MCD_CHECK(v.is_number(), where, ": key '", path.empty() ? "" : path + ".", key, "' must be a number, got ",
            v.type_name());
  return v.get<double>();
}

std::string need_string(const json& obj, const char* key, const std::string& where, const std::string& path) {
  const json& v = need(obj, key, where, path);
  MCD_CHECK(v.is_string(), where, ": key '", path.empty() ? "" : path + ".", key, "' must be a string, got ",
            v.type_name());
  return v.get<std::string>();
}

template <typename T>
std::vector<T> need_array(const json& obj, const char* key, int64_t length, const std::string& where,
                          const std::string& path) {
  const std::string name = path + "." + key;
  const json& v = need(obj, key, where, path);
  MCD_CHECK(v.is_array(), where, ": key '", name, "' must be an array, got ", v.type_name());
  MCD_CHECK(length < 0 || int64_t(v.size()) == length, where, ": key '", name, "' has ", v.size(),
            " entries, expected ", length);
  std::vector<T> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    if constexpr (std::is_integral_v<T>) {
      MCD_CHECK(e.is_number_integer(), where, ": '", name, "[", i, "]' must be an integer, got ", e.type_name());
    } else {
      MCD_CHECK(e.is_number(), where, ": '", name, "[", i, "]' must be a number, got ", e.type_name());
    }
    out.push_back(e.get<T>());
  }
  return out;
}

}  // namespace

int64_t Importance::total_width() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.width;
  return n;
}

int64_t Importance::total_kept_width() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.kept_width;
  return n;
}

double Importance::sparsity() const {
  const int64_t total = total_width();
  return total > 0 ? 1.0 - double(total_kept_width()) / double(total) : 0.0;
}

json plan_json(const KeepPlan& plan) {
  json j;
  j["method"] = plan.method;
  j["sparsity"] = std::isnan(plan.requested_sparsity) ? json(nullptr) : json(plan.requested_sparsity);
  j["granularity"] = plan.options.granularity;
  j["round_to"] = plan.options.round_to;
  j["min_channels"] = plan.options.min_channels;
  j["unit"] = plan.unit;
  return j;
}

Importance compute_importance(MambaLMImpl& model, const KeepPlan& plan) {
  const ModelConfig& c = model.config();
  MCD_CHECK(int64_t(plan.kept.size()) == c.n_layer, "importance: the plan has ", plan.kept.size(),
            " layers, the model ", c.n_layer);
  torch::NoGradGuard no_grad;
  Importance imp;
  imp.plan = plan_json(plan);
  const bool gated = !c.gate_type.empty();
  imp.source = gated ? "sdm_gates" : "magnitude_proxy";
  imp.gate_type = c.gate_type;
  imp.gate_block = gated ? c.gate_block : 1;
  std::vector<at::Tensor> proxy;
  if (!gated) {
    proxy = magnitude_scores(model);
    double top = 0;
    for (const auto& s : proxy) top = std::max(top, s.max().item<double>());
    for (auto& s : proxy) s = top > 0 ? s / top : s;
  }
  const std::vector<ChannelGate> gates = model.backbone->gates();
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerImportance li;
    li.width = c.inner_width(l);
    li.kept = plan.kept[l];
    li.kept_width = int64_t(li.kept.size());
    li.kept_count = (plan.scale[l] != 0).sum().item<int64_t>();
    if (gated) {
      const ChannelGateImpl& gate = *gates.at(size_t(l));
      const at::Tensor p = gate.prob_open().detach();  // (E/g)
      li.alpha = to_doubles(gate.expand(gate.log_alpha.detach()));
      li.keep_prob = to_doubles(gate.expand(p));
      li.mean_keep_prob = p.to(at::kDouble).mean().item<double>();
    } else {
      li.keep_prob = to_doubles(proxy[l]);
      li.mean_keep_prob = proxy[l].mean().item<double>();
    }
    imp.layers.push_back(std::move(li));
  }
  return imp;
}

json importance_to_json(const Importance& imp) {
  json j;
  j["format"] = kImportanceFormat;
  j["version"] = kImportanceVersion;
  j["source"] = imp.source;
  if (imp.source == "sdm_gates") {
    j["gate_type"] = imp.gate_type;
    j["gate_block"] = imp.gate_block;
  }
  j["plan"] = imp.plan;
  int64_t kept_count = 0;
  double prob_sum = 0;
  for (const auto& l : imp.layers) {
    kept_count += l.kept_count;
    prob_sum += l.mean_keep_prob * double(l.width);
  }
  j["totals"] = {{"width", imp.total_width()},
                 {"kept_count", kept_count},
                 {"kept_width", imp.total_kept_width()},
                 {"sparsity", imp.sparsity()},
                 {"mean_keep_prob", imp.total_width() > 0 ? prob_sum / double(imp.total_width()) : 0.0}};
  json layers = json::array();
  for (size_t i = 0; i < imp.layers.size(); ++i) {
    const LayerImportance& l = imp.layers[i];
    json e;
    e["layer"] = int64_t(i);
    e["width"] = l.width;
    e["kept_count"] = l.kept_count;
    e["kept_width"] = l.kept_width;
    e["mean_keep_prob"] = l.mean_keep_prob;
    if (imp.source == "sdm_gates") e["alpha"] = l.alpha;
    e["keep_prob"] = l.keep_prob;
    e["kept"] = l.kept;
    layers.push_back(std::move(e));
  }
  j["layers"] = std::move(layers);
  return j;
}

Importance importance_from_json(const json& j, const std::string& where) {
  MCD_CHECK(j.is_object(), where, ": an importance file must be a JSON object");
  const std::string format = need_string(j, "format", where, "");
  MCD_CHECK(format == kImportanceFormat, where, ": key 'format' is '", format, "', expected '",
            kImportanceFormat, "'");
  const int64_t version = need_int(j, "version", where, "");
  MCD_CHECK(version == kImportanceVersion, where, ": key 'version' is ", version, ", this build reads version ",
            kImportanceVersion);
  Importance imp;
  imp.source = need_string(j, "source", where, "");
  MCD_CHECK(imp.source == "sdm_gates" || imp.source == "magnitude_proxy", where, ": key 'source' is '",
            imp.source, "' (valid: sdm_gates, magnitude_proxy)");
  const bool gated = imp.source == "sdm_gates";
  if (gated) {
    imp.gate_type = need_string(j, "gate_type", where, "");
    MCD_CHECK(imp.gate_type == "hard_concrete" || imp.gate_type == "gumbel", where, ": key 'gate_type' is '",
              imp.gate_type, "' (valid: hard_concrete, gumbel)");
    imp.gate_block = need_int(j, "gate_block", where, "");
    MCD_CHECK(imp.gate_block >= 1, where, ": key 'gate_block' must be >= 1, got ", imp.gate_block);
  }
  imp.plan = need(j, "plan", where, "");
  MCD_CHECK(imp.plan.is_object(), where, ": key 'plan' must be an object");
  const json& layers = need(j, "layers", where, "");
  MCD_CHECK(layers.is_array() && !layers.empty(), where, ": key 'layers' must be a non-empty array");
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string path = cat("layers[", i, "]");
    const json& e = layers[i];
    MCD_CHECK(e.is_object(), where, ": '", path, "' must be an object, got ", e.type_name());
    LayerImportance li;
    li.width = need_int(e, "width", where, path);
    MCD_CHECK(li.width >= 1, where, ": '", path, ".width' must be >= 1, got ", li.width);
    li.kept_width = need_int(e, "kept_width", where, path);
    MCD_CHECK(li.kept_width >= 0 && li.kept_width <= li.width, where, ": '", path, ".kept_width' ",
              li.kept_width, " is outside [0, width=", li.width, "]");
    li.kept_count = need_int(e, "kept_count", where, path);
    MCD_CHECK(li.kept_count >= 0 && li.kept_count <= li.kept_width, where, ": '", path, ".kept_count' ",
              li.kept_count, " is outside [0, kept_width=", li.kept_width, "]");
    li.mean_keep_prob = need_number(e, "mean_keep_prob", where, path);
    MCD_CHECK(li.mean_keep_prob >= 0 && li.mean_keep_prob <= 1, where, ": '", path, ".mean_keep_prob' ",
              li.mean_keep_prob, " is outside [0, 1]");
    li.keep_prob = need_array<double>(e, "keep_prob", li.width, where, path);
    for (size_t c = 0; c < li.keep_prob.size(); ++c)
      MCD_CHECK(li.keep_prob[c] >= 0 && li.keep_prob[c] <= 1, where, ": '", path, ".keep_prob[", c, "]' ",
                li.keep_prob[c], " is outside [0, 1]");
    if (gated) {
      li.alpha = need_array<double>(e, "alpha", li.width, where, path);
    } else {
      MCD_CHECK(!e.contains("alpha") || e["alpha"].is_null(), where, ": '", path,
                ".alpha' must be absent for source 'magnitude_proxy'");
    }
    li.kept = need_array<int64_t>(e, "kept", li.kept_width, where, path);
    for (size_t c = 0; c < li.kept.size(); ++c)
      MCD_CHECK(li.kept[c] >= 0 && li.kept[c] < li.width && (c == 0 || li.kept[c] > li.kept[c - 1]), where,
                ": '", path, ".kept' must be sorted, unique and in [0, ", li.width, "); entry ", c, " is ",
                li.kept[c]);
    imp.layers.push_back(std::move(li));
  }
  const json& totals = need(j, "totals", where, "");
  const int64_t total_width = need_int(totals, "width", where, "totals");
  const int64_t total_kept = need_int(totals, "kept_width", where, "totals");
  MCD_CHECK(total_width == imp.total_width(), where, ": 'totals.width' is ", total_width,
            " but the layers' widths sum to ", imp.total_width());
  MCD_CHECK(total_kept == imp.total_kept_width(), where, ": 'totals.kept_width' is ", total_kept,
            " but the layers' kept widths sum to ", imp.total_kept_width());
  return imp;
}

namespace {

// The file's text: top-level keys in reading order, then one line per layer with its scalars
// before its per-channel arrays (a 24-layer file stays 24 lines of layers, not 100k lines).
std::string importance_text(const json& j) {
  std::string s = "{\n";
  for (const char* key : {"format", "version", "source", "gate_type", "gate_block", "plan", "totals"})
    if (j.contains(key)) s += cat("  \"", key, "\": ", j[key].dump(), ",\n");
  s += "  \"layers\": [\n";
  const json& layers = j["layers"];
  for (size_t i = 0; i < layers.size(); ++i) {
    nlohmann::ordered_json o;
    for (const char* key : {"layer", "width", "kept_count", "kept_width", "mean_keep_prob", "kept", "keep_prob", "alpha"})
      if (layers[i].contains(key)) o[key] = layers[i][key];
    s += "    " + o.dump() + (i + 1 < layers.size() ? ",\n" : "\n");
  }
  return s + "  ]\n}\n";
}

}  // namespace

void write_importance(const std::string& path, const Importance& importance) {
  write_text_atomic(path, importance_text(importance_to_json(importance)));
}

Importance read_importance(const std::string& path) {
  std::ifstream f(path);
  MCD_CHECK(f.good(), path, ": cannot open importance file");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    fail(cat(path, ": invalid JSON: ", e.what()));
  }
  return importance_from_json(j, path);
}

}  // namespace mcd::sdm
