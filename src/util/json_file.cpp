// See json_file.h.
#include "util/json_file.h"

#include <fstream>

#include "util/error.h"

namespace mcd {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  MCD_CHECK(in.good(), "cannot read ", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(cat(path, ": not valid JSON (", e.what(), ")"));
  }
}

}  // namespace mcd
