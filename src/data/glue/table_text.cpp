// Line, field and number helpers for the GLUE and custom readers (table_text.h).
#include "data/glue/table_text.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "data/corpus.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/mapped_file.h"

namespace mcd::data::glue::detail {

std::string read_whole_file(const std::string& path, const std::string& what) {
  MCD_CHECK(fs::exists(path), what, " '", path, "' does not exist");
  MCD_CHECK(fs::is_regular_file(path), what, " '", path, "' is not a regular file");
  const MappedFile file = MappedFile::open(path);
  return std::string(reinterpret_cast<const char*>(file.data()), file.size());
}

std::vector<Line> split_lines(std::string_view content) {
  content = strip_bom(content);
  std::vector<Line> lines;
  size_t pos = 0;
  int64_t number = 1;
  while (pos < content.size()) {
    const void* nl = std::memchr(content.data() + pos, '\n', content.size() - pos);
    const size_t end = nl ? size_t(static_cast<const char*>(nl) - content.data()) : content.size();
    std::string_view text = content.substr(pos, end - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    lines.push_back({text, number++});
    pos = end + 1;
  }
  return lines;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t begin = 0;
  while (true) {
    const size_t tab = line.find('\t', begin);
    if (tab == std::string_view::npos) {
      fields.push_back(line.substr(begin));
      return fields;
    }
    fields.push_back(line.substr(begin, tab - begin));
    begin = tab + 1;
  }
}

std::optional<int64_t> parse_integer(std::string_view field) {
  size_t i = field.substr(0, 1) == "-" ? 1 : 0;
  if (i == field.size()) return std::nullopt;
  for (size_t k = i; k < field.size(); ++k)
    if (field[k] < '0' || field[k] > '9') return std::nullopt;
  const std::string s(field);
  errno = 0;
  const long long value = std::strtoll(s.c_str(), nullptr, 10);
  if (errno == ERANGE) return std::nullopt;
  return int64_t(value);
}

std::optional<double> parse_real(std::string_view field) {
  // strtod would accept leading blanks, hex floats, "nan" and "inf"; a label is none of these.
  if (field.empty()) return std::nullopt;
  for (char c : field)
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      return std::nullopt;
  const std::string s(field);
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(value)) return std::nullopt;
  return value;
}

bool is_blank(std::string_view text) {
  for (char c : text)
    if (!(c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v')) return false;
  return true;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string join_names(const std::vector<std::string_view>& names) {
  return join_names(std::vector<std::string>(names.begin(), names.end()));
}

}  // namespace mcd::data::glue::detail
