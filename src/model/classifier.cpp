// Classification head on the backbone (see classifier.h).
#include "model/classifier.h"

#include "util/error.h"

namespace mcd {

Pooling parse_pooling(const std::string& name) {
  if (name == "last") return Pooling::kLastToken;
  if (name == "mean") return Pooling::kMean;
  fail(cat("unknown pooling '", name, "' (valid: last, mean)"));
}

MambaClassifierImpl::MambaClassifierImpl(const ModelConfig& config, int64_t num_labels, Pooling p)
    : MambaClassifierImpl(MambaBackbone(config), num_labels, p) {}

MambaClassifierImpl::MambaClassifierImpl(MambaBackbone bb, int64_t num_labels, Pooling p) : pooling(p) {
  MCD_CHECK(num_labels >= 1, "num_labels must be at least 1, got ", num_labels);
  backbone = register_module("backbone", std::move(bb));
  classifier = register_module("classifier", torch::nn::Linear(backbone->config.d_model, num_labels));
  torch::NoGradGuard no_grad;
  classifier->bias.zero_();
}

at::Tensor MambaClassifierImpl::pool(const at::Tensor& hidden, const at::Tensor& lengths) const {
  const int64_t B = hidden.size(0), L = hidden.size(1);
  MCD_CHECK(lengths.dim() == 1 && lengths.size(0) == B, "lengths must be (B=", B, "), got ", lengths.sizes());
  const at::Tensor len = lengths.to(hidden.device(), at::kLong);
  MCD_CHECK(len.min().item<int64_t>() >= 1 && len.max().item<int64_t>() <= L,
            "lengths must be in [1, L=", L, "]");
  if (pooling == Pooling::kLastToken) {
    const at::Tensor index = (len - 1).view({B, 1, 1}).expand({B, 1, hidden.size(2)});
    return hidden.gather(1, index).squeeze(1);
  }
  const at::Tensor mask = (torch::arange(L, len.options()).unsqueeze(0) < len.unsqueeze(1))
                              .to(hidden.scalar_type()).unsqueeze(-1);  // (B, L, 1)
  return (hidden * mask).sum(1) / len.to(hidden.scalar_type()).unsqueeze(1);
}

at::Tensor MambaClassifierImpl::forward(const at::Tensor& input_ids, const at::Tensor& lengths) {
  const at::Tensor pooled = pool(backbone->forward(input_ids), lengths);
  const at::Tensor out = classifier->forward(pooled.to(classifier->weight.scalar_type()));
  return out.scalar_type() == at::kDouble ? out : out.to(at::kFloat);
}

}  // namespace mcd
