// Process-wide selection of the op implementation (see backend.h).
#include "ops/backend.h"

#include <atomic>
#include <cstdlib>

#include "util/error.h"

namespace mcd::ops {
namespace {
Backend initial_backend() {
  const char* env = std::getenv("MCD_OPS_BACKEND");
  return env && *env ? parse_backend(env) : Backend::kAuto;
}
std::atomic<Backend>& current() {
  static std::atomic<Backend> value{initial_backend()};
  return value;
}
}  // namespace

Backend backend() { return current().load(); }
void set_backend(Backend b) { current().store(b); }

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "reference") return Backend::kReference;
  if (name == "composite") return Backend::kComposite;
  fail(cat("unknown ops backend '", name, "' (valid: auto, reference, composite)"));
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kAuto: return "auto";
    case Backend::kReference: return "reference";
    case Backend::kComposite: return "composite";
  }
  return "?";
}

}  // namespace mcd::ops
