// TokenCache: a corpus (data/corpus.h) tokenized once, in parallel, into flat uint16 token files
// (train.bin, val.bin) plus a JSON sidecar (meta.json), then read back by memory map. The
// trainer samples windows from train()/val() with data/batch.h. Torch-free.
//
// Layout of `cache_dir` (one corpus per directory):
//   train.bin, val.bin  uint16 little-endian ids; each document's tokens followed by
//                       <|endoftext|> (documents in corpus order, each in exactly one file)
//   meta.json           "format_version", "inputs" (what the cache was built from: tokenizer
//                       fingerprint / vocab size / eot id, corpus format, every source file with
//                       size and mtime_ns, split rule + val_fraction + seed, max_documents),
//                       "train"/"val" (file, tokens, documents, bytes, checksum = hash_bytes of
//                       the file as hex64), and "info" (not compared: per-file formats, threads,
//                       build seconds).
// Split: a document goes to validation iff hash_bytes(document bytes, split_seed) / 2^64 <
//   val_fraction ("content-hash-v1"). It depends only on the document's content and the seed,
//   so adding files does not move other documents, and duplicate documents stay on one side.
// open_or_build():
//   - no meta.json, a different format_version, or different inputs -> rebuild, logging one line
//     that says why (e.g. "source file ... changed size 10 -> 12");
//   - a meta.json that is not valid JSON of the expected shape, or (inputs matching) a missing or
//     truncated token file or a checksum mismatch -> mcd::Error naming the file, because a silent
//     rebuild would hide a disk problem; with rebuild_if_invalid = true it logs and rebuilds.
// Writing: meta.json is removed first, then each token file is written to a temp file, fsynced
// and renamed (util/atomic_file), then meta.json likewise; a crash leaves no sidecar, so the
// next run rebuilds. Output is identical for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "data/corpus.h"
#include "data/token_span.h"
#include "util/mapped_file.h"

namespace mcd::data {

class BpeTokenizer;

constexpr int kTokenCacheFormatVersion = 1;

struct TokenCacheOptions {
  std::string cache_dir;        // created if missing
  double val_fraction = 0.005;  // in [0, 1]
  uint64_t split_seed = 0;
  int threads = 0;                  // tokenizer workers; 0 = hardware concurrency
  int64_t max_documents = -1;       // use only the first N documents of the corpus; -1 = all
  bool rebuild_if_invalid = false;  // rebuild (not throw) on a truncated/corrupt cache
  bool verify_checksum = true;      // hash the token files on open (several GB/s)
  // Receives one line per event (rebuild and why, build summary); null = stderr.
  std::function<void(const std::string&)> log;
};

class TokenCache {
 public:
  // Opens the cache in options.cache_dir if it was built from exactly these inputs, else
  // (re)builds it first. See the header comment for what is an error and what rebuilds.
  static TokenCache open_or_build(const CorpusSpec& spec, const BpeTokenizer& tokenizer,
                                  const TokenCacheOptions& options);
  // Opens an existing cache without checking its inputs (e.g. evaluation on another machine).
  static TokenCache open(const std::string& cache_dir, bool verify_checksum = true);

  TokenCache() = default;
  TokenCache(TokenCache&&) = default;
  TokenCache& operator=(TokenCache&&) = default;

  TokenSpan train() const { return span_of(train_); }
  TokenSpan val() const { return span_of(val_); }
  const nlohmann::json& meta() const { return meta_; }
  const std::string& dir() const { return dir_; }
  // Why open_or_build rebuilt ("no cache in ...", "source file ... changed ..."); empty when
  // an existing cache was used as is.
  const std::string& rebuild_reason() const { return rebuild_reason_; }

 private:
  static TokenSpan span_of(const MappedFile& f) {
    return TokenSpan{reinterpret_cast<const uint16_t*>(f.data()), int64_t(f.size() / 2)};
  }
  static TokenCache open_checked(const std::string& dir, nlohmann::json meta, bool verify_checksum);

  std::string dir_;
  MappedFile train_, val_;  // uint16 ids, page-aligned
  nlohmann::json meta_;
  std::string rebuild_reason_;
};

// The split rule above, exposed for tests and tools: true if `document` goes to validation.
bool is_validation_document(std::string_view document, double val_fraction, uint64_t split_seed);

}  // namespace mcd::data
