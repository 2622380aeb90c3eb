// A tensor indexed by a mixer's inner channel c ∈ [0, E) (METHOD.md §2–4): every module that
// holds one (the mixer, its SDM gate, an adapter) lists it as a ChannelSlot, so channel surgery
// (channel_surgery.h: pruning, CSP's permutation) moves all of them together and none is missed.
#pragma once

#include <string>
#include <vector>

#include "util/torch_compat.h"

namespace mcd {

struct ChannelSlot {
  std::string name;    // relative to the mixer, e.g. "in_proj.weight", "gate.log_alpha"
  at::Tensor tensor;   // the parameter itself (shares storage with the module)
  int64_t dim = 0;     // the axis indexed by the channel
  int64_t copies = 1;  // that axis stacks `copies` blocks of E entries (in_proj: x rows, then z rows)
  int64_t group = 1;   // one entry per `group` adjacent channels (SDM gate blocks)
};

}  // namespace mcd
