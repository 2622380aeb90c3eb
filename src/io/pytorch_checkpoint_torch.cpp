// PyTorch checkpoint files and folders (see pytorch_checkpoint_torch.h).
#include "util/torch_pch.h"

#include "io/pytorch_checkpoint_torch.h"

#include <caffe2/serialize/inline_container.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "io/safetensors_torch.h"
#include "io/shard_index.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::io {

struct PytorchCheckpoint::File {
  std::string path;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  std::vector<PickledTensor> tensors;
};

namespace {

// The first bytes tell a zip archive (torch.save since PyTorch 1.6) from the legacy format, which
// begins with a pickled magic number, so that the error can say which one a file is.
void check_zip_signature(const std::string& path) {
  MCD_CHECK(fs::exists(path), path, ": no such file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  MCD_CHECK(f, path, ": cannot open");
  unsigned char head[4] = {0, 0, 0, 0};
  const size_t n = std::fread(head, 1, 4, f);
  std::fclose(f);
  MCD_CHECK(n == 4, path, ": too short to be a PyTorch checkpoint (", n, " bytes)");
  if (head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return;
  MCD_CHECK(head[0] != 0x80, path, ": a PyTorch checkpoint in the legacy format (torch.save before PyTorch 1.6, or "
            "_use_new_zipfile_serialization=False); load and save it again with a current PyTorch");
  fail(cat(path, ": not a PyTorch checkpoint (torch.save writes a zip archive; this file does not start like one)"));
}

std::string record_text(caffe2::serialize::PyTorchStreamReader& reader, const std::string& name) {
  auto [data, size] = reader.getRecord(name);
  return std::string(static_cast<const char*>(data.get()), size);
}

}  // namespace

PytorchCheckpoint::PytorchCheckpoint() = default;
PytorchCheckpoint::PytorchCheckpoint(PytorchCheckpoint&&) noexcept = default;
PytorchCheckpoint& PytorchCheckpoint::operator=(PytorchCheckpoint&&) noexcept = default;
PytorchCheckpoint::~PytorchCheckpoint() = default;

bool PytorchCheckpoint::folder_has_one(const std::string& dir) {
  return fs::exists(fs::join(dir, kSingleFile)) || fs::exists(fs::join(dir, kIndexFile));
}

void PytorchCheckpoint::add(std::unique_ptr<File> file) {
  for (const PickledTensor& t : file->tensors) {
    MCD_CHECK(!index_.count(t.name), label_, ": tensor '", t.name, "' is in both '",
              files_[entries_[index_.at(t.name)].file]->path, "' and '", file->path, "'");
    index_[t.name] = entries_.size();
    entries_.push_back({files_.size(), &t});
  }
  files_.push_back(std::move(file));
}

PytorchCheckpoint PytorchCheckpoint::open_file(const std::string& path) {
  check_zip_signature(path);
  auto file = std::make_unique<File>();
  file->path = path;
  std::string pickle;
  try {
    file->reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    MCD_CHECK(file->reader->hasRecord("data.pkl"), path, ": a zip archive without data.pkl (not written by torch.save)");
    if (file->reader->hasRecord("byteorder")) {
      const std::string order = record_text(*file->reader, "byteorder");
      MCD_CHECK(order == "little", path, ": tensors stored ", order, "-endian; only little-endian files are read");
    }
    pickle = record_text(*file->reader, "data.pkl");
  } catch (const c10::Error& e) {
    fail(cat(path, ": cannot read it as a PyTorch zip archive (truncated, or not written by torch.save?): ",
             e.what_without_backtrace()));
  }
  file->tensors = parse_state_dict_pickle(reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size(), path);
  PytorchCheckpoint c;
  c.label_ = path;
  c.add(std::move(file));
  return c;
}

PytorchCheckpoint PytorchCheckpoint::open_folder(const std::string& dir) {
  const std::string single = fs::join(dir, kSingleFile), index_path = fs::join(dir, kIndexFile);
  if (fs::exists(single) || !fs::exists(index_path)) return open_file(single);
  PytorchCheckpoint c;
  c.label_ = index_path;
  const ShardIndex index = read_shard_index(index_path);
  for (const std::string& shard : index.shards) {
    PytorchCheckpoint one = open_file(fs::join(dir, shard));
    std::vector<std::string> held;
    for (const Entry& e : one.entries()) held.push_back(e.tensor->name);
    check_shard_contents(index, shard, one.label(), held);
    c.add(std::move(one.files_.front()));
  }
  return c;
}

const PytorchCheckpoint::Entry* PytorchCheckpoint::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const std::string& PytorchCheckpoint::file_label(const Entry& e) const { return files_.at(e.file)->path; }

at::Tensor PytorchCheckpoint::read(const Entry& e) const {
  File& file = *files_.at(e.file);
  const PickledTensor& t = *e.tensor;
  const std::string record = "data/" + t.storage_key;
  try {
    MCD_CHECK(file.reader->hasRecord(record), file.path, ": tensor '", t.name, "' uses storage '", t.storage_key,
              "', but the archive has no record ", record);
    auto [data, size] = file.reader->getRecord(record);
    const size_t element = dtype_size(t.dtype);  // (compared by division: a claimed numel cannot overflow)
    MCD_CHECK(size % element == 0 && uint64_t(t.storage_numel) == size / element, file.path, ": storage '",
              t.storage_key, "' of tensor '", t.name, "' has ", size, " bytes, but holds ", t.storage_numel, " ",
              dtype_name(t.dtype), " elements by its id (", element, " bytes each)");
    const auto options = at::TensorOptions().dtype(to_scalar_type(t.dtype)).device(at::kCPU);
    if (t.numel() == 0) return at::empty(t.shape, options);
    // The record's buffer lives only as long as `data`: view it, then copy out contiguously.
    return at::from_blob(data.get(), {t.storage_numel}, options)
        .as_strided(t.shape, t.strides, t.storage_offset)
        .clone(at::MemoryFormat::Contiguous);
  } catch (const c10::Error& err) {
    fail(cat(file.path, ": cannot read tensor '", t.name, "': ", err.what_without_backtrace()));
  }
}

void save_pytorch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::vector<PickledTensor> entries;
  std::vector<at::Tensor> storages;  // contiguous CPU copies, one per storage key (its index)
  std::map<const c10::TensorImpl*, size_t> storage_of;
  std::string pickle;
  try {
  for (const auto& [name, tensor] : tensors) {
    MCD_CHECK(tensor.defined() && tensor.layout() == at::kStrided, path, ": tensor '", name, "' is undefined or not dense");
    const auto [it, fresh] = storage_of.emplace(tensor.unsafeGetTensorImpl(), storages.size());
    if (fresh) storages.push_back(tensor.detach().to(at::kCPU).contiguous());
    const at::Tensor& stored = storages[it->second];
    PickledTensor e;
    e.name = name;
    e.storage_key = std::to_string(it->second);
    e.dtype = from_scalar_type(stored.scalar_type());
    e.storage_numel = stored.numel();
    e.shape = stored.sizes().vec();
    e.strides = stored.strides().vec();
    entries.push_back(std::move(e));
  }
  pickle = state_dict_pickle(entries);
  } catch (const Error& e) {  // (errors about the tensors, before anything is written: name the file)
    fail(cat(path, ": ", e.what()));
  }
  try {
    write_file_atomic(path, [&](std::FILE* f) {
      // A short write is recorded, not reported to the zip writer: it would throw, and its destructor would
      // throw again while finishing the archive (std::terminate). The error is raised once it is gone, so
      // write_file_atomic removes the temporary file.
      int write_errno = 0;
      {
        caffe2::serialize::PyTorchStreamWriter writer([f, &write_errno](const void* data, size_t n) -> size_t {
          if (write_errno == 0 && std::fwrite(data, 1, n, f) != n) write_errno = errno ? errno : EIO;
          return n;
        });
        writer.writeRecord("data.pkl", pickle.data(), pickle.size());
        writer.writeRecord("byteorder", "little", 6);
        for (size_t k = 0; k < storages.size(); ++k)
          writer.writeRecord("data/" + std::to_string(k), storages[k].data_ptr(), storages[k].nbytes());
        writer.writeEndOfFile();
      }
      MCD_CHECK(write_errno == 0, path, ": write failed: ", std::strerror(write_errno));
    });
  } catch (const c10::Error& e) {
    fail(cat(path, ": cannot write the PyTorch checkpoint: ", e.what_without_backtrace()));
  }
}

}  // namespace mcd::io
