// MappedFile: a read-only memory map of one whole file, torch-free.
// io/safetensors reads checkpoints through it (no copy of the weights); util/atomic_file is the
// writing counterpart. Errors are mcd::Error (util/error.h) naming the path and the errno text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mcd {

class MappedFile {
 public:
  // Maps `path` read-only. An empty file is fine: size() == 0 and data() is a valid,
  // non-null pointer that must not be dereferenced.
  static MappedFile open(const std::string& path);

  MappedFile() = default;  // maps nothing; size() == 0
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const;
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;

  void* map_ = nullptr;  // nullptr for an empty (or default-constructed) file
  size_t size_ = 0;
  std::string path_;
};

}  // namespace mcd
