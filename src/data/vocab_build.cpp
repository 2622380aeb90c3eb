// build_vocab_map (vocab_build.h): count the base ids of every source, keep the frequent ones.
#include "data/vocab_build.h"

#include "data/glue/glue.h"
#include "data/token_cache.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "util/error.h"

namespace mcd::data {

VocabBuild build_vocab_map(const VocabSources& src, const BpeTokenizer& base) {
  MCD_CHECK(!src.corpora.empty() || !src.custom_files.empty() || !src.glue.empty(),
            "a vocabulary needs at least one corpus or task to count ids in");
  MCD_CHECK(src.min_count >= 1, "min_count must be at least 1, got ", src.min_count);
  MCD_CHECK(src.val_fraction >= 0 && src.val_fraction <= 1, "val_fraction must be in [0, 1], got ", src.val_fraction);
  std::vector<int64_t> counts(base.vocab_size(), 0);
  std::vector<int32_t> ids;
  int64_t documents = 0, examples = 0, tokens = 0;
  auto count = [&](std::string_view text) {
    ids.clear();
    base.encode_into(text, /*allow_special=*/false, ids);  // as the token cache and fine-tuning do
    for (const int32_t id : ids) ++counts[size_t(id)];
    tokens += int64_t(ids.size());
  };
  nlohmann::json described = nlohmann::json::array();
  for (const CorpusSpec& spec : src.corpora) {
    int64_t seen = 0;
    for_each_document(spec, [&](std::string_view doc) {
      if (src.max_documents >= 0 && seen >= src.max_documents) return;
      ++seen;
      if (is_validation_document(doc, src.val_fraction, src.split_seed)) return;
      ++documents;
      count(doc);
    });
    described.push_back({{"corpus", spec.paths}, {"format", spec.format}});
  }
  auto count_dataset = [&](const glue::Dataset& d) {
    for (const auto& e : d.examples) {
      ++examples;
      count(e.text_a);
      if (e.text_b) count(*e.text_b);
    }
  };
  for (const std::string& f : src.custom_files) {
    count_dataset(glue::read_custom(f, "train"));
    described.push_back({{"custom", f}});
  }
  for (const auto& [task, dir] : src.glue) {
    count_dataset(glue::read_glue(task, "train", dir));
    described.push_back({{"glue", task}, {"data_dir", dir}});
  }
  MCD_CHECK(tokens > 0, "the vocabulary's sources hold no text");
  std::vector<int32_t> kept;
  int64_t distinct = 0, unk_tokens = 0;
  for (size_t id = 0; id < counts.size(); ++id) {
    if (counts[id] == 0) continue;
    ++distinct;
    if (counts[id] >= src.min_count) {
      kept.push_back(int32_t(id));
    } else {
      unk_tokens += counts[id];
    }
  }
  VocabBuild out{VocabMap::from_base_ids(std::move(kept), base), {}};
  out.summary = {{"documents", documents},
                 {"examples", examples},
                 {"tokens", tokens},
                 {"distinct_ids", distinct},
                 {"kept_ids", int64_t(out.map.base_ids().size())},
                 {"size", out.map.size()},
                 {"unk_tokens", unk_tokens},
                 {"min_count", src.min_count},
                 {"val_fraction", src.val_fraction},
                 {"split_seed", src.split_seed},
                 {"base", base.source()},
                 {"sources", described}};
  return out;
}

}  // namespace mcd::data
