// The tensors of a PyTorch checkpoint: `<dir>/pytorch_model.bin` (torch.save of a state dict, as mamba-ssm's
// save_pretrained and older Hugging Face checkpoints write it) or the shards its index
// `pytorch_model.bin.index.json` names. The zip archive is read with LibTorch's own reader
// (caffe2::serialize::PyTorchStreamReader, in both supported LibTorch versions); its data.pkl with the
// restricted pickle machine of io/pytorch_pickle.h, so nothing in a file is executed. Only the pickle is
// read when a checkpoint is opened; each tensor's storage is read when the tensor is (library mcd_io).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "io/pytorch_pickle.h"

namespace caffe2::serialize {
class PyTorchStreamReader;
}

namespace mcd::io {

class PytorchCheckpoint {
 public:
  static constexpr const char* kSingleFile = "pytorch_model.bin";
  static constexpr const char* kIndexFile = "pytorch_model.bin.index.json";

  static bool folder_has_one(const std::string& dir);  // either file present
  // The single file when the folder has one, else the index's shards (checked against the index).
  static PytorchCheckpoint open_folder(const std::string& dir);
  // One torch.save'd file. Refuses, naming the file: the legacy (pre-1.6, non-zip) format, a
  // truncated or foreign archive, a big-endian one, anything data.pkl may hold but a state dict.
  static PytorchCheckpoint open_file(const std::string& path);

  PytorchCheckpoint(PytorchCheckpoint&&) noexcept;
  PytorchCheckpoint& operator=(PytorchCheckpoint&&) noexcept;
  ~PytorchCheckpoint();

  struct Entry {
    size_t file;  // which file holds it
    const PickledTensor* tensor;
  };
  const Entry* find(const std::string& name) const;  // nullptr if absent
  const std::vector<Entry>& entries() const { return entries_; }  // file by file, each in pickle order
  const std::string& file_label(const Entry& e) const;             // that file's path
  const std::string& label() const { return label_; }              // the single file's path, or the index's
  // A contiguous CPU tensor of the entry's dtype (its storage record read, viewed and copied).
  at::Tensor read(const Entry& e) const;

 private:
  PytorchCheckpoint();
  struct File;
  void add(std::unique_ptr<File> file);

  std::vector<std::unique_ptr<File>> files_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;  // name -> position in entries_
  std::string label_;
};

// Writes `tensors` (any device, dtype among PickledTensor's, strides) as torch.save writes a state dict, to
// `path` atomically: `torch.load(path)` gives an OrderedDict of them in this order. Tensors given twice
// (the same tensor under two names: a tied head) share one storage, as in torch.save; every other tensor
// is stored contiguously on its own.
void save_pytorch_checkpoint(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors);

}  // namespace mcd::io
