// HF-format checkpoint folders (see checkpoint.h).
#include "model/checkpoint.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "io/model_folder_tensors_torch.h"
#include "io/pytorch_checkpoint_torch.h"
#include "io/safetensors_checkpoint.h"
#include "io/safetensors_torch.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd {

namespace {

// mamba-ssm's checkpoints name one tensor differently from Hugging Face's (whose names the modules use).
const std::map<std::string, std::string> kMambaSsmNames = {{"backbone.embeddings.weight", "backbone.embedding.weight"}};

// The name under which the folder stores parameter `name`.
std::string stored_name(const io::ModelFolderTensors& tensors, const std::string& name) {
  if (tensors.has(name)) return name;
  const auto alias = kMambaSsmNames.find(name);
  return alias != kMambaSsmNames.end() && tensors.has(alias->second) ? alias->second : name;
}

}  // namespace

void load_state(torch::nn::Module& module, const std::string& dir,
                const std::function<bool(const std::string&)>& may_be_missing) {
  const io::ModelFolderTensors tensors = io::ModelFolderTensors::open(dir);
  const std::string& where = tensors.label();
  torch::NoGradGuard no_grad;
  std::set<std::string> used;  // stored names
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    const std::string stored = stored_name(tensors, name);
    if (!tensors.has(stored) && may_be_missing && may_be_missing(name)) continue;
    MCD_CHECK(tensors.has(stored), where, ": tensor '", name, "' is missing");
    const std::string file = tensors.file_of(stored);
    const at::Tensor value = tensors.read(stored);
    MCD_CHECK(value.sizes() == param.sizes(), file, ": tensor '", stored, "' has shape ",
              value.sizes(), ", the model expects ", param.sizes());
    MCD_CHECK(at::isFloatingType(value.scalar_type()), file, ": tensor '", stored,
              "' must be floating point, got ", c10::toString(value.scalar_type()));
    param.copy_(value.to(param.scalar_type()));
    used.insert(stored);
  }
  const std::string embedding = stored_name(tensors, "backbone.embeddings.weight");
  for (const std::string& name : tensors.names()) {
    if (used.count(name)) continue;
    if (name == "lm_head.weight" && used.count(embedding)) {
      // Tied head stored anyway (mamba-ssm's state dicts and some exporters do): accept it only if it is
      // the embedding.
      const at::Tensor head = tensors.read(name).to(at::kFloat);
      const at::Tensor emb = tensors.read(embedding).to(at::kFloat);
      MCD_CHECK(head.sizes() == emb.sizes() && at::equal(head, emb), tensors.file_of(name),
                ": 'lm_head.weight' differs from the embedding but the config ties them "
                "(set tie_word_embeddings=false in config.json)");
      continue;
    }
    fail(cat(tensors.file_of(name), ": unexpected tensor '", name, "' (not a parameter of this model)"));
  }
}

MambaLM load_pretrained(const std::string& dir, const LoadOptions& options) {
  MCD_CHECK(fs::is_directory(dir), dir, ": model folder does not exist");
  const ModelConfig config = ModelConfig::from_json_file(fs::join(dir, "config.json"));
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

void save_mamba_ssm(MambaLMImpl& model, const std::string& dir, at::ScalarType dtype) {
  const nlohmann::json config = model.config().to_mamba_ssm_json(dir);
  for (const char* name : {io::SafetensorsCheckpoint::kSingleFile, io::SafetensorsCheckpoint::kIndexFile})
    MCD_CHECK(!fs::exists(fs::join(dir, name)), dir, ": holds ", name, ", which loaders would read instead of the ",
              io::PytorchCheckpoint::kSingleFile, " written here; write into another folder");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  at::Tensor embedding;
  for (const auto& item : model.named_parameters(true)) {
    const at::Tensor t = item.value().detach().to(torch::kCPU, dtype);
    const auto alias = kMambaSsmNames.find(item.key());
    if (alias != kMambaSsmNames.end()) embedding = t;
    tensors.emplace_back(alias != kMambaSsmNames.end() ? alias->second : item.key(), t);
  }
  // mamba-ssm's state dict holds the tied head as its own entry (the same tensor: one storage).
  if (model.config().tie_embeddings) tensors.emplace_back("lm_head.weight", embedding);
  fs::make_dirs(dir);
  io::save_pytorch_checkpoint(fs::join(dir, io::PytorchCheckpoint::kSingleFile), tensors);
  write_text_atomic(fs::join(dir, "config.json"), config.dump(4) + "\n");
}

}  // namespace mcd
