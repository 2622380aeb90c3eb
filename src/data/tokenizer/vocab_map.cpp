// VocabMap (vocab_map.h): building, the vocab_map.json file, and the model folder's tokenizer.
#include "data/tokenizer/vocab_map.h"

#include <algorithm>

#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/sha256.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json_file.h"

namespace mcd::data {
namespace {

constexpr const char* kFormat = "mcd-vocab-map";
constexpr int kVersion = 1;

std::string hex16(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

uint64_t parse_hex16(const std::string& s, const std::string& where) {
  MCD_CHECK(s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string::npos, where,
            " must be 16 lower-case hex digits, got '", s, "'");
  return std::stoull(s, nullptr, 16);
}

}  // namespace

void VocabMap::index(int32_t base_eot, const std::string& where) {
  std::sort(base_ids_.begin(), base_ids_.end());
  base_ids_.erase(std::unique(base_ids_.begin(), base_ids_.end()), base_ids_.end());
  const int64_t base_vocab = int64_t(local_of_.size());
  for (const int32_t id : base_ids_)
    MCD_CHECK(id >= 0 && id < base_vocab, where, ": id ", id, " is outside the base vocabulary [0, ", base_vocab, ")");
  MCD_CHECK(base_ids_.size() + 1 <= 65536, where, ": ", base_ids_.size(),
            " kept ids do not fit the token cache's uint16 ids");
  std::fill(local_of_.begin(), local_of_.end(), unk_id());
  for (size_t i = 0; i < base_ids_.size(); ++i) local_of_[size_t(base_ids_[i])] = int32_t(i);
  MCD_CHECK(base_eot >= 0 && base_eot < base_vocab && local_of_[size_t(base_eot)] != unk_id(), where,
            ": the end-of-text id ", base_eot, " must be kept");
  eot_local_ = local_of_[size_t(base_eot)];
  Sha256 h;
  h.update(std::string_view("mcd-vocab-map-v1"));
  const uint64_t head[3] = {base_fingerprint_, uint64_t(base_vocab), uint64_t(base_ids_.size())};
  h.update(head, sizeof head);
  h.update(base_ids_.data(), base_ids_.size() * sizeof(int32_t));
  const Sha256::Digest d = h.finish();
  fingerprint_ = 0;
  for (int i = 0; i < 8; ++i) fingerprint_ = (fingerprint_ << 8) | d[size_t(i)];
}

VocabMap VocabMap::from_base_ids(std::vector<int32_t> base_ids, const BpeTokenizer& base) {
  MCD_CHECK(base.vocab_map() == nullptr, "a vocabulary map is built over an unrestricted tokenizer (",
            base.source(), ")");
  MCD_CHECK(base.eot_id() >= 0, "a vocabulary map needs a tokenizer with <|endoftext|> (", base.source(), ")");
  VocabMap m;
  m.base_ids_ = std::move(base_ids);
  m.base_ids_.push_back(base.eot_id());
  m.local_of_.resize(base.vocab_size());
  m.base_fingerprint_ = base.fingerprint();
  m.index(base.eot_id(), "vocabulary map");
  return m;
}

VocabMap VocabMap::load(const std::string& path) {
  const nlohmann::json j = read_json_file(path);
  auto need = [&](const char* key) -> const nlohmann::json& {
    MCD_CHECK(j.is_object() && j.contains(key), path, ": missing key '", key, "' (not a vocab_map.json?)");
    return j.at(key);
  };
  MCD_CHECK(need("format") == kFormat, path, ": 'format' must be \"", kFormat, "\"");
  MCD_CHECK(need("version") == kVersion, path, ": 'version' ", need("version").dump(), " is not supported (", kVersion,
            ")");
  const auto& base = need("base");
  MCD_CHECK(base.is_object() && base.contains("fingerprint") && base["fingerprint"].is_string() &&
                base.contains("vocab_size") && base["vocab_size"].is_number_integer() && base.contains("eot_id") &&
                base["eot_id"].is_number_integer(),
            path, ": 'base' must hold 'fingerprint' (hex), 'vocab_size' and 'eot_id' (integers)");
  const int64_t base_vocab = base["vocab_size"].get<int64_t>();
  MCD_CHECK(base_vocab > 0 && base_vocab <= (int64_t(1) << 24), path, ": 'base.vocab_size' ", base_vocab,
            " is out of range");
  VocabMap m;
  m.base_fingerprint_ = parse_hex16(base["fingerprint"].get<std::string>(), path + ": 'base.fingerprint'");
  m.local_of_.resize(size_t(base_vocab));
  const auto& ids = need("base_ids");
  MCD_CHECK(ids.is_array(), path, ": 'base_ids' must be a list of integers");
  for (const auto& v : ids) {
    MCD_CHECK(v.is_number_integer(), path, ": 'base_ids' must be a list of integers, found ", v.dump());
    m.base_ids_.push_back(v.get<int32_t>());
  }
  const size_t listed = m.base_ids_.size();
  m.index(base["eot_id"].get<int32_t>(), path + ": 'base_ids'");
  MCD_CHECK(m.base_ids_.size() == listed, path, ": 'base_ids' lists an id twice");
  MCD_CHECK(need("size") == m.size(), path, ": 'size' ", need("size").dump(), " does not match the ", m.size(),
            " ids the list gives (kept ids + unk)");
  MCD_CHECK(need("fingerprint") == hex16(m.fingerprint_), path, ": 'fingerprint' does not match its ids (edited?)");
  if (j.contains("info")) m.info_ = j["info"];
  return m;
}

void VocabMap::save(const std::string& path, const nlohmann::json& info) const {
  nlohmann::json j = {{"format", kFormat},
                      {"version", kVersion},
                      {"size", size()},
                      {"unk_id", unk_id()},
                      {"eot_id", eot_id()},
                      {"fingerprint", hex16(fingerprint_)},
                      {"base",
                       {{"fingerprint", hex16(base_fingerprint_)},
                        {"vocab_size", base_vocab_size()},
                        {"eot_id", base_ids_[size_t(eot_local_)]}}},
                      {"info", info.is_null() ? info_ : info},
                      {"base_ids", base_ids_}};
  write_text_atomic(path, j.dump() + "\n");
}

int32_t VocabMap::to_base(int32_t local_id) const {
  MCD_CHECK(local_id >= 0 && local_id < size(), "token id ", local_id, " is outside the restricted vocabulary (",
            size(), " ids)");
  return local_id == unk_id() ? -1 : base_ids_[size_t(local_id)];
}

BpeTokenizer model_base_tokenizer(const std::string& model_dir) {
  const std::string file = fs::join(model_dir, kModelTokenizerFileName);
  if (fs::exists(file)) return BpeTokenizer::from_hf_tokenizer_json(file);
  // A mamba-ssm checkpoint (its own config.json: d_model and n_layer, no hidden_size — the test
  // ModelConfig::is_mamba_ssm_json makes) ships no tokenizer, and its models were trained with
  // GPT-NeoX-20B's, not GPT-2's: encoding with GPT-2 would be silently wrong.
  const std::string config = fs::join(model_dir, "config.json");
  if (fs::exists(config)) {
    const nlohmann::json j = read_json_file(config);
    MCD_CHECK(!(j.is_object() && !j.contains("hidden_size") && j.contains("d_model") && j.contains("n_layer")),
              model_dir, ": a mamba-ssm checkpoint, which ships no tokenizer (its models use GPT-NeoX-20B's); put that "
              "tokenizer's ", kModelTokenizerFileName, " (from EleutherAI/gpt-neox-20b, or any state-spaces/mamba-*-hf "
              "folder) into the folder");
  }
  return BpeTokenizer::load_default();
}

BpeTokenizer tokenizer_for_model(const std::string& model_dir, int64_t model_vocab) {
  BpeTokenizer tok = model_base_tokenizer(model_dir);
  const std::string file = fs::join(model_dir, VocabMap::kFileName);
  if (fs::exists(file)) tok = tok.restricted(VocabMap::load(file), file);
  MCD_CHECK(int64_t(tok.vocab_size()) <= model_vocab, "model ", model_dir, " takes ", model_vocab,
            " token ids, fewer than the tokenizer's ", tok.vocab_size(), " (", tok.source(), ")",
            tok.vocab_map() ? std::string("; its vocab_map.json does not belong to it")
            : fs::exists(fs::join(model_dir, kModelTokenizerFileName))  // (the message is formed only on failure)
                ? std::string("; the folder's tokenizer.json does not belong to this model")
                : std::string("; a model trained with a restricted vocabulary needs its ") + VocabMap::kFileName +
                      " in the folder (copy it from the model it came from)");
  return tok;
}

void copy_tokenizer_files(const std::string& from_dir, const std::string& to_dir) {
  for (const char* name : {VocabMap::kFileName, kModelTokenizerFileName}) {
    const std::string from = fs::join(from_dir, name), to = fs::join(to_dir, name);
    if (!fs::exists(from)) {
      fs::remove_file(to);
      continue;
    }
    const std::string text = fs::read_file(from);
    fs::make_dirs(to_dir);
    write_text_atomic(to, text);
  }
}

}  // namespace mcd::data
