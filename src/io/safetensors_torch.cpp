// at::Tensor <-> safetensors bytes (see io/safetensors_torch.h). Reading copies into a fresh
// tensor so nothing outlives the mapping; writing hands contiguous CPU buffers to the torch-free
// writer in io/safetensors.cpp, which validates them and writes atomically.
#include "util/torch_pch.h"

#include "io/safetensors_torch.h"

#include <cstring>
#include <set>

#include "util/error.h"

namespace mcd::io {

at::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  fail(cat("invalid DType value ", static_cast<int>(dtype)));
}

DType from_scalar_type(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return DType::F64;
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kLong: return DType::I64;
    case at::kInt: return DType::I32;
    case at::kShort: return DType::I16;
    case at::kChar: return DType::I8;
    case at::kByte: return DType::U8;
    case at::kBool: return DType::BOOL;
    default: break;
  }
  fail(cat("tensor dtype ", c10::toString(type), " cannot be stored in safetensors here (supported: ",
           "float64, float32, float16, bfloat16, int64, int32, int16, int8, uint8, bool)"));
}

at::Tensor read_tensor(const SafetensorsFile& f, const TensorInfo& t) {
  const uint8_t* src = f.data(t);  // bounds-checked against this file
  at::Tensor out;
  try {
    out = at::empty(t.shape, at::TensorOptions().dtype(to_scalar_type(t.dtype)).device(at::kCPU));
  } catch (const c10::Error& e) {
    fail(cat("safetensors file '", f.label(), "': cannot allocate tensor '", t.name, "': ",
             e.what_without_backtrace()));
  }
  MCD_CHECK(out.nbytes() == t.nbytes(), "safetensors file '", f.label(), "': tensor '", t.name,
            "' has ", t.nbytes(), " bytes but a ", dtype_name(t.dtype), " tensor of that shape has ",
            out.nbytes());
  if (t.nbytes() > 0) std::memcpy(out.data_ptr(), src, t.nbytes());
  if (t.dtype == DType::BOOL) {
    // A torch bool byte must be 0 or 1; anything else is undefined behaviour in kernels.
    auto* p = static_cast<uint8_t*>(out.data_ptr());
    for (uint64_t i = 0; i < t.nbytes(); ++i) p[i] = p[i] != 0;
  }
  return out;
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const TensorInfo& t : f.tensors()) out.emplace(t.name, read_tensor(f, t));
  return out;
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = cat("cannot write safetensors file '", path, "': ");
  std::set<std::string> names;
  std::vector<at::Tensor> cpu;  // keeps the contiguous CPU copies alive while writing
  std::vector<TensorBytes> items;
  cpu.reserve(tensors.size());
  items.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    MCD_CHECK(names.insert(name).second, where, "duplicate tensor name '", name, "'");
    MCD_CHECK(tensor.defined(), where, "tensor '", name, "' is undefined");
    MCD_CHECK(tensor.layout() == at::kStrided, where, "tensor '", name,
              "' is not dense (layout ", tensor.layout(), ")");
    DType dtype;
    try {
      dtype = from_scalar_type(tensor.scalar_type());
    } catch (const Error& e) {
      fail(cat(where, "tensor '", name, "': ", e.what()));
    }
    try {
      cpu.push_back(
          tensor.detach().to(at::kCPU).resolve_conj().resolve_neg().contiguous());
    } catch (const c10::Error& e) {
      fail(cat(where, "cannot copy tensor '", name, "' to the CPU: ", e.what_without_backtrace()));
    }
    const at::Tensor& c = cpu.back();
    items.push_back(TensorBytes{name, dtype, c.sizes().vec(), c.nbytes() ? c.data_ptr() : nullptr,
                                c.nbytes()});
  }
  write_safetensors(path, items, metadata);
}

}  // namespace mcd::io
