// A model folder's tensors across one file or Hugging Face's shards (see safetensors_checkpoint.h).
#include "io/safetensors_checkpoint.h"

#include <set>
#include <utility>

#include "io/shard_index.h"
#include "util/error.h"
#include "util/fs.h"

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
    c.label_ = single;
    c.add(std::make_unique<SafetensorsFile>(SafetensorsFile::open(single)));
    return c;
  }
  c.label_ = index;
  const ShardIndex shards = read_shard_index(index);
  for (const std::string& shard : shards.shards) {
    auto file = std::make_unique<SafetensorsFile>(SafetensorsFile::open(fs::join(dir, shard)));
    std::vector<std::string> held;
    for (const TensorInfo& t : file->tensors()) held.push_back(t.name);
    check_shard_contents(shards, shard, file->label(), held);
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
