// Channel surgery (see channel_surgery.h): one index rule per slot, applied to every slot.
#include "model/channel_surgery.h"

#include "util/error.h"

namespace mcd {

bool is_permutation(const at::Tensor& perm, int64_t channels) {
  if (perm.dim() != 1 || perm.numel() != channels || perm.scalar_type() != at::kLong) return false;
  const at::Tensor sorted = std::get<0>(perm.to(torch::kCPU).sort());
  return torch::equal(sorted, torch::arange(channels, torch::kLong));
}

at::Tensor slot_index(const ChannelSlot& slot, const at::Tensor& index, int64_t channels) {
  MCD_CHECK(index.dim() == 1 && index.scalar_type() == at::kLong, "channel surgery: the index must be a 1-D int64 ",
            "tensor, got ", index.sizes(), " ", index.scalar_type());
  at::Tensor idx = index.to(torch::kCPU);
  if (idx.numel() > 0) {
    const int64_t lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    MCD_CHECK(lo >= 0 && hi < channels, "channel surgery: channel indices must be in [0, ", channels, "), got [", lo,
              ", ", hi, "]");
  }
  if (slot.group > 1) {
    const int64_t g = slot.group;
    MCD_CHECK(idx.numel() % g == 0, "channel surgery: ", slot.name, " holds one entry per ", g,
              " channels; the index (", idx.numel(), " channels) must select whole groups");
    const at::Tensor rows = idx.view({-1, g});
    const at::Tensor first = rows.select(1, 0);
    const at::Tensor expect = first.unsqueeze(1) + torch::arange(g, torch::kLong).unsqueeze(0);
    MCD_CHECK(torch::equal(first.remainder(g), torch::zeros_like(first)) && torch::equal(rows, expect),
              "channel surgery: ", slot.name, " holds one entry per ", g,
              " channels; the index must keep each group of ", g, " adjacent channels together and in order");
    idx = first.div(g, "floor");
    channels /= g;
  }
  if (slot.copies > 1) {
    std::vector<at::Tensor> parts;
    for (int64_t k = 0; k < slot.copies; ++k) parts.push_back(idx + k * channels);
    idx = torch::cat(parts);
  }
  MCD_CHECK(slot.tensor.size(slot.dim) == channels * slot.copies, "channel surgery: ", slot.name, " has ",
            slot.tensor.size(slot.dim), " entries along dim ", slot.dim, ", expected ", channels * slot.copies);
  return idx.to(slot.tensor.device());
}

std::map<std::string, at::Tensor> gather_channels(MambaMixerImpl& mixer, const at::Tensor& index) {
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> out;
  for (const ChannelSlot& s : mixer.channel_slots())
    out[s.name] = s.tensor.detach().index_select(s.dim, slot_index(s, index, mixer.d_inner));
  return out;
}

void permute_channels(MambaMixerImpl& mixer, const at::Tensor& perm) {
  MCD_CHECK(is_permutation(perm, mixer.d_inner), "permute_channels: perm must be a permutation of [0, ",
            mixer.d_inner, ") as int64, got ", perm.sizes(), " ", perm.scalar_type());
  torch::NoGradGuard no_grad;
  for (ChannelSlot& s : mixer.channel_slots()) {
    const at::Tensor moved = s.tensor.index_select(s.dim, slot_index(s, perm, mixer.d_inner));
    s.tensor.copy_(moved);
  }
}

}  // namespace mcd
