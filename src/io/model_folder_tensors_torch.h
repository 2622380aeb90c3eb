// A model folder's tensors, whichever format holds them: safetensors — model.safetensors or the shards
// model.safetensors.index.json names (io/safetensors_checkpoint.h) — when the folder has either, else a
// PyTorch checkpoint — pytorch_model.bin or its index's shards (io/pytorch_checkpoint_torch.h), as
// mamba-ssm's save_pretrained and older Hugging Face checkpoints are. Library mcd_io.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mcd::io {

class ModelFolderTensors {
 public:
  // Refuses a folder with neither format, naming the files it looked for.
  static ModelFolderTensors open(const std::string& dir);

  ModelFolderTensors(ModelFolderTensors&&) noexcept;
  ~ModelFolderTensors();

  const std::vector<std::string>& names() const { return names_; }  // in file order
  bool has(const std::string& name) const;
  at::Tensor read(const std::string& name) const;  // a contiguous CPU copy in the stored dtype
  std::string file_of(const std::string& name) const;  // the file that holds it, for errors
  const std::string& label() const { return label_; }  // the single file, or the index
  const std::string& format() const { return format_; }  // "safetensors" or "pytorch"

 private:
  ModelFolderTensors();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> names_;
  std::string label_, format_;
};

}  // namespace mcd::io
