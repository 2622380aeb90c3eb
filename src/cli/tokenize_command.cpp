// The `tokenize` subcommand: the byte-level BPE ids of a text file, comma-separated on one line — GPT-2's
// (with --vocab-map, the ids of that restricted vocabulary), or with --model those of a model folder's own
// tokenizer (data::tokenizer_for_model: what every command that tokenizes for that model uses). Present
// only when the tokenizer library is built (src/data/tokenizer).
#include <iostream>

#include "cli/commands.h"
#include "config/model_config.h"
#include "util/error.h"
#include "util/fs.h"

#ifdef MCD_HAS_TOKENIZER
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/vocab_map.h"
#endif

namespace mcd::cli {
namespace {

// The number of ids a model folder's config accepts (ModelConfig::real_vocab_size).
[[maybe_unused]] int64_t model_vocab_size(const std::string& dir) {
  MCD_CHECK(fs::is_directory(dir), "--model ", dir, ": model folder does not exist");
  return ModelConfig::from_json_file(fs::join(dir, "config.json")).real_vocab_size();
}

}  // namespace

Command add_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "print the BPE ids of a text file (GPT-2's, or a model's tokenizer), comma-separated");
  auto file = std::make_shared<std::string>();
  auto map = std::make_shared<std::string>();
  auto model = std::make_shared<std::string>();
  sub->add_option("--text-file", *file, "UTF-8 text file")->required();
  auto* map_opt =
      sub->add_option("--vocab-map", *map, "a restricted vocabulary (vocab_map.json from `data vocab` or a model folder)");
  auto* model_opt = sub->add_option(
      "--model", *model, "a model folder: its own tokenizer (tokenizer.json, else GPT-2; its vocab_map.json applied)");
  map_opt->excludes(model_opt);
  model_opt->excludes(map_opt);
  return {sub, [file, map, model] {
#ifdef MCD_HAS_TOKENIZER
            const std::string text = fs::read_file(*file);  // (a directory or unreadable file: an error naming it)
            auto tokenizer = model->empty() ? data::BpeTokenizer::load_default()
                                            : data::tokenizer_for_model(*model, model_vocab_size(*model));
            if (!map->empty()) tokenizer = tokenizer.restricted(data::VocabMap::load(*map), *map);
            const auto ids = tokenizer.encode(text);
            std::string line;
            for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
            std::cout << line << std::endl;
#else
            fail("this build has no tokenizer (src/data/tokenizer missing)");
#endif
          }};
}

}  // namespace mcd::cli
