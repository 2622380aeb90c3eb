// Hugging Face's shard index (see shard_index.h).
#include "io/shard_index.h"

#include "util/error.h"
#include "util/json_file.h"

namespace mcd::io {

ShardIndex read_shard_index(const std::string& path) {
  ShardIndex index;
  index.path = path;
  const nlohmann::json j = read_json_file(path);
  MCD_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), path,
            ": expected an object with a \"weight_map\" object (tensor name -> shard file)");
  for (const auto& [name, value] : j["weight_map"].items()) {
    MCD_CHECK(value.is_string(), path, ": weight_map['", name, "'] must be a file name, got ", value.dump());
    const std::string shard = value.get<std::string>();
    // A bare file name in the folder: no path may lead elsewhere.
    MCD_CHECK(!shard.empty() && shard.find('/') == std::string::npos && shard != "." && shard != "..", path,
              ": weight_map['", name, "'] = '", shard, "' is not a file name in the folder");
    if (!index.names.count(shard)) index.shards.push_back(shard);
    index.names[shard].insert(name);
  }
  MCD_CHECK(!index.shards.empty(), path, ": weight_map is empty");
  return index;
}

void check_shard_contents(const ShardIndex& index, const std::string& shard, const std::string& shard_label,
                          const std::vector<std::string>& held) {
  const std::set<std::string>& names = index.names.at(shard);
  for (const std::string& name : held)
    MCD_CHECK(names.count(name), shard_label, ": holds tensor '", name, "', which ", index.path,
              " does not map to this shard");
  const std::set<std::string> held_set(held.begin(), held.end());
  for (const std::string& name : names)
    MCD_CHECK(held_set.count(name), index.path, ": maps tensor '", name, "' to '", shard_label,
              "', which does not hold it");
}

}  // namespace mcd::io
