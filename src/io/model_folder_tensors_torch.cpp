// A model folder's tensors in either format (see model_folder_tensors_torch.h).
#include "util/torch_pch.h"

#include "io/model_folder_tensors_torch.h"

#include <optional>

#include "io/pytorch_checkpoint_torch.h"
#include "io/safetensors_checkpoint.h"
#include "io/safetensors_torch.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::io {

struct ModelFolderTensors::Impl {
  std::optional<SafetensorsCheckpoint> safetensors;
  std::optional<PytorchCheckpoint> pytorch;
};

ModelFolderTensors::ModelFolderTensors() : impl_(std::make_unique<Impl>()) {}
ModelFolderTensors::ModelFolderTensors(ModelFolderTensors&&) noexcept = default;
ModelFolderTensors::~ModelFolderTensors() = default;

ModelFolderTensors ModelFolderTensors::open(const std::string& dir) {
  ModelFolderTensors t;
  const bool has_safetensors = fs::exists(fs::join(dir, SafetensorsCheckpoint::kSingleFile)) ||
                               fs::exists(fs::join(dir, SafetensorsCheckpoint::kIndexFile));
  if (has_safetensors || !PytorchCheckpoint::folder_has_one(dir)) {
    MCD_CHECK(has_safetensors, dir, ": holds no model tensors (looked for ", SafetensorsCheckpoint::kSingleFile, ", ",
              SafetensorsCheckpoint::kIndexFile, ", ", PytorchCheckpoint::kSingleFile, " and ",
              PytorchCheckpoint::kIndexFile, ")");
    t.impl_->safetensors.emplace(SafetensorsCheckpoint::open_folder(dir));
    t.label_ = t.impl_->safetensors->label();
    t.format_ = "safetensors";
    for (const auto& e : t.impl_->safetensors->entries()) t.names_.push_back(e.info->name);
  } else {
    t.impl_->pytorch.emplace(PytorchCheckpoint::open_folder(dir));
    t.label_ = t.impl_->pytorch->label();
    t.format_ = "pytorch";
    for (const auto& e : t.impl_->pytorch->entries()) t.names_.push_back(e.tensor->name);
  }
  return t;
}

bool ModelFolderTensors::has(const std::string& name) const {
  return impl_->safetensors ? impl_->safetensors->find(name) != nullptr : impl_->pytorch->find(name) != nullptr;
}

at::Tensor ModelFolderTensors::read(const std::string& name) const {
  if (impl_->safetensors) {
    const SafetensorsCheckpoint::Entry& e = impl_->safetensors->at(name);
    return read_tensor(*e.file, *e.info);
  }
  const PytorchCheckpoint::Entry* e = impl_->pytorch->find(name);
  MCD_CHECK(e, label_, ": no tensor named '", name, "'");
  return impl_->pytorch->read(*e);
}

std::string ModelFolderTensors::file_of(const std::string& name) const {
  if (impl_->safetensors) {
    const auto* e = impl_->safetensors->find(name);
    return e ? e->file->label() : label_;
  }
  const auto* e = impl_->pytorch->find(name);
  return e ? impl_->pytorch->file_label(*e) : label_;
}

}  // namespace mcd::io
