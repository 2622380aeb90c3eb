// Strict YAML access with errors that name the file, key and line (see strict_yaml.h).
#include "config/strict_yaml.h"

#include <fstream>
#include <sstream>

#include "util/error.h"

namespace mcd::config {
namespace {
std::string line_of(const YAML::Node& n) {
  const auto m = n.Mark();
  return m.line >= 0 ? cat(" (line ", m.line + 1, ")") : std::string();
}
}  // namespace

YAML::Node load_yaml_file(const std::string& path) {
  std::ifstream f(path);
  MCD_CHECK(f.good(), path, ": cannot open config file");
  try {
    return YAML::Load(f);
  } catch (const YAML::Exception& e) {
    fail(cat(path, ": invalid YAML at line ", e.mark.line + 1, ", column ", e.mark.column + 1,
             ": ", e.msg));
  }
}

StrictYamlMap::StrictYamlMap(YAML::Node node, std::string where)
    : node_(std::move(node)), where_(std::move(where)) {
  MCD_CHECK(node_.IsMap(), where_, ": expected a mapping of keys to values", line_of(node_));
}

bool StrictYamlMap::has(const std::string& key) const { return bool(node_[key]); }

YAML::Node StrictYamlMap::raw(const std::string& key) const { return node_[key]; }

template <typename T>
T StrictYamlMap::get(const std::string& key, const T& fallback, const char* type_name) const {
  const YAML::Node v = node_[key];
  if (!v) return fallback;
  MCD_CHECK(v.IsScalar(), where_, ": key '", key, "' must be ", type_name, line_of(v));
  try {
    return v.as<T>();
  } catch (const YAML::Exception&) {
    fail(cat(where_, ": key '", key, "' must be ", type_name, ", got '", v.Scalar(), "'",
             line_of(v)));
  }
}

int64_t StrictYamlMap::get_int(const std::string& key, int64_t fallback) const {
  return get<int64_t>(key, fallback, "an integer");
}
double StrictYamlMap::get_double(const std::string& key, double fallback) const {
  return get<double>(key, fallback, "a number");
}
bool StrictYamlMap::get_bool(const std::string& key, bool fallback) const {
  return get<bool>(key, fallback, "true or false");
}
std::string StrictYamlMap::get_string(const std::string& key, const std::string& fallback) const {
  return get<std::string>(key, fallback, "a string");
}

std::vector<int64_t> StrictYamlMap::get_int_list(const std::string& key) const {
  const YAML::Node v = node_[key];
  if (!v) return {};
  MCD_CHECK(v.IsSequence(), where_, ": key '", key, "' must be a list of integers", line_of(v));
  std::vector<int64_t> out;
  for (const auto& item : v) {
    try {
      out.push_back(item.as<int64_t>());
    } catch (const YAML::Exception&) {
      fail(cat(where_, ": key '", key, "' must be a list of integers", line_of(item)));
    }
  }
  return out;
}

void StrictYamlMap::reject_unknown(const std::set<std::string>& known) const {
  for (const auto& kv : node_) {
    const std::string key = kv.first.as<std::string>();
    if (known.count(key)) continue;
    std::ostringstream list;
    for (const auto& k : known) list << (list.tellp() ? ", " : "") << k;
    fail(cat(where_, ": unknown key '", key, "'", line_of(kv.first), " (known keys: ", list.str(),
             ")"));
  }
}

}  // namespace mcd::config
