// Helpers shared by the GLUE and custom readers (internal to src/data/glue): whole-file reads,
// lines without their CR/LF, tab splitting and strict number parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcd::data::glue::detail {

// The file's bytes. A missing path (or a directory) is an mcd::Error naming it and `what`
// ("GLUE sst2 train file", "custom data file").
std::string read_whole_file(const std::string& path, const std::string& what);

struct Line {
  std::string_view text;  // without the '\n' and one '\r' before it
  int64_t number = 0;     // 1-based
};

// The lines of `content` after a leading UTF-8 BOM. A final '\n' ends the last line rather than
// starting an empty one; a last line without '\n' counts like any other.
std::vector<Line> split_lines(std::string_view content);

// Fields between tabs (no quote handling: GLUE's texts contain unbalanced quotes).
std::vector<std::string_view> split_tabs(std::string_view line);

// A whole field as a decimal integer ([-]digits) / a finite real (strtod's syntax without
// leading blanks, "nan" or "inf"); nullopt when it is not one.
std::optional<int64_t> parse_integer(std::string_view field);
std::optional<double> parse_real(std::string_view field);

// Empty or only ASCII whitespace.
bool is_blank(std::string_view text);

// "a, b, c" (for messages that list what was expected or found).
std::string join_names(const std::vector<std::string>& names);
std::string join_names(const std::vector<std::string_view>& names);

}  // namespace mcd::data::glue::detail
