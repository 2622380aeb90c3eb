// Channel surgery on a mixer's inner channels (METHOD.md §2–4): gather a subset (physical pruning)
// or a permutation (CSP) of the channels of EVERY tensor the mixer lists as a ChannelSlot — its
// weights, its SDM gate and its adapters — so that no E-indexed tensor can be left behind.
#pragma once

#include <map>
#include <string>

#include "model/mamba.h"

namespace mcd {

// The entries of `slot`'s channel axis that hold channels `index` (E' int64, values in [0, E)):
// each of the slot's `copies` blocks of E in turn; for a grouped slot the index must select whole
// groups (first entry of a group at a multiple of the group, then the group's next channels).
at::Tensor slot_index(const ChannelSlot& slot, const at::Tensor& index, int64_t channels);

// name → the slot's tensor restricted to channels `index` (new tensors; the mixer is unchanged).
std::map<std::string, at::Tensor> gather_channels(MambaMixerImpl& mixer, const at::Tensor& index);

// In place: channel c afterwards is channel perm[c] before, in every slot (perm: a permutation of
// [0, E); with SDM gate blocks it must move whole blocks). The layer computes the same function,
// with its channels renumbered. Parameters keep their storage (optimizer state is not permuted).
void permute_channels(MambaMixerImpl& mixer, const at::Tensor& perm);

// Whether perm (E) is a permutation of [0, E).
bool is_permutation(const at::Tensor& perm, int64_t channels);

}  // namespace mcd
