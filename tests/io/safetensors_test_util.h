// Helpers shared by the tests/io safetensors tests: temporary directories, hand-built file bytes
// (no binary fixtures are committed) and substring checks on mcd::Error messages.
// Header-only so each test file stays a self-contained translation unit of test_io.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/error.h"

namespace mcd::io::testing {

inline std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mcd_safetensors_XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

inline void remove_tree(const std::string& dir) { std::system(("rm -rf '" + dir + "'").c_str()); }

inline void append_u64_le(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A file whose 8-byte prefix states header.size(), followed by the header and `data`.
inline std::vector<uint8_t> file_bytes(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  append_u64_le(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline std::vector<uint8_t> file_bytes(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> data(data_bytes);
  for (size_t i = 0; i < data_bytes; ++i) data[i] = static_cast<uint8_t>(i + 1);
  return file_bytes(header, data);
}

inline ::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message '" << haystack << "' does not contain '"
                                       << needle << "'";
}

// Runs `fn`, expecting mcd::Error whose message contains every one of `needles`.
inline ::testing::AssertionResult throws_error(const std::function<void()>& fn,
                                               const std::vector<std::string>& needles) {
  try {
    fn();
  } catch (const mcd::Error& e) {
    for (const std::string& n : needles) {
      auto r = contains(e.what(), n);
      if (!r) return r;
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-mcd exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

inline bool file_exists(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f) std::fclose(f);
  return f != nullptr;
}

inline std::string shared_fixture_dir() { return std::string(MCD_SHARED_DIR) + "/fixtures/hf_mamba_tiny"; }

}  // namespace mcd::io::testing
