// libFuzzer target for the restricted pickle machine of io/pytorch_pickle.cpp (torch-free: it and
// src/util/*.cpp only; built and run by scripts/fuzz_pytorch_pickle.sh). Any data.pkl must either parse
// into a consistent state dict or raise mcd::Error; a crash, a sanitizer report (a leak included: a pickle
// can make a container hold itself), another exception or an inconsistent result is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "io/pytorch_pickle.h"
#include "util/error.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pytorch_pickle_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto tensors = mcd::io::parse_state_dict_pickle(data, size, "fuzz-input");
    std::set<std::string> names;
    for (const mcd::io::PickledTensor& t : tensors) {
      check(names.insert(t.name).second, "a name twice");
      check(t.shape.size() == t.strides.size(), "sizes and strides differ in number");
      check(t.storage_offset >= 0 && t.storage_numel >= 0, "negative offset or storage size");
      // The last element lies inside the storage (the reader's view relies on it).
      int64_t last = t.storage_offset;
      bool empty = false;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        check(t.shape[d] >= 0 && t.strides[d] >= 0, "negative size or stride");
        empty = empty || t.shape[d] == 0;
        if (t.shape[d] > 0) last += (t.shape[d] - 1) * t.strides[d];
      }
      check(empty || last < t.storage_numel, "a view past its storage");
    }
  } catch (const mcd::Error&) {
    // rejected with a message: fine
  }
  return 0;
}
