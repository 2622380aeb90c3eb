// Safetensors reader and writer, torch-free (library mcd_safetensors; the fuzzer links only this
// and mcd_util). Reads through util/mapped_file and validates every header field; writes through
// util/atomic_file. io/safetensors_torch adapts it to at::Tensor. Format notes: docs/safetensors.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace mcd::io {

// Largest header accepted (and written), as in the reference implementation.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType dtype);  // "F32", "BF16", ... as spelled in the header
size_t dtype_size(DType dtype);       // bytes per element
std::optional<DType> dtype_from_name(const std::string& name);  // nullopt if unsupported

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // empty for a 0-d scalar
  uint64_t begin = 0, end = 0;  // byte offsets within the data section
  int64_t numel() const;        // product of shape (1 for a scalar)
  uint64_t nbytes() const { return end - begin; }
};

// A parsed, fully validated safetensors file. Either memory-maps a file or owns a byte buffer.
// Movable, not copyable; data() pointers stay valid for the object's lifetime (and across moves).
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);  // memory-mapped
  static SafetensorsFile from_bytes(std::vector<uint8_t> bytes, std::string label);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // ordered by offset
  const TensorInfo* find(const std::string& name) const;              // nullptr if absent
  const TensorInfo& at(const std::string& name) const;  // throws mcd::Error naming file + tensor
  // t's bytes (t.nbytes() of them, little-endian, C order). Not necessarily aligned for the
  // element type: copy with memcpy. Throws if t lies outside this file's data section.
  const uint8_t* data(const TensorInfo& t) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& label() const { return label_; }  // path or caller's label, in all errors
  uint64_t header_size() const { return header_size_; }  // JSON bytes after the 8-byte prefix
  uint64_t data_size() const { return data_size_; }      // bytes in the data section

 private:
  SafetensorsFile() = default;
  const uint8_t* bytes() const { return mapped_ ? map_.data() : owned_.data(); }
  void parse(size_t total_size);

  bool mapped_ = false;
  MappedFile map_;
  std::vector<uint8_t> owned_;
  std::string label_;
  uint64_t header_size_ = 0;
  uint64_t data_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: `nbytes` bytes at `data` (may be null when nbytes == 0), little-endian,
// C order; nbytes must equal numel(shape) * dtype_size(dtype).
struct TensorBytes {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// Writes a safetensors file atomically (util/atomic_file). The layout is the reference
// implementation's: data sorted by dtype alignment (8-byte types first) then by name, offsets
// contiguous, header entries in that order with "__metadata__" (omitted when empty) first,
// compact JSON padded with spaces to a multiple of 8 bytes. Every tensor is therefore naturally
// aligned within the file. Throws mcd::Error naming the path (duplicate or reserved names,
// size mismatches, I/O errors).
void write_safetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The same bytes write_safetensors would write, in memory (tests, fuzzing, small files).
std::vector<uint8_t> serialize_safetensors(const std::vector<TensorBytes>& tensors,
                                           const std::map<std::string, std::string>& metadata = {});

}  // namespace mcd::io
