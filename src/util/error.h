// The library's one exception type and the check macro that throws it.
// Only `main` (src/cli) turns these into exit codes; every message names what was wrong
// (a file, a key, a shape) so a user can act on it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mcd {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into one string.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

}  // namespace mcd

// MCD_CHECK(cond, parts...) throws mcd::Error("<parts...>") when cond is false.
#define MCD_CHECK(cond, ...)                                   \
  do {                                                         \
    if (!(cond)) ::mcd::fail(::mcd::cat(__VA_ARGS__));         \
  } while (0)
