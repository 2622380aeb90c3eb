// libFuzzer target for the torch-free safetensors reader (io/safetensors.cpp + util/*.cpp only;
// built and run by scripts/fuzz_safetensors.sh). Any input must either parse into a consistent
// file or raise mcd::Error; anything else (crash, sanitizer report, other exception) is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "io/safetensors.h"
#include "util/error.h"

namespace {

[[noreturn]] void invariant_broken(const char* what) {
  std::fprintf(stderr, "safetensors_fuzz: invariant broken: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) invariant_broken(what);
}

volatile uint64_t g_sink;  // keeps the byte reads from being optimised away

void exercise(const mcd::io::SafetensorsFile& f) {
  using namespace mcd::io;
  uint64_t sum = 0, covered = 0;
  for (const TensorInfo& t : f.tensors()) {
    // The tensors tile the data section in order, and each one's size matches its shape.
    check(t.begin == covered, "tensors are not contiguous");
    covered = t.end;
    check(static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) == t.nbytes(), "size mismatch");
    check(f.find(t.name) == &t, "find() disagrees with tensors()");
    check(&f.at(t.name) == &t, "at() disagrees with tensors()");
    const uint8_t* p = f.data(t);
    for (uint64_t i = 0; i < t.nbytes(); ++i) sum += p[i];  // ASan catches any overrun
    sum += std::strlen(dtype_name(t.dtype)) + t.shape.size();
  }
  check(covered == f.data_size(), "tensors do not cover the data section");
  for (const auto& [key, value] : f.metadata()) sum += key.size() + value.size();
  g_sink = sum;
}

// What we read, we must be able to write, and reading that back gives the same tensors.
void round_trip(const mcd::io::SafetensorsFile& f) {
  using namespace mcd::io;
  std::vector<TensorBytes> items;
  for (const TensorInfo& t : f.tensors())
    items.push_back({t.name, t.dtype, t.shape, f.data(t), static_cast<size_t>(t.nbytes())});
  std::vector<uint8_t> bytes;
  try {
    bytes = serialize_safetensors(items, f.metadata());
  } catch (const mcd::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    invariant_broken("the writer rejects a file the reader accepted");
  }
  const SafetensorsFile again = SafetensorsFile::from_bytes(std::move(bytes), "fuzz-roundtrip");
  check(again.tensors().size() == f.tensors().size(), "round trip changed the tensor count");
  check(again.metadata() == f.metadata(), "round trip changed the metadata");
  for (const TensorInfo& t : f.tensors()) {
    const TensorInfo* u = again.find(t.name);
    check(u != nullptr, "round trip lost a tensor");
    check(u->dtype == t.dtype && u->shape == t.shape && u->nbytes() == t.nbytes(),
          "round trip changed a tensor's dtype or shape");
    check(t.nbytes() == 0 || std::memcmp(again.data(*u), f.data(t), t.nbytes()) == 0,
          "round trip changed a tensor's bytes");
  }
  check(again.find("\x01no such tensor") == nullptr || f.find("\x01no such tensor") != nullptr,
        "find() invented a tensor");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  try {
    const auto f = mcd::io::SafetensorsFile::from_bytes(std::move(bytes), "fuzz-input");
    exercise(f);
    round_trip(f);
  } catch (const mcd::Error&) {
    // Rejected with a clear error: the expected outcome for most inputs.
  }
  return 0;
}
