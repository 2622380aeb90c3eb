// Classification head on the backbone (see classifier.h).
#include "model/classifier.h"

#include <fstream>

#include "io/safetensors_checkpoint.h"
#include "io/safetensors_torch.h"
#include "ops/graph_capture.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd {

Pooling parse_pooling(const std::string& name) {
  if (name == "last") return Pooling::kLastToken;
  if (name == "mean") return Pooling::kMean;
  fail(cat("unknown pooling '", name, "' (valid: last, mean)"));
}

const char* pooling_name(Pooling p) { return p == Pooling::kLastToken ? "last" : "mean"; }

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
  // Read back from the device unless the caller checked them on the host (ops/graph_capture.h).
  if (!(len.is_cuda() && ops::skip_device_input_checks())) {
    const auto [mn, mx] = at::aminmax(len);
    const at::Tensor range = at::stack({mn, mx}).to(at::kCPU);  // one synchronisation, not two
    MCD_CHECK(range[0].item<int64_t>() >= 1 && range[1].item<int64_t>() <= L, "lengths must be in [1, L=", L,
              "], got [", range[0].item<int64_t>(), ", ", range[1].item<int64_t>(), "]");
  }
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

void save_classifier(MambaClassifierImpl& model, const std::string& dir, const nlohmann::json& extra,
                     at::ScalarType dtype) {
  fs::make_dirs(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters(true))
    tensors.emplace_back(item.key(), item.value().detach().to(torch::kCPU, dtype));
  io::save_safetensors(fs::join(dir, io::SafetensorsCheckpoint::kSingleFile), tensors, {{"format", "pt"}});
  nlohmann::json j = model.backbone->config.to_hf_json();
  j["torch_dtype"] = dtype == at::kBFloat16 ? "bfloat16" : dtype == at::kHalf ? "float16" : "float32";
  j["num_labels"] = model.classifier->weight.size(0);
  j["pooling"] = pooling_name(model.pooling);
  j["mcd_classifier"] = extra.is_null() ? nlohmann::json::object() : extra;
  write_text_atomic(fs::join(dir, "config.json"), j.dump(2) + "\n");
}

MambaClassifier load_classifier(const std::string& dir, const LoadOptions& options, nlohmann::json* extra) {
  MCD_CHECK(fs::is_directory(dir), dir, ": model folder does not exist");
  const std::string config_path = fs::join(dir, "config.json");
  const ModelConfig config = ModelConfig::from_json_file(config_path);
  std::ifstream in(config_path);
  const nlohmann::json j = nlohmann::json::parse(in);
  MCD_CHECK(j.contains("num_labels") && j["num_labels"].is_number_integer(), config_path,
            ": no integer 'num_labels': not a classifier folder (a language model is loaded with load_pretrained)");
  MambaClassifier model(config, j["num_labels"].get<int64_t>(), parse_pooling(j.value("pooling", "last")));
  load_state(*model, dir);
  model->to(options.device, options.dtype);
  if (extra) *extra = j.value("mcd_classifier", nlohmann::json::object());
  return model;
}

}  // namespace mcd
