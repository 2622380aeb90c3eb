// HF-format checkpoint folders (see checkpoint.h).
#include "model/checkpoint.h"

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/safetensors_checkpoint.h"
#include "io/safetensors_torch.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd {

void load_state(torch::nn::Module& module, const std::string& dir,
                const std::function<bool(const std::string&)>& may_be_missing) {
  const io::SafetensorsCheckpoint checkpoint = io::SafetensorsCheckpoint::open_folder(dir);
  const std::string& where = checkpoint.label();
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    const io::SafetensorsCheckpoint::Entry* entry = checkpoint.find(name);
    if (!entry && may_be_missing && may_be_missing(name)) continue;
    MCD_CHECK(entry, where, ": tensor '", name, "' is missing");
    const std::string& file = entry->file->label();
    const at::Tensor value = io::read_tensor(*entry->file, *entry->info);
    MCD_CHECK(value.sizes() == param.sizes(), file, ": tensor '", name, "' has shape ",
              value.sizes(), ", the model expects ", param.sizes());
    MCD_CHECK(at::isFloatingType(value.scalar_type()), file, ": tensor '", name,
              "' must be floating point, got ", io::dtype_name(entry->info->dtype));
    param.copy_(value.to(param.scalar_type()));
    used.insert(name);
  }
  for (const io::SafetensorsCheckpoint::Entry& entry : checkpoint.entries()) {
    const std::string& name = entry.info->name;
    if (used.count(name)) continue;
    if (name == "lm_head.weight" && used.count("backbone.embeddings.weight")) {
      // Tied head stored anyway (some exporters do): accept it only if it is the embedding.
      const at::Tensor head = io::read_tensor(*entry.file, *entry.info).to(at::kFloat);
      const io::SafetensorsCheckpoint::Entry& emb_entry = checkpoint.at("backbone.embeddings.weight");
      const at::Tensor emb = io::read_tensor(*emb_entry.file, *emb_entry.info).to(at::kFloat);
      MCD_CHECK(head.sizes() == emb.sizes() && at::equal(head, emb), entry.file->label(),
                ": 'lm_head.weight' differs from the embedding but the config ties them "
                "(set tie_word_embeddings=false in config.json)");
      continue;
    }
    fail(cat(entry.file->label(), ": unexpected tensor '", name, "' (not a parameter of this model)"));
  }
}

MambaLM load_pretrained(const std::string& dir, const LoadOptions& options) {
  MCD_CHECK(fs::is_directory(dir), dir, ": model folder does not exist");
  const ModelConfig config = ModelConfig::from_hf_file(fs::join(dir, "config.json"));
  MambaLM model(config);
  load_state(*model, dir);
  model->to(options.device, options.dtype);
  return model;
}

void save_pretrained(MambaLMImpl& model, const std::string& dir, at::ScalarType dtype) {
  fs::make_dirs(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters(true))
    tensors.emplace_back(item.key(), item.value().detach().to(torch::kCPU, dtype));
  io::save_safetensors(fs::join(dir, io::SafetensorsCheckpoint::kSingleFile), tensors, {{"format", "pt"}});
  nlohmann::json j = model.config().to_hf_json();
  j["torch_dtype"] = dtype == at::kBFloat16 ? "bfloat16" : dtype == at::kHalf ? "float16" : "float32";
  write_text_atomic(fs::join(dir, "config.json"), j.dump(2) + "\n");
}

}  // namespace mcd
