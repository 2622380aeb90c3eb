// The tensors of a model folder: `<dir>/model.safetensors`, or — the layout Hugging Face writes for
// checkpoints larger than its shard size (several GB: the larger Mamba checkpoints) — the shard files that
// `<dir>/model.safetensors.index.json`'s "weight_map" names, seen as one set of named tensors.
// Torch-free (library mcd_safetensors). Every shard is validated as a safetensors file, and the index
// and the shards must agree exactly: a tensor mapped to a shard that lacks it, a tensor held by a shard
// the map does not assign it to, a shard path that leaves the folder — each is an mcd::Error naming the
// file and the tensor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace mcd::io {

class SafetensorsCheckpoint {
 public:
  static constexpr const char* kSingleFile = "model.safetensors";
  static constexpr const char* kIndexFile = "model.safetensors.index.json";

  // The single file when the folder has one (as Hugging Face prefers it), else the index's shards.
  static SafetensorsCheckpoint open_folder(const std::string& dir);

  struct Entry {
    const SafetensorsFile* file;  // the shard that holds it (its label() names it in errors)
    const TensorInfo* info;
  };
  const Entry* find(const std::string& name) const;  // nullptr if absent
  const Entry& at(const std::string& name) const;    // throws naming the checkpoint and the tensor
  const std::vector<Entry>& entries() const { return entries_; }  // shard by shard, each by offset
  const std::string& label() const { return label_; }  // the single file's path, or the index's
  size_t num_files() const { return files_.size(); }

 private:
  SafetensorsCheckpoint() = default;
  void add(std::unique_ptr<SafetensorsFile> file);

  std::vector<std::unique_ptr<SafetensorsFile>> files_;  // stable addresses for the entries
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;  // name -> position in entries_
  std::string label_;
};

}  // namespace mcd::io
