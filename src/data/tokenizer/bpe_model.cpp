// Builds the indexes of bpe_model.h (id -> bytes, byte -> id, pair -> merge) and runs the
// merge loop: a rescanning array for ordinary words, a heap over a linked list for long pieces
// (a megabyte of letters without a space must not take quadratic time).
#include "data/tokenizer/bpe_model.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <queue>
#include <unordered_set>

#include "data/tokenizer/sha256.h"
#include "util/error.h"

namespace mcd::data {
namespace {

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

std::atomic<uint64_t> g_next_serial{1};

void put_u64(Sha256& h, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
  h.update(b, 8);
}

void put_bytes(Sha256& h, std::string_view s) {
  put_u64(h, s.size());
  h.update(s);
}

}  // namespace

void PairMap::reserve(size_t count) {
  size_t capacity = 16;
  while (capacity < count * 2) capacity <<= 1;  // load factor <= 0.5 keeps probes short
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, 0);
  mask_ = capacity - 1;
  shift_ = 64;
  for (size_t c = capacity; c > 1; c >>= 1) --shift_;
}

void PairMap::insert(uint64_t key, uint64_t value) {
  size_t i = slot(key);
  while (keys_[i] != kEmpty) {
    if (keys_[i] == key) return;
    i = (i + 1) & mask_;
  }
  keys_[i] = key;
  values_[i] = value;
}

BpeModel::BpeModel(BpeSpec spec)
    : source_(std::move(spec.source)),
      added_(std::move(spec.added)),
      ignore_merges_(spec.ignore_merges),
      add_prefix_space_(spec.add_prefix_space),
      serial_(g_next_serial.fetch_add(1)) {
  // Ids: an id listed as an added token is that token, even if the vocabulary also lists it.
  std::unordered_set<int32_t> added_ids;
  int64_t max_id = -1;
  for (const auto& a : added_) {
    MCD_CHECK(a.id >= 0, source_, ": added token '", a.content, "' has negative id ", a.id);
    MCD_CHECK(!a.content.empty(), source_, ": added token with id ", a.id, " is empty");
    MCD_CHECK(added_ids.insert(a.id).second, source_, ": id ", a.id, " is two added tokens");
    max_id = std::max<int64_t>(max_id, a.id);
  }
  for (const auto* list : {&spec.vocab, &spec.opaque}) {
    for (const auto& [bytes, id] : *list) {
      MCD_CHECK(id >= 0, source_, ": token has negative id ", id);
      max_id = std::max<int64_t>(max_id, id);
    }
  }
  MCD_CHECK(max_id < (int64_t(1) << 30), source_, ": token id ", max_id, " is too large");
  token_bytes_.assign(size_t(max_id + 1), std::string());
  present_.assign(size_t(max_id + 1), 0);

  auto assign = [&](int32_t id, const std::string& bytes) {
    MCD_CHECK(!present_[size_t(id)], source_, ": id ", id, " is assigned twice");
    present_[size_t(id)] = 1;
    token_bytes_[size_t(id)] = bytes;
  };
  for (const auto& a : added_) assign(a.id, a.content);
  bpe_ids_.reserve(spec.vocab.size());
  for (const auto& [bytes, id] : spec.vocab) {
    if (added_ids.count(id)) continue;
    MCD_CHECK(!bytes.empty(), source_, ": token ", id, " is empty");
    assign(id, bytes);
    bpe_ids_.emplace(bytes, id);  // on a duplicate byte string the first id is kept
  }
  for (const auto& [bytes, id] : spec.opaque) {
    if (!added_ids.count(id)) assign(id, bytes);
  }

  for (int b = 0; b < 256; ++b) {
    auto it = bpe_ids_.find(std::string(1, char(b)));
    MCD_CHECK(it != bpe_ids_.end(), source_, ": no token for the single byte 0x", std::hex, b,
              " (a byte-level vocabulary needs all 256)");
    byte_token_[size_t(b)] = it->second;
  }

  merges_.reserve(spec.merges.size());
  std::vector<std::pair<int32_t, int32_t>> merge_ids;
  merge_ids.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    // Named references, not a structured binding: C++17 lets no lambda capture a binding (GCC allows it, Clang refuses).
    const std::string& left = spec.merges[rank].first;
    const std::string& right = spec.merges[rank].second;
    auto find = [&](const std::string& bytes, const char* what) {
      auto it = bpe_ids_.find(bytes);
      MCD_CHECK(it != bpe_ids_.end(), source_, ": merge #", rank, " ('", left, "' + '", right,
                "'): its ", what, " is not in the vocabulary");
      return it->second;
    };
    const int32_t l = find(left, "left part");
    const int32_t r = find(right, "right part");
    const int32_t merged = find(left + right, "result");
    merges_.insert(PairMap::key(l, r), (uint64_t(rank) << 32) | uint32_t(merged));
    merge_ids.emplace_back(l, r);
  }

  // Fingerprint: everything that changes ids, in a canonical form that does not depend on the
  // file format, so a tokenizer.json converted from the GPT-2 files fingerprints the same.
  Sha256 h;
  h.update(std::string_view("mcd-bpe-v1"));
  put_u64(h, token_bytes_.size());
  for (size_t id = 0; id < token_bytes_.size(); ++id) {
    const bool is_added = added_ids.count(int32_t(id)) > 0;
    const bool is_bpe = !is_added && present_[id] && bpe_ids_.count(token_bytes_[id]) &&
                        bpe_ids_.at(token_bytes_[id]) == int32_t(id);
    put_u64(h, present_[id] ? (is_added ? 2 : (is_bpe ? 1 : 3)) : 0);
    put_bytes(h, token_bytes_[id]);
  }
  put_u64(h, merge_ids.size());
  for (const auto& [l, r] : merge_ids) put_u64(h, PairMap::key(l, r));
  std::vector<AddedToken> sorted_added = added_;
  std::sort(sorted_added.begin(), sorted_added.end(),
            [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  for (const auto& a : sorted_added) {
    put_u64(h, uint64_t(a.id));
    put_u64(h, (a.special ? 1 : 0) | (a.lstrip ? 2 : 0) | (a.rstrip ? 4 : 0));
  }
  put_u64(h, (ignore_merges_ ? 1 : 0) | (add_prefix_space_ ? 2 : 0));
  const Sha256::Digest d = h.finish();
  for (int i = 0; i < 8; ++i) fingerprint_ = (fingerprint_ << 8) | d[size_t(i)];
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_token_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (ignore_merges_) {
    auto it = bpe_ids_.find(std::string(piece));
    if (it != bpe_ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (piece.size() <= kShortPieceLimit) {
    encode_piece_short(piece, out);
  } else {
    encode_piece_long(piece, out);
  }
}

void BpeModel::encode_piece_short(std::string_view piece, std::vector<int32_t>& out) const {
  const size_t n = piece.size();
  MCD_CHECK(n >= 1 && n <= kShortPieceLimit, "encode_piece_short: bad length ", n);
  int32_t ids[kShortPieceLimit];
  uint32_t ranks[kShortPieceLimit];   // ranks[i]: merge rank of (ids[i], ids[i+1])
  int32_t merged[kShortPieceLimit];  // merged[i]: the id that pair would become
  for (size_t i = 0; i < n; ++i) ids[i] = byte_token_[static_cast<unsigned char>(piece[i])];
  auto rate = [&](size_t i) {
    uint64_t v;
    if (merges_.find(PairMap::key(ids[i], ids[i + 1]), v)) {
      ranks[i] = uint32_t(v >> 32);
      merged[i] = int32_t(uint32_t(v));
    } else {
      ranks[i] = kNoRank;
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) rate(i);
  size_t m = n;
  while (m > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == kNoRank) break;
    ids[best] = merged[best];
    for (size_t i = best + 1; i + 1 < m; ++i) {
      ids[i] = ids[i + 1];
      ranks[i] = ranks[i + 1];
      merged[i] = merged[i + 1];
    }
    --m;
    if (best > 0) rate(best - 1);
    if (best + 1 < m) rate(best);
  }
  out.insert(out.end(), ids, ids + m);
}

void BpeModel::encode_piece_long(std::string_view piece, std::vector<int32_t>& out) const {
  const size_t n = piece.size();
  // Symbols live at their first byte's offset; next/prev link the live ones.
  std::vector<int32_t> ids(n);
  std::vector<uint32_t> next(n), prev(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = byte_token_[static_cast<unsigned char>(piece[i])];
    next[i] = uint32_t(i + 1);
    prev[i] = uint32_t(i) - 1;  // wraps for i == 0; never read there
  }
  struct Candidate {
    uint32_t rank;
    uint32_t left;  // offset of the left symbol: the leftmost of equal ranks wins
    int32_t left_id, right_id, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto offer = [&](uint32_t left) {
    const uint32_t right = next[left];
    if (right >= n) return;
    uint64_t v;
    if (merges_.find(PairMap::key(ids[left], ids[right]), v)) {
      heap.push({uint32_t(v >> 32), left, ids[left], ids[right], int32_t(uint32_t(v))});
    }
  };
  for (uint32_t i = 0; i + 1 < n; ++i) offer(i);
  std::vector<uint8_t> alive(n, 1);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // Stale when either side has merged since: a symbol's id fixes its length, so equal ids
    // on both sides mean the same two symbols are still adjacent.
    if (!alive[c.left] || ids[c.left] != c.left_id) continue;
    const uint32_t right = next[c.left];
    if (right >= n || ids[right] != c.right_id) continue;
    ids[c.left] = c.merged;
    alive[right] = 0;
    next[c.left] = next[right];
    if (next[right] < n) prev[next[right]] = c.left;
    if (c.left > 0) offer(prev[c.left]);
    offer(c.left);
  }
  for (uint32_t i = 0; i < n; i = next[i]) out.push_back(ids[i]);
}

}  // namespace mcd::data
