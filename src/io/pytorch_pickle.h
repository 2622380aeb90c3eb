// The state dict inside a PyTorch checkpoint file. `torch.save(model.state_dict(), "pytorch_model.bin")`
// — how mamba-ssm's `save_pretrained` and older Hugging Face checkpoints are written — makes a zip archive
// whose `data.pkl` is a Python pickle of the dict, with each tensor's storage in a record `data/<key>`.
// This reads `data.pkl` with a restricted pickle machine: it builds only what a state dict is made of
// (dicts and OrderedDicts, tuples, lists, strings, numbers, storages, tensors) and refuses every other
// callable, so nothing in a file is ever executed. Torch-free (library mcd_safetensors, beside the
// safetensors reader; the fuzzer links it alone); io/pytorch_checkpoint_torch reads the storages.
// Format notes: docs/safetensors.md, "PyTorch checkpoints".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace mcd::io {

// One tensor of the dict: a strided view of a typed storage, in elements.
struct PickledTensor {
  std::string name;
  std::string storage_key;  // its bytes are the archive's record data/<storage_key>
  DType dtype = DType::F32;  // from the storage's class (torch.FloatStorage -> F32, torch.BFloat16Storage -> BF16, ...)
  int64_t storage_numel = 0;  // elements in the whole storage (tensors may share one: a tied head)
  int64_t storage_offset = 0;
  std::vector<int64_t> shape, strides;  // empty for a 0-d tensor
  int64_t numel() const;
};

// The top-level dict's tensors in file order, from the bytes of `data.pkl` (pickle protocols 2 to 5, as
// torch.save writes them). `label` names the file in every error. Each tensor is checked against its
// storage (offset and extent within it; one dtype and size per storage). Refuses, with an mcd::Error: a
// callable other than OrderedDict and torch's tensor/parameter rebuild functions; a top-level object
// that is not a dict of string -> tensor (a checkpoint that wraps the state dict, {"model": ...}, says
// which key holds a dict); a duplicate name; opcodes outside what torch.save emits; truncated data.
std::vector<PickledTensor> parse_state_dict_pickle(const uint8_t* data, size_t size, const std::string& label);

// torch's storage class name -> dtype ("FloatStorage" -> F32); false for one safetensors' DType lacks.
bool dtype_from_storage_class(const std::string& name, DType* dtype);
const char* storage_class_name(DType dtype);  // the inverse: F32 -> "FloatStorage"

// The data.pkl torch.save writes for `tensors` as an OrderedDict in this order (pickle protocol 2, the
// byte stream Python's pickler emits for it; no `_metadata`). Each tensor's storage_key, dtype and
// storage_numel name its storage record; tensors may share one. Throws mcd::Error on a duplicate name,
// a view outside its storage, or one storage key with two dtypes or sizes.
std::string state_dict_pickle(const std::vector<PickledTensor>& tensors);

}  // namespace mcd::io
