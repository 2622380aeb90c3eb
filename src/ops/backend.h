// Which implementation the sequence ops use. The CPU path is the plain-loop reference (with its
// own backward); `Composite` is the same math written in LibTorch ops, whose autograd backward is
// the check for every hand-written backward and the fallback on devices without our kernels.
#pragma once

#include <string>

namespace mcd::ops {

enum class Backend {
  kAuto,       // CPU: plain loops (ops/cpu); CUDA: our kernels when built, else Composite
  kReference,  // force the plain-loop CPU reference (CPU tensors only)
  kComposite,  // force the LibTorch-ops composite (any device; autograd gives the backward)
};

// The current choice: ops_options().backend (ops/options.h; set by the CLI's --ops, a config's
// `ops:` section or ScopedOpsOptions in tests).
Backend backend();
Backend parse_backend(const std::string& name);  // throws mcd::Error listing the valid names
const char* backend_name(Backend backend);

}  // namespace mcd::ops
