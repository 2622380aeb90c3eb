// Names of the op implementations (see backend.h); the choice itself lives in ops/options.h.
#include "ops/backend.h"

#include "ops/options.h"
#include "util/error.h"

namespace mcd::ops {

Backend backend() { return ops_options().backend; }

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
