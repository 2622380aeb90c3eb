// The `tokenize` subcommand: GPT-2 byte-level BPE ids of a text file, comma-separated on one
// line (with --vocab-map, the ids of that restricted vocabulary). Present only when the tokenizer library is built (src/data/tokenizer).
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "util/error.h"
#include "util/fs.h"

#ifdef MCD_HAS_TOKENIZER
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/vocab_map.h"
#endif

namespace mcd::cli {

Command add_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "print the GPT-2 BPE ids of a text file, comma-separated");
  auto file = std::make_shared<std::string>();
  auto map = std::make_shared<std::string>();
  sub->add_option("--text-file", *file, "UTF-8 text file")->required();
  sub->add_option("--vocab-map", *map, "a restricted vocabulary (vocab_map.json from `data vocab` or a model folder)");
  return {sub, [file, map] {
#ifdef MCD_HAS_TOKENIZER
            // A directory opens as an empty stream on Linux: refuse it rather than print nothing.
            MCD_CHECK(!fs::is_directory(*file), "--text-file ", *file, ": is a directory, not a text file");
            std::ifstream in(*file, std::ios::binary);
            MCD_CHECK(in.good(), "--text-file ", *file, ": cannot open text file");
            std::stringstream ss;
            ss << in.rdbuf();
            MCD_CHECK(!in.bad(), "--text-file ", *file, ": read error");
            auto tokenizer = data::BpeTokenizer::load_default();
            if (!map->empty()) tokenizer = tokenizer.restricted(data::VocabMap::load(*map), *map);
            const auto ids = tokenizer.encode(ss.str());
            std::string line;
            for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
            std::cout << line << std::endl;
#else
            fail("this build has no tokenizer (src/data/tokenizer missing)");
#endif
          }};
}

}  // namespace mcd::cli
