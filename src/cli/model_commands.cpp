// Model subcommands: info, init, generate, score (the command-line contract of issue #2:
// generate's last stdout line is the comma-separated ids; score prints one JSON line).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/token_input.h"
#include "infer/graph_decoder.h"
#include "io/safetensors.h"
#include "io/safetensors_torch.h"
#include "model/checkpoint.h"
#include "model/generation.h"
#include "util/error.h"
#include "util/fs.h"

#ifdef MCD_HAS_TOKENIZER
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/vocab_map.h"
#endif

namespace mcd::cli {
namespace {

// A model's configuration from exactly one of --model DIR, --preset NAME, --config FILE.
struct ModelSource {
  std::string model_dir, preset, config_file;
  void add_to(CLI::App* sub, bool allow_dir) {
    auto* group = sub->add_option_group("model", "where the model configuration comes from");
    if (allow_dir) group->add_option("--model", model_dir, "HF-format model folder (config.json + model.safetensors)");
    group->add_option("--preset", preset, "named preset from configs/models (e.g. mamba-130m)");
    group->add_option("--config", config_file, "model YAML file");
    group->require_option(1);
  }
  ModelConfig config() const {
    if (!model_dir.empty()) return ModelConfig::from_json_file(model_dir + "/config.json");
    if (!preset.empty()) return model_preset(preset);
    return ModelConfig::from_yaml_file(config_file);
  }
};

}  // namespace

torch::Device parse_device(const std::string& name) {
  if (name == "auto") return cuda_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const std::exception&) {
    fail(cat("invalid --device '", name, "' (valid: cpu, cuda, cuda:N, auto)"));
  }
  MCD_CHECK(!device.is_cuda() || cuda_available(), "--device ", name,
            ": CUDA is not available in this build or on this machine");
  // An index past the devices would otherwise surface as LibTorch's error at the first copy.
  MCD_CHECK(!device.is_cuda() || !device.has_index() || device.index() < int(torch::cuda::device_count()),
            "--device ", name, ": this machine has ", torch::cuda::device_count(), " CUDA device(s)");
  MCD_CHECK(device.is_cuda() || !device.has_index() || device.index() == 0, "invalid --device '", name,
            "' (valid: cpu, cuda, cuda:N, auto)");
  return device;
}

std::vector<int64_t> parse_id_list(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MCD_CHECK(used == item.size() && !item.empty() && v >= 0, "invalid token id '", item,
              "' in '", text, "' (expected comma-separated non-negative integers)");
    ids.push_back(v);
  }
  MCD_CHECK(!ids.empty(), "empty id list");
  return ids;
}

Command add_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "print a model's configuration and parameter count as JSON");
  auto src = std::make_shared<ModelSource>();
  src->add_to(sub, true);
  return {sub, [src] {
            const ModelConfig c = src->config();
            nlohmann::json j;
            j["parameters"] = c.num_parameters();
            j["config"] = c.to_hf_json();
            std::cout << j.dump() << std::endl;
          }};
}

Command add_init(CLI::App& app) {
  auto* sub = app.add_subcommand("init", "write a freshly initialised model (reference init) as an HF-format folder");
  auto src = std::make_shared<ModelSource>();
  src->add_to(sub, false);
  auto out = std::make_shared<std::string>();
  auto widths_from = std::make_shared<std::string>();
  auto seed = std::make_shared<uint64_t>(0);
  auto round_to = std::make_shared<int64_t>(16);
  auto sparsity = std::make_shared<double>(0.0);
  sub->add_option("--out", *out, "output folder")->required();
  sub->add_option("--seed", *seed, "initialisation seed")->capture_default_str();
  sub->add_option("--widths-from", *widths_from,
                  "a (pruned) model folder whose per-layer inner widths are carried over as fractions of its E "
                  "(timing a pruned model at another scale with random weights)");
  auto* sparsity_opt = sub->add_option("--sparsity", *sparsity,
                  "remove this fraction of every layer's inner channels (uniform pruning with random weights, "
                  "for timing)")->check(CLI::Range(0.0, 0.99));
  sparsity_opt->excludes(sub->get_option("--widths-from"));
  sub->add_option("--round-to", *round_to, "with --widths-from or --sparsity: widths rounded to a multiple of this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return {sub, [=] {
            ModelConfig config = src->config();
            if (!widths_from->empty()) {
              const ModelConfig source = ModelConfig::from_json_file(fs::join(*widths_from, "config.json"));
              config = config.with_width_fractions_of(source, *round_to);
              config.validate("init --widths-from " + *widths_from);
            }
            if (*sparsity > 0.0) config = config.with_uniform_sparsity(*sparsity, *round_to);
            MambaLM model(config);
            init_reference(*model, *seed);
            save_pretrained(*model, *out);
            std::cout << "wrote " << *out << " (" << model->config().num_parameters() << " parameters)" << std::endl;
          }};
}

Command add_convert(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "convert", "rewrite a model folder (Hugging Face's or mamba-ssm's; safetensors or pytorch_model.bin) as this "
                 "project's folder (config.json with Hugging Face's keys, model.safetensors) or as mamba-ssm's; its "
                 "tokenizer files go with it");
  struct Args {
    std::string model, out, dtype = "float32", format = "ours";
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "the model folder to read")->required();
  sub->add_option("--out", a->out, "the folder to write (created if needed)")->required();
  sub->add_option("--format", a->format,
                  "ours (HF keys, model.safetensors) or mamba-ssm (its config.json and pytorch_model.bin, for "
                  "MambaLMHeadModel.from_pretrained; dense Mamba-1 models without gates)")
      ->check(CLI::IsMember({"ours", "mamba-ssm"}))
      ->capture_default_str();
  sub->add_option("--dtype", a->dtype, "the stored tensors' type: float32, bfloat16, float16")->capture_default_str();
  return {sub, [a] {
            MCD_CHECK(a->dtype == "float32" || a->dtype == "bfloat16" || a->dtype == "float16",
                      "--dtype must be float32, bfloat16 or float16, got '", a->dtype, "'");
            MCD_CHECK(!fs::same_file(a->model, a->out), "--out must be another folder than --model (", a->out, ")");
            // A mamba-ssm folder without its tokenizer would come out as a folder that means GPT-2: refused
            // here, with what to add, rather than written.
            (void)data::model_base_tokenizer(a->model);
            MambaLM model = load_pretrained(a->model);
            const at::ScalarType dtype =
                a->dtype == "bfloat16" ? at::kBFloat16 : a->dtype == "float16" ? at::kHalf : at::kFloat;
            if (a->format == "mamba-ssm")
              save_mamba_ssm(*model, a->out, dtype);
            else
              save_pretrained(*model, a->out, dtype);
            data::copy_tokenizer_files(a->model, a->out);
            std::cout << "wrote " << a->out << " (" << model->config().num_parameters() << " parameters, "
                      << a->dtype << ")" << std::endl;
          }};
}

Command add_generate(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "generate tokens with the recurrent step mode");
  struct Args {
    std::string model, prompt_ids, prompt, prompts_file, device = "auto", dtype = "float32", cuda_graph = "on";
    GenerationOptions gen;
    bool ignore_eos = false, stream = false;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "HF-format model folder")->required();
  auto* ids_opt = sub->add_option("--prompt-ids", a->prompt_ids,
                                  "prompt token ids, comma-separated (e.g. 37,235,396); several prompts separated by ';'");
  auto* text_opt = sub->add_option("--prompt", a->prompt,
                                   "prompt text, tokenized with the model's tokenizer (its tokenizer.json, else GPT-2); the decoded text is printed before the ids");
  auto* file_opt = sub->add_option("--prompts-file", a->prompts_file,
                                   "text file, one prompt per non-empty line (the model's tokenizer), generated as one batch");
  ids_opt->excludes(text_opt)->excludes(file_opt);
  text_opt->excludes(ids_opt)->excludes(file_opt);
  file_opt->excludes(ids_opt)->excludes(text_opt);
  sub->add_option("--max-new-tokens", a->gen.max_new_tokens, "tokens to generate")->capture_default_str();
  sub->add_flag("--greedy", a->gen.greedy, "argmax decoding (default: sampling)");
  sub->add_option("--temperature", a->gen.temperature, "sampling temperature")->capture_default_str();
  sub->add_option("--top-k", a->gen.top_k, "keep the k most likely tokens (0 = off)")->capture_default_str();
  sub->add_option("--top-p", a->gen.top_p, "nucleus sampling mass (1 = off)")->capture_default_str();
  sub->add_option("--min-p", a->gen.min_p, "drop tokens less likely than this fraction of the most likely one (0 = off)")
      ->capture_default_str();
  sub->add_option("--repetition-penalty", a->gen.repetition_penalty,
                  "divide positive / multiply negative logits of tokens already in the sequence (1 = off; greedy too)")
      ->capture_default_str();
  sub->add_option("--seed", a->gen.seed, "sampling seed")->capture_default_str();
  sub->add_flag("--ignore-eos", a->ignore_eos, "do not stop at the config's EOS token");
  sub->add_flag("--stream", a->stream,
                "print the text as each token is chosen (one --prompt; the same output, the ids line after it)");
  sub->add_option("--device", a->device, "cpu, cuda, cuda:N or auto (cuda if available)")->capture_default_str();
  sub->add_option("--dtype", a->dtype, "parameter dtype: float32, float64, bfloat16")->capture_default_str();
  sub->add_option("--cuda-graph", a->cuda_graph,
                  "decoding on CUDA replays each step as one CUDA graph, the next token chosen on the device (off: one launch per kernel)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  return {sub, [a] {
            MCD_CHECK(!a->prompt_ids.empty() || !a->prompt.empty() || !a->prompts_file.empty(),
                      "generate needs --prompt-ids, --prompt or --prompts-file");
            std::vector<std::vector<int64_t>> prompts;
#ifdef MCD_HAS_TOKENIZER
            std::optional<data::BpeTokenizer> tokenizer;
            if (!a->prompt.empty() || !a->prompts_file.empty()) {
              // The model's own tokenizer: its tokenizer.json, else GPT-2; restricted by its vocab_map.json if it has one.
              tokenizer = data::tokenizer_for_model(
                  a->model, ModelConfig::from_json_file(fs::join(a->model, "config.json")).real_vocab_size());
              std::vector<std::string> texts;
              if (!a->prompt.empty()) texts.push_back(a->prompt);
              if (!a->prompts_file.empty()) {
                std::ifstream in(a->prompts_file);
                MCD_CHECK(in.good(), a->prompts_file, ": cannot open the prompts file");
                for (std::string line; std::getline(in, line);)
                  if (line.find_first_not_of(" \t\r") != std::string::npos) texts.push_back(line);
                MCD_CHECK(!texts.empty(), a->prompts_file, ": no prompt (every line is empty)");
              }
              for (const std::string& text : texts) {
                std::vector<int64_t> ids;
                for (int32_t id : tokenizer->encode(text)) ids.push_back(id);
                MCD_CHECK(!ids.empty(), "--prompt is empty");
                prompts.push_back(std::move(ids));
              }
            }
            // Ids outside the tokenizer's vocabulary (the embedding's padding) are left out of the text.
            auto decode_text = [&tokenizer](const std::vector<int64_t>& ids) {
              std::vector<int32_t> ids32;
              for (int64_t id : ids)
                if (id < int64_t(tokenizer->vocab_size())) ids32.push_back(int32_t(id));
              return tokenizer->decode(ids32);
            };
#else
            MCD_CHECK(a->prompt.empty() && a->prompts_file.empty(),
                      "--prompt and --prompts-file need the tokenizer, which this build lacks");
#endif
            if (prompts.empty()) {
              std::stringstream ss(a->prompt_ids);
              for (std::string part; std::getline(ss, part, ';');) {
                MCD_CHECK(!part.empty(), "--prompt-ids: prompt ", prompts.size() + 1, " of '", a->prompt_ids, "' is empty");
                prompts.push_back(parse_id_list(part));
              }
              MCD_CHECK(!prompts.empty(), "--prompt-ids is empty");
            }
            GenerationOptions g = a->gen;
            g.stop_at_eos = !a->ignore_eos;
            validate(g);  // before the model loads
            MCD_CHECK(!a->stream || (!a->prompt.empty() && prompts.size() == 1),
                      "--stream prints text as it is generated: give one --prompt");
            const torch::Device device = parse_device(a->device);
            LoadOptions lo;
            lo.device = device;
            lo.dtype = a->dtype == "float64" ? at::kDouble : a->dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
            MCD_CHECK(a->dtype == "float32" || a->dtype == "float64" || a->dtype == "bfloat16",
                      "invalid --dtype '", a->dtype, "' (valid: float32, float64, bfloat16)");
            MambaLM model = load_pretrained(a->model, lo);
            model->eval();
            for (const auto& p : prompts)
              for (int64_t id : p)
                MCD_CHECK(id < model->config().vocab_size, "prompt id ", id, " is outside the vocabulary (",
                          model->config().vocab_size, ")");
            // On CUDA each step is one CUDA-graph replay (infer/graph_decoder.h); the same loop and tokens as eager.
            const bool graph = device.is_cuda() && a->cuda_graph == "on";
            if (prompts.size() > 1) {
              // Several prompts: one batch (model/generation.h, generate_batch), one JSON line each.
              const auto all = graph ? infer::generate_graph_batch(*model, prompts, g) : generate_batch(*model, prompts, g);
              for (size_t r = 0; r < all.size(); ++r) {
                nlohmann::json line = {{"prompt", r},
                                       {"prompt_tokens", prompts[r].size()},
                                       {"new_tokens", all[r].size() - prompts[r].size()},
                                       {"ids", all[r]}};
#ifdef MCD_HAS_TOKENIZER
                if (tokenizer) line["text"] = decode_text(all[r]);
#endif
                std::cout << line.dump() << std::endl;
              }
              return;
            }
            // --stream: the prompt's text, then each new token's text as it is chosen (a token's bytes may end
            // inside a UTF-8 character; the terminal joins them with the next token's).
            TokenCallback on_token;
#ifdef MCD_HAS_TOKENIZER
            if (a->stream) {
              std::cout << decode_text(prompts[0]) << std::flush;
              on_token = [&](int64_t, int64_t id, bool) { std::cout << decode_text({id}) << std::flush; };
            }
#endif
            const std::vector<int64_t> ids = graph ? infer::generate_graph_batch(*model, prompts, g, on_token)[0]
                                                   : generate_batch(*model, prompts, g, on_token)[0];
#ifdef MCD_HAS_TOKENIZER
            if (a->stream) std::cout << std::endl;
            else if (tokenizer) std::cout << decode_text(ids) << std::endl;
#endif
            std::string line;
            for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
            std::cout << line << std::endl;
          }};
}

Command add_score(CLI::App& app) {
  auto* sub = app.add_subcommand("score", "mean shifted cross-entropy of token sequences (one JSON line)");
  struct Args {
    std::string model, tokens, corpus, out, device = "auto", format = "auto";
    int64_t seq_len = 256, max_tokens = -1, batch = 8;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "HF-format model folder")->required();
  auto* tokens = sub->add_option("--tokens", a->tokens, "safetensors file with `input_ids` (B x L, int64)");
  auto* corpus = sub->add_option("--corpus", a->corpus,
                                 "corpus file or folder, tokenized with the model's tokenizer into consecutive windows of --seq-len "
                                 "(e.g. WikiText-2 validation)");
  tokens->excludes(corpus);
  corpus->excludes(tokens);
  sub->add_option("--format", a->format, "corpus format: auto, wikitext, wikiextractor, text")->capture_default_str();
  sub->add_option("--seq-len", a->seq_len, "tokens per window (corpus)")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--max-tokens", a->max_tokens, "score only the first windows covering this many tokens (-1: all)")
      ->capture_default_str();
  sub->add_option("--batch", a->batch, "sequences per forward pass")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--out", a->out, "write `logits` (B x L x V, float32) to this safetensors file (--tokens only)");
  sub->add_option("--device", a->device, "cpu, cuda, cuda:N or auto (cuda if available)")->capture_default_str();
  return {sub, [a, tokens, corpus] {
            MCD_CHECK(tokens->count() + corpus->count() == 1, "score: pass --tokens FILE.safetensors or --corpus PATH");
            MCD_CHECK(a->out.empty() || tokens->count(), "score: --out (all logits) needs --tokens");
            MCD_CHECK(a->seq_len >= 2, "score: --seq-len must be >= 2, got ", a->seq_len);
            const torch::Device device = parse_device(a->device);
            LoadOptions lo;
            lo.device = device;
            MambaLM model = load_pretrained(a->model, lo);
            model->eval();
            const int64_t real_vocab = model->config().real_vocab_size();
            const TokenInput in =
                tokens->count()
                    ? read_token_input(a->tokens, a->format, a->seq_len, -1, -1, "--tokens", a->model, real_vocab)
                    : read_token_input(a->corpus, a->format, a->seq_len, a->max_tokens, -1, "--corpus", a->model,
                                       real_vocab);
            const at::Tensor ids = in.ids;
            const int64_t vocab = model->config().vocab_size;
            MCD_CHECK(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < vocab,
                      "score: token ids must be in [0, ", vocab, ") for ", a->model);
            torch::NoGradGuard no_grad;
            // Sum of per-batch mean losses weighted by their predictions: the mean over every window.
            double loss_sum = 0;
            std::vector<at::Tensor> all_logits;
            for (int64_t start = 0; start < ids.size(0); start += a->batch) {
              const at::Tensor batch = ids.slice(0, start, std::min(ids.size(0), start + a->batch)).to(device);
              const at::Tensor logits = model->forward(batch);
              loss_sum += shifted_cross_entropy(logits, batch).item<double>() * double(batch.size(0));
              if (!a->out.empty()) all_logits.push_back(logits.to(torch::kCPU, at::kFloat));
            }
            if (!a->out.empty()) io::save_safetensors(a->out, {{"logits", torch::cat(all_logits)}});
            nlohmann::json j;
            j["loss"] = loss_sum / double(ids.size(0));
            j["tokens"] = ids.size(0) * (ids.size(1) - 1);
            if (corpus->count()) {
              j["windows"] = ids.size(0);
              j["seq_len"] = ids.size(1);
              j["documents"] = in.documents;
            }
            std::cout << j.dump() << std::endl;
          }};
}

}  // namespace mcd::cli
