// Hugging Face's index of a checkpoint split into shards (`model.safetensors.index.json`,
// `pytorch_model.bin.index.json`): {"weight_map": {tensor name: shard file in the same folder}}.
// Torch-free (library mcd_safetensors); both checkpoint readers check their shards against it.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace mcd::io {

struct ShardIndex {
  std::string path;                                // the index file, for errors
  std::vector<std::string> shards;                 // bare file names, in the order the map first names them
  std::map<std::string, std::set<std::string>> names;  // shard -> the tensors the map puts in it
};

// Reads and validates the index at `path`: a non-empty weight_map of string values, each a bare file
// name (no path may lead out of the folder). Errors name the file and the entry.
ShardIndex read_shard_index(const std::string& path);

// Checks that the shard file `shard` (labelled `shard_label` in errors) holds exactly the tensors the index
// maps to it: `held` lists its tensors in file order. Throws naming the file and the first tensor that differs.
void check_shard_contents(const ShardIndex& index, const std::string& shard, const std::string& shard_label,
                          const std::vector<std::string>& held);

}  // namespace mcd::io
