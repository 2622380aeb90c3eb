// Archives the download tests serve, built in memory: a zip of stored (uncompressed) members,
// written here from the format (local headers, central directory, end record, CRC-32), and a
// tar.gz made by the `tar` program from files written to a scratch folder.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test_support.h"
#include "util/fs.h"

namespace mcd::test {

inline uint32_t crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// A zip archive holding `files` ({path, contents}) stored without compression.
inline std::string make_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, central;
  auto u16 = [](std::string& s, uint32_t v) {
    s.push_back(char(v & 0xFF));
    s.push_back(char((v >> 8) & 0xFF));
  };
  auto u32 = [&](std::string& s, uint32_t v) {
    u16(s, v & 0xFFFF);
    u16(s, v >> 16);
  };
  for (const auto& [name, data] : files) {
    const uint32_t offset = uint32_t(out.size()), crc = crc32(data), size = uint32_t(data.size());
    u32(out, 0x04034b50);  // local file header
    u16(out, 20);          // version needed
    u16(out, 0);           // flags
    u16(out, 0);           // method: stored
    u16(out, 0);           // time
    u16(out, 0x21);        // date: 1980-01-01
    u32(out, crc);
    u32(out, size);
    u32(out, size);
    u16(out, uint32_t(name.size()));
    u16(out, 0);
    out += name;
    out += data;
    u32(central, 0x02014b50);  // central directory header
    u16(central, 20);          // made by
    u16(central, 20);          // needed
    u16(central, 0);
    u16(central, 0);
    u16(central, 0);
    u16(central, 0x21);
    u32(central, crc);
    u32(central, size);
    u32(central, size);
    u16(central, uint32_t(name.size()));
    u16(central, 0);  // extra
    u16(central, 0);  // comment
    u16(central, 0);  // disk
    u16(central, 0);  // internal attributes
    u32(central, 0);  // external attributes
    u32(central, offset);
    central += name;
  }
  const uint32_t cd_offset = uint32_t(out.size());
  out += central;
  u32(out, 0x06054b50);  // end of central directory
  u16(out, 0);
  u16(out, 0);
  u16(out, uint32_t(files.size()));
  u16(out, uint32_t(files.size()));
  u32(out, uint32_t(central.size()));
  u32(out, cd_offset);
  u16(out, 0);
  return out;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_bytes_to(const std::string& path, const std::string& data) {
  fs::make_dirs(fs::parent_path(path));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// A gzip-compressed tar of `files` ({path, contents}), made by `tar -czf`.
inline std::string make_tar_gz(const std::vector<std::pair<std::string, std::string>>& files) {
  TempDir tmp;
  const std::string root = tmp.file("root");
  std::string names;
  for (const auto& [name, data] : files) {
    write_bytes_to(fs::join(root, name), data);
    names += " '" + name + "'";
  }
  const std::string archive = tmp.file("a.tar.gz");
  const std::string cmd = "tar -czf '" + archive + "' -C '" + root + "'" + names;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("tar failed: " + cmd);
  return slurp(archive);
}

}  // namespace mcd::test
