// A restricted vocabulary: the ids of a base tokenizer (GPT-2) that a model's data uses, renumbered
// 0..K-1, plus one unknown id for every other base id. A small model's embedding and tied LM head
// are then K rows wide instead of 50,257 (on CPU the head dominates a tiny model's time).
// docs/tokenizer.md, "Restricted vocabularies".
//
// Local ids: base_ids()[i] ↔ i for i < K-1 (kept ids in ascending base order, so
// <|endoftext|> — always kept — comes last among them), and K-1 = unk_id() for any other base id.
// Decoding unk_id() gives U+FFFD. A model folder trained with a map holds it as vocab_map.json;
// tokenizer_for_model() applies it, so every command that tokenizes for the model uses the same
// map, and a restricted model's folder without its map is refused rather than fed wrong ids.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mcd::data {

class BpeTokenizer;

class VocabMap {
 public:
  static constexpr const char* kFileName = "vocab_map.json";

  // Keeps `base_ids` (any order, duplicates ignored) and the base's <|endoftext|>; every id must
  // be in [0, base_vocab_size).
  static VocabMap from_base_ids(std::vector<int32_t> base_ids, const BpeTokenizer& base);
  // Reads a file written by save(); any malformed key is an mcd::Error naming the file and key.
  static VocabMap load(const std::string& path);
  // Writes the map (atomically) with `info` (e.g. where the ids came from) stored beside it.
  void save(const std::string& path, const nlohmann::json& info = nlohmann::json::object()) const;

  int32_t to_local(int32_t base_id) const {  // unk_id() for a base id outside the map
    return base_id >= 0 && size_t(base_id) < local_of_.size() ? local_of_[size_t(base_id)] : unk_id();
  }
  int32_t to_base(int32_t local_id) const;  // -1 for unk_id(); throws for an id outside [0, size())
  int32_t size() const { return int32_t(base_ids_.size()) + 1; }  // K, unk included
  int32_t unk_id() const { return int32_t(base_ids_.size()); }
  int32_t eot_id() const { return eot_local_; }
  const std::vector<int32_t>& base_ids() const { return base_ids_; }
  uint64_t base_fingerprint() const { return base_fingerprint_; }
  int64_t base_vocab_size() const { return int64_t(local_of_.size()); }
  // First 64 bits of a sha256 over the base fingerprint and the kept ids: equal fingerprints mean
  // equal local ids for every text. A token cache keys on it (through BpeTokenizer::fingerprint).
  uint64_t fingerprint() const { return fingerprint_; }
  const nlohmann::json& info() const { return info_; }

 private:
  VocabMap() = default;
  void index(int32_t base_eot, const std::string& where);

  std::vector<int32_t> base_ids_;  // sorted, distinct
  std::vector<int32_t> local_of_;  // [base_vocab_size]: local id or unk
  uint64_t base_fingerprint_ = 0, fingerprint_ = 0;
  int32_t eot_local_ = -1;
  nlohmann::json info_ = nlohmann::json::object();
};

// The file name of a model folder's own tokenizer: a Hugging Face tokenizer.json (BPE + ByteLevel,
// BpeTokenizer::from_hf_tokenizer_json), as HF checkpoints ship it — state-spaces/mamba-*-hf carry
// GPT-NeoX's, not GPT-2's.
inline constexpr const char* kModelTokenizerFileName = "tokenizer.json";

// The base tokenizer of a model folder, before any restriction: `<model_dir>/tokenizer.json` when
// the folder has one, else GPT-2 (BpeTokenizer::load_default) — except for a mamba-ssm checkpoint
// (mamba-ssm's config.json), which is refused without its tokenizer.json.
BpeTokenizer model_base_tokenizer(const std::string& model_dir);

// The tokenizer of a model folder: model_base_tokenizer(model_dir), restricted by
// `<model_dir>/vocab_map.json` when the folder has one. `model_vocab` is the number of ids the
// model accepts (ModelConfig::real_vocab_size). Refuses a tokenizer with more ids than that — a
// restricted model whose map is missing, or a map or tokenizer.json that does not belong to the model.
BpeTokenizer tokenizer_for_model(const std::string& model_dir, int64_t model_vocab);

// Makes `to_dir`'s tokenizer files (vocab_map.json, tokenizer.json) copies of `from_dir`'s, and removes
// each one `from_dir` lacks (commands that write a model derived from another keep its tokenizer with it).
void copy_tokenizer_files(const std::string& from_dir, const std::string& to_dir);

}  // namespace mcd::data
