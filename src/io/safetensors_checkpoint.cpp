// A model folder's tensors across one file or Hugging Face's shards (see safetensors_checkpoint.h).
#include "io/safetensors_checkpoint.h"

#include <set>
#include <utility>

#include "util/error.h"
#include "util/fs.h"
#include "util/json_file.h"

namespace mcd::io {

void SafetensorsCheckpoint::add(std::unique_ptr<SafetensorsFile> file) {
  for (const TensorInfo& t : file->tensors()) {
    MCD_CHECK(!index_.count(t.name), label_, ": tensor '", t.name, "' is in both '",
              entries_[index_.at(t.name)].file->label(), "' and '", file->label(), "'");
    index_[t.name] = entries_.size();
    entries_.push_back({file.get(), &t});
  }
  files_.push_back(std::move(file));
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_folder(const std::string& dir) {
  SafetensorsCheckpoint c;
  const std::string single = fs::join(dir, kSingleFile), index = fs::join(dir, kIndexFile);
  if (fs::exists(single) || !fs::exists(index)) {  // (neither: the single file's error names what is missing)
    for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json"})
      MCD_CHECK(fs::exists(single) || !fs::exists(fs::join(dir, pickle)), dir, ": holds ", pickle,
                " (PyTorch pickles) but no ", kSingleFile, "; this tool reads safetensors only — convert it, e.g. with "
                "transformers: MambaForCausalLM.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True)");
    c.label_ = single;
    c.add(std::make_unique<SafetensorsFile>(SafetensorsFile::open(single)));
    return c;
  }
  c.label_ = index;
  const nlohmann::json j = read_json_file(index);
  MCD_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index,
            ": expected an object with a \"weight_map\" object (tensor name -> shard file)");
  // The shards in the order the map first names them, and what the map puts in each.
  std::vector<std::string> shards;
  std::map<std::string, std::set<std::string>> mapped;
  for (const auto& [name, value] : j["weight_map"].items()) {
    MCD_CHECK(value.is_string(), index, ": weight_map['", name, "'] must be a file name, got ", value.dump());
    const std::string shard = value.get<std::string>();
    // A bare file name in the folder: no path may lead elsewhere.
    MCD_CHECK(!shard.empty() && shard.find('/') == std::string::npos && shard != "." && shard != "..", index,
              ": weight_map['", name, "'] = '", shard, "' is not a file name in the folder");
    if (!mapped.count(shard)) shards.push_back(shard);
    mapped[shard].insert(name);
  }
  MCD_CHECK(!shards.empty(), index, ": weight_map is empty");
  for (const std::string& shard : shards) {
    auto file = std::make_unique<SafetensorsFile>(SafetensorsFile::open(fs::join(dir, shard)));
    const std::set<std::string>& names = mapped.at(shard);
    for (const TensorInfo& t : file->tensors())
      MCD_CHECK(names.count(t.name), file->label(), ": holds tensor '", t.name, "', which ", index,
                " does not map to this shard");
    for (const std::string& name : names)
      MCD_CHECK(file->find(name), index, ": maps tensor '", name, "' to '", file->label(), "', which does not hold it");
    c.add(std::move(file));
  }
  return c;
}

const SafetensorsCheckpoint::Entry* SafetensorsCheckpoint::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const SafetensorsCheckpoint::Entry& SafetensorsCheckpoint::at(const std::string& name) const {
  const Entry* e = find(name);
  MCD_CHECK(e, label_, ": no tensor named '", name, "' (", entries_.size(), " tensors in ", files_.size(),
            files_.size() == 1 ? " file)" : " files)");
  return *e;
}

}  // namespace mcd::io
