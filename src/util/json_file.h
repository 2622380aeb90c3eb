// A whole JSON file read into memory, with errors that name the file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mcd {

// Throws mcd::Error naming `path` when it cannot be read or is not valid JSON.
nlohmann::json read_json_file(const std::string& path);

}  // namespace mcd
