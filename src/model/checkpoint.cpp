// HF-format checkpoint folders (see checkpoint.h).
#include "model/checkpoint.h"

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/safetensors_torch.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd {

void load_state(torch::nn::Module& module, const std::string& path,
                const std::function<bool(const std::string&)>& may_be_missing) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    const io::TensorInfo* info = file.find(name);
    if (!info && may_be_missing && may_be_missing(name)) continue;
    MCD_CHECK(info, path, ": tensor '", name, "' is missing");
    const at::Tensor value = io::read_tensor(file, *info);
    MCD_CHECK(value.sizes() == param.sizes(), path, ": tensor '", name, "' has shape ",
              value.sizes(), ", the model expects ", param.sizes());
    MCD_CHECK(at::isFloatingType(value.scalar_type()), path, ": tensor '", name,
              "' must be floating point, got ", io::dtype_name(info->dtype));
    param.copy_(value.to(param.scalar_type()));
    used.insert(name);
  }
  for (const auto& info : file.tensors()) {
    if (used.count(info.name)) continue;
    if (info.name == "lm_head.weight" && used.count("backbone.embeddings.weight")) {
      // Tied head stored anyway (some exporters do): accept it only if it is the embedding.
      const at::Tensor head = io::read_tensor(file, info).to(at::kFloat);
      const at::Tensor emb = io::read_tensor(file, file.at("backbone.embeddings.weight")).to(at::kFloat);
      MCD_CHECK(head.sizes() == emb.sizes() && at::equal(head, emb), path,
                ": 'lm_head.weight' differs from the embedding but the config ties them "
                "(set tie_word_embeddings=false in config.json)");
      continue;
    }
    fail(cat(path, ": unexpected tensor '", info.name, "' (not a parameter of this model)"));
  }
}

MambaLM load_pretrained(const std::string& dir, const LoadOptions& options) {
  MCD_CHECK(fs::is_directory(dir), dir, ": model folder does not exist");
  const ModelConfig config = ModelConfig::from_hf_file(fs::join(dir, "config.json"));
  MambaLM model(config);
  load_state(*model, fs::join(dir, "model.safetensors"));
  model->to(options.device, options.dtype);
  return model;
}

void save_pretrained(MambaLMImpl& model, const std::string& dir, at::ScalarType dtype) {
  fs::make_dirs(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters(true))
    tensors.emplace_back(item.key(), item.value().detach().to(torch::kCPU, dtype));
  io::save_safetensors(fs::join(dir, "model.safetensors"), tensors, {{"format", "pt"}});
  nlohmann::json j = model.config().to_hf_json();
  j["torch_dtype"] = dtype == at::kBFloat16 ? "bfloat16" : dtype == at::kHalf ? "float16" : "float32";
  write_text_atomic(fs::join(dir, "config.json"), j.dump(2) + "\n");
}

}  // namespace mcd
