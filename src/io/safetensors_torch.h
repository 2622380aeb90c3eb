// LibTorch adapter for io/safetensors (library mcd_io): DType <-> at::ScalarType, and loading /
// saving at::Tensor maps. All validation lives in the torch-free core; this file only copies
// bytes into and out of CPU tensors. Errors are mcd::Error naming the file and the tensor.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include "io/safetensors.h"

namespace mcd::io {

at::ScalarType to_scalar_type(DType dtype);
DType from_scalar_type(at::ScalarType type);  // throws mcd::Error for types safetensors lacks here

// An owned, contiguous CPU copy of t's data with t's dtype and shape (0-d for shape []).
// Unaligned data is fine (memcpy); BOOL bytes other than 0/1 are normalized to 1.
at::Tensor read_tensor(const SafetensorsFile& f, const TensorInfo& t);

// Every tensor of the file at `path`, by name.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);

// Writes `tensors` atomically. Any device, dtype among DType's, strides or requires_grad: each is
// detached and copied to contiguous CPU memory first. Throws on duplicate or reserved names,
// undefined/sparse tensors and unsupported dtypes, before touching the file.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace mcd::io
