// Restricted vocabularies (data/tokenizer/vocab_map.h, data/vocab_build.h): the map and its file,
// the tokenizer it restricts (round trip, unknown ids, eot), the token cache keyed on it, the
// builder's counting rules, and the model folder's tokenizer (tokenizer_for_model: its tokenizer.json or
// GPT-2, its map).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "data/token_cache.h"
#include "data/tokenizer/vocab_map.h"
#include "data/vocab_build.h"
#include "data_test_util.h"

namespace mcd::data {
namespace {

using test::byte_tokenizer;
using test::error_of;
using test::read_file;
using test::write_file;

// The bytes of `text` as ids of the byte tokenizer (id = byte).
std::vector<int32_t> bytes_of(const std::string& text) { return std::vector<int32_t>(text.begin(), text.end()); }

TEST(VocabMap, KeepsTheGivenIdsInOrderThenEotThenUnk) {
  mcd::test::TempDir tmp;
  const BpeTokenizer base = byte_tokenizer(tmp.path);
  const VocabMap m = VocabMap::from_base_ids(bytes_of("cabba"), base);
  // a b c, then <|endoftext|> (256, the largest base id), then unk.
  EXPECT_EQ(m.base_ids(), (std::vector<int32_t>{'a', 'b', 'c', 256}));
  EXPECT_EQ(m.size(), 5);
  EXPECT_EQ(m.to_local('a'), 0);
  EXPECT_EQ(m.to_local('c'), 2);
  EXPECT_EQ(m.eot_id(), 3);
  EXPECT_EQ(m.unk_id(), 4);
  EXPECT_EQ(m.to_local('z'), m.unk_id());
  EXPECT_EQ(m.to_local(-1), m.unk_id());
  EXPECT_EQ(m.to_local(100000), m.unk_id());
  EXPECT_EQ(m.to_base(2), 'c');
  EXPECT_EQ(m.to_base(m.unk_id()), -1);
  EXPECT_NE(error_of([&] { m.to_base(5); }).find("outside the restricted vocabulary (5 ids)"), std::string::npos);
  EXPECT_NE(error_of([&] { VocabMap::from_base_ids({257}, base); }).find("outside the base vocabulary"),
            std::string::npos);
}

TEST(VocabMap, RestrictedTokenizerRoundTripsKnownTextAndMarksUnknownBytes) {
  mcd::test::TempDir tmp;
  const BpeTokenizer base = byte_tokenizer(tmp.path);
  const BpeTokenizer tok = base.restricted(VocabMap::from_base_ids(bytes_of("a cat sat"), base), "test map");
  EXPECT_EQ(tok.vocab_size(), 7u);  // ' ', a, c, s, t, eot, unk
  EXPECT_EQ(tok.eot_id(), 5);
  EXPECT_NE(tok.fingerprint(), base.fingerprint());
  EXPECT_NE(tok.source().find("restricted to 7 ids by test map"), std::string::npos) << tok.source();
  const std::vector<int32_t> ids = tok.encode("a cat sat");
  for (const int32_t id : ids) EXPECT_LT(id, 5);
  EXPECT_EQ(tok.decode(ids), "a cat sat");
  // A byte outside the map becomes the unknown id and decodes as U+FFFD.
  EXPECT_EQ(tok.encode("a dog"), (std::vector<int32_t>{1, 0, 6, 6, 6}));
  EXPECT_EQ(tok.decode(tok.encode("a dog")), "a \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  // <|endoftext|> as a special token maps to the map's eot; as text it is its bytes (all unknown
  // but '<', 't'...: what matters is that no base id leaks through).
  EXPECT_EQ(tok.encode_allow_special("<|endoftext|>"), (std::vector<int32_t>{5}));
  for (const int32_t id : tok.encode("<|endoftext|> zq")) EXPECT_LT(id, int32_t(tok.vocab_size()));
  EXPECT_NE(error_of([&] { tok.decode({7}); }).find("outside the restricted vocabulary"), std::string::npos);
  // Restricting twice, or with a map of another tokenizer, is refused.
  EXPECT_NE(error_of([&] { tok.restricted(VocabMap::from_base_ids({'a'}, base), "again"); }).find("already restricted"),
            std::string::npos);
  const BpeTokenizer other = byte_tokenizer(tmp.path, /*with_merge=*/true);
  EXPECT_NE(error_of([&] { other.restricted(VocabMap::from_base_ids({'a'}, base), "m.json"); })
                .find("m.json: the map was built over another tokenizer"),
            std::string::npos);
}

TEST(VocabMap, FileRoundTripAndStrictReading) {
  mcd::test::TempDir tmp;
  const BpeTokenizer base = byte_tokenizer(tmp.path);
  const VocabMap m = VocabMap::from_base_ids(bytes_of("hello"), base);
  const std::string path = tmp.file("vocab_map.json");
  m.save(path, {{"note", "test"}});
  const VocabMap back = VocabMap::load(path);
  EXPECT_EQ(back.base_ids(), m.base_ids());
  EXPECT_EQ(back.fingerprint(), m.fingerprint());
  EXPECT_EQ(back.base_fingerprint(), base.fingerprint());
  EXPECT_EQ(back.base_vocab_size(), 257);
  EXPECT_EQ(back.info()["note"], "test");
  // Another id set, another fingerprint.
  EXPECT_NE(VocabMap::from_base_ids(bytes_of("help"), base).fingerprint(), m.fingerprint());

  auto edited = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(read_file(path));
    edit(j);
    const std::string p = tmp.file("edited.json");
    write_file(p, j.dump());
    return error_of([&] { VocabMap::load(p); });
  };
  EXPECT_NE(edited([](nlohmann::json& j) { j["base_ids"].push_back(999); }).find("outside the base vocabulary"),
            std::string::npos);
  EXPECT_NE(edited([](nlohmann::json& j) { j["base_ids"].push_back(int('h')); }).find("lists an id twice"),
            std::string::npos);
  EXPECT_NE(edited([](nlohmann::json& j) { j["base_ids"][0] = int('x'); }).find("'fingerprint' does not match"),
            std::string::npos);
  EXPECT_NE(edited([](nlohmann::json& j) { j.erase("base"); }).find("edited.json: missing key 'base'"),
            std::string::npos);
  EXPECT_NE(edited([](nlohmann::json& j) { j["base_ids"].erase(j["base_ids"].size() - 1); })
                .find("the end-of-text id 256 must be kept"),
            std::string::npos);
  EXPECT_NE(edited([](nlohmann::json& j) { j["format"] = "x"; }).find("'format' must be"), std::string::npos);
}

TEST(VocabMap, TokenCacheKeyChangesWithTheMap) {
  mcd::test::TempDir tmp;
  const BpeTokenizer base = byte_tokenizer(tmp.path);
  write_file(tmp.file("corpus/a.txt"), "abc abc abc\n");
  write_file(tmp.file("corpus/b.txt"), "cab cab\n");
  CorpusSpec spec{"text", {tmp.file("corpus")}};
  TokenCacheOptions o;
  o.cache_dir = tmp.file("cache");
  o.val_fraction = 0;
  o.threads = 1;
  o.log = [](const std::string&) {};
  const BpeTokenizer small = base.restricted(VocabMap::from_base_ids(bytes_of("ab"), base), "ab");
  const BpeTokenizer wider = base.restricted(VocabMap::from_base_ids(bytes_of("abc "), base), "abc");
  {
    const TokenCache c = TokenCache::open_or_build(spec, small, o);
    // a b, eot, unk: 'c', ' ' and '\n' are unknown; every id is below the map's size.
    EXPECT_EQ(c.meta()["inputs"]["tokenizer"]["vocab_size"], 4);
    for (int64_t i = 0; i < c.train().size; ++i) EXPECT_LT(c.train().data[i], 4);
    EXPECT_EQ(c.train().data[0], 0);  // 'a'
    EXPECT_EQ(c.train().data[2], 3);  // 'c' -> unk
  }
  EXPECT_EQ(TokenCache::open_or_build(spec, small, o).rebuild_reason(), "");
  const TokenCache c2 = TokenCache::open_or_build(spec, wider, o);
  EXPECT_NE(c2.rebuild_reason().find("tokenizer changed"), std::string::npos) << c2.rebuild_reason();
  EXPECT_NE(TokenCache::open_or_build(spec, base, o).rebuild_reason().find("tokenizer changed"), std::string::npos);
}

TEST(VocabMap, BuilderCountsTrainingTextOnlyAndAppliesMinCount) {
  mcd::test::TempDir tmp;
  const BpeTokenizer base = byte_tokenizer(tmp.path);
  // Two documents; the split rule decides which one is validation at val_fraction 0.5.
  const std::string d1 = "aaaa bbb", d2 = "xyz";
  write_file(tmp.file("c/1.txt"), d1);
  write_file(tmp.file("c/2.txt"), d2);
  write_file(tmp.file("task.jsonl"), "{\"text\": \"kk\", \"text_b\": \"w\", \"label\": \"ham\"}\n{\"text\": \"q\", \"text_b\": \"kw\", "
                                     "\"label\": \"spam\"}\n");
  VocabSources s;
  s.corpora = {CorpusSpec{"text", {tmp.file("c")}}};
  s.custom_files = {tmp.file("task.jsonl")};
  VocabBuild all = build_vocab_map(s, base);
  EXPECT_EQ(all.map.base_ids(), (std::vector<int32_t>{' ', 'a', 'b', 'k', 'q', 'w', 'x', 'y', 'z', 256}));
  EXPECT_EQ(all.summary["documents"], 2);
  EXPECT_EQ(all.summary["examples"], 2);
  EXPECT_EQ(all.summary["tokens"], 8 + 3 + 2 + 1 + 1 + 2);
  EXPECT_EQ(all.summary["unk_tokens"], 0);

  // min_count 2: ' ', q, x, y, z (seen once) become unknown; w is seen twice (in text_b).
  s.min_count = 2;
  VocabBuild frequent = build_vocab_map(s, base);
  EXPECT_EQ(frequent.map.base_ids(), (std::vector<int32_t>{'a', 'b', 'k', 'w', 256}));
  EXPECT_EQ(frequent.summary["distinct_ids"], 9);
  EXPECT_EQ(frequent.summary["unk_tokens"], 5);

  // A validation document of the token cache's split is not counted.
  s.min_count = 1;
  s.custom_files.clear();
  s.val_fraction = 0.5;
  const bool d1_val = is_validation_document(d1, 0.5, 0), d2_val = is_validation_document(d2, 0.5, 0);
  VocabBuild split = build_vocab_map(s, base);
  EXPECT_EQ(split.summary["documents"], int(!d1_val) + int(!d2_val));
  const auto& kept = split.map.base_ids();
  EXPECT_EQ(std::count(kept.begin(), kept.end(), int32_t('x')), d2_val ? 0 : 1);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), int32_t('a')), d1_val ? 0 : 1);

  EXPECT_NE(error_of([&] { build_vocab_map(VocabSources{}, base); }).find("at least one corpus or task"),
            std::string::npos);
}

TEST(VocabMap, ModelFolderTokenizerAppliesTheFolderMapOrRefusesWithoutIt) {
  MCD_GPT2_OR_SKIP(gpt2);
  mcd::test::TempDir tmp;
  const std::string text = "The cat sat on the mat.";
  const VocabMap m = VocabMap::from_base_ids(gpt2.encode(text), gpt2);
  const int64_t k = m.size();
  // A restricted model folder: its map applies, encode gives local ids, decode gives the text back.
  fs::make_dirs(tmp.file("model"));
  m.save(tmp.file("model/vocab_map.json"));
  const BpeTokenizer tok = tokenizer_for_model(tmp.file("model"), (k + 7) / 8 * 8);
  EXPECT_EQ(int64_t(tok.vocab_size()), k);
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_EQ(tok.eot_id(), k - 2);
  // Without its map the same model is refused, naming the file to restore.
  fs::make_dirs(tmp.file("copy"));
  EXPECT_NE(error_of([&] { tokenizer_for_model(tmp.file("copy"), (k + 7) / 8 * 8); }).find("vocab_map.json"),
            std::string::npos);
  // A GPT-2-sized model without a map gets GPT-2 itself.
  EXPECT_EQ(tokenizer_for_model(tmp.file("copy"), 50257).fingerprint(), gpt2.fingerprint());
  // copy_tokenizer_files carries the map to a derived folder, and removes a stale one when there is none.
  copy_tokenizer_files(tmp.file("model"), tmp.file("copy"));
  EXPECT_EQ(VocabMap::load(tmp.file("copy/vocab_map.json")).fingerprint(), m.fingerprint());
  copy_tokenizer_files(tmp.file("nothing"), tmp.file("copy"));
  EXPECT_FALSE(fs::exists(tmp.file("copy/vocab_map.json")));
}

// A folder's tokenizer.json is its base tokenizer (HF checkpoints ship one: state-spaces/mamba-*-hf carry
// GPT-NeoX's): encoding uses it, not GPT-2; its map applies on top; a map over another base, or a model
// with fewer ids than the file, is refused; copy_tokenizer_files carries it to a derived folder. Needs no
// GPT-2 assets: the byte tokenizer's ids (bytes, 256 = <|endoftext|>, 257 = "th") differ from GPT-2's.
TEST(VocabMap, ModelFolderTokenizerIsItsTokenizerJsonWhenItHasOne) {
  mcd::test::TempDir tmp;
  const BpeTokenizer own = byte_tokenizer(tmp.path, /*with_merge=*/true);
  fs::make_dirs(tmp.file("model"));
  write_file(tmp.file("model/tokenizer.json"), read_file(tmp.file("tok_merge.json")));
  const BpeTokenizer tok = tokenizer_for_model(tmp.file("model"), 264);
  EXPECT_EQ(tok.fingerprint(), own.fingerprint());
  EXPECT_EQ(model_base_tokenizer(tmp.file("model")).fingerprint(), own.fingerprint());
  EXPECT_EQ(tok.encode("the"), (std::vector<int32_t>{257, 'e'}));  // GPT-2: {1169}
  EXPECT_EQ(tok.eot_id(), 256);
  // A model with fewer ids than the file is refused, naming the tokenizer.json.
  const std::string small = error_of([&] { tokenizer_for_model(tmp.file("model"), 200); });
  EXPECT_NE(small.find("fewer than the tokenizer's 258"), std::string::npos) << small;
  EXPECT_NE(small.find(tmp.file("model/tokenizer.json")), std::string::npos) << small;
  EXPECT_NE(small.find("the folder's tokenizer.json does not belong to this model"), std::string::npos) << small;
  // A map built over this tokenizer restricts it; one built over another base (the merge-less byte
  // tokenizer, another fingerprint) is refused rather than applied to the wrong ids.
  const VocabMap over_own = VocabMap::from_base_ids(own.encode("the cat"), own);
  over_own.save(tmp.file("model/vocab_map.json"));
  const BpeTokenizer restricted = tokenizer_for_model(tmp.file("model"), 264);
  EXPECT_EQ(int64_t(restricted.vocab_size()), over_own.size());
  EXPECT_EQ(restricted.decode(restricted.encode("the cat")), "the cat");
  const BpeTokenizer plain = byte_tokenizer(tmp.path, /*with_merge=*/false);
  VocabMap::from_base_ids(plain.encode("the cat"), plain).save(tmp.file("model/vocab_map.json"));
  const std::string other = error_of([&] { tokenizer_for_model(tmp.file("model"), 264); });
  EXPECT_NE(other.find("built over another tokenizer"), std::string::npos) << other;
  // copy_tokenizer_files carries both files, and removes the stale ones of a folder that has none.
  over_own.save(tmp.file("model/vocab_map.json"));
  copy_tokenizer_files(tmp.file("model"), tmp.file("derived"));
  EXPECT_EQ(read_file(tmp.file("derived/tokenizer.json")), read_file(tmp.file("model/tokenizer.json")));
  EXPECT_EQ(VocabMap::load(tmp.file("derived/vocab_map.json")).fingerprint(), over_own.fingerprint());
  EXPECT_EQ(tokenizer_for_model(tmp.file("derived"), 264).fingerprint(), restricted.fingerprint());
  copy_tokenizer_files(tmp.file("nothing"), tmp.file("derived"));
  EXPECT_FALSE(fs::exists(tmp.file("derived/tokenizer.json")));
  EXPECT_FALSE(fs::exists(tmp.file("derived/vocab_map.json")));
}

// A mamba-ssm checkpoint ships no tokenizer and its models use GPT-NeoX-20B's: without the folder's
// tokenizer.json it is refused, not given GPT-2; with one, that file is its tokenizer.
TEST(VocabMap, MambaSsmCheckpointNeedsItsTokenizerJson) {
  mcd::test::TempDir tmp;
  const BpeTokenizer own = byte_tokenizer(tmp.path, /*with_merge=*/true);
  fs::make_dirs(tmp.file("model"));
  write_file(tmp.file("model/config.json"), R"({"d_model": 768, "n_layer": 24, "vocab_size": 50277, "ssm_cfg": {}})");
  const std::string refused = error_of([&] { tokenizer_for_model(tmp.file("model"), 50280); });
  EXPECT_NE(refused.find("a mamba-ssm checkpoint, which ships no tokenizer"), std::string::npos) << refused;
  EXPECT_NE(refused.find(tmp.file("model")), std::string::npos) << refused;
  write_file(tmp.file("model/tokenizer.json"), read_file(tmp.file("tok_merge.json")));
  EXPECT_EQ(tokenizer_for_model(tmp.file("model"), 50280).fingerprint(), own.fingerprint());
  // A Hugging Face config.json without a tokenizer.json still means GPT-2 (this project's own models).
  std::string why;
  const BpeTokenizer* gpt2 = test::gpt2_or_null(why);
  if (!gpt2) GTEST_SKIP() << "the rest needs GPT-2's vocabulary: " << why;
  fs::remove_file(tmp.file("model/tokenizer.json"));
  write_file(tmp.file("model/config.json"), R"({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 50280})");
  EXPECT_EQ(tokenizer_for_model(tmp.file("model"), 50280).fingerprint(), gpt2->fingerprint());
}

}  // namespace
}  // namespace mcd::data
