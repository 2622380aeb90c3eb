// Strict reading of our own YAML files: every key must be known, every value the right type,
// and each error names the file, the key and (where yaml-cpp knows it) the line.
// Model configs (model_config.cpp) and, later, training configs read through this.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

namespace mcd::config {

class StrictYamlMap {
 public:
  // `where` is the file name (and section) used in messages.
  StrictYamlMap(YAML::Node node, std::string where);

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;  // empty if absent
  YAML::Node raw(const std::string& key) const;

  // Throws mcd::Error for the first key that is not in `known` (and lists the known keys).
  void reject_unknown(const std::set<std::string>& known) const;

  const std::string& where() const { return where_; }

 private:
  template <typename T>
  T get(const std::string& key, const T& fallback, const char* type_name) const;
  YAML::Node node_;
  std::string where_;
};

YAML::Node load_yaml_file(const std::string& path);  // errors name the file and line

}  // namespace mcd::config
