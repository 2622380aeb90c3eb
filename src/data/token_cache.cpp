// TokenCache (token_cache.h): building with a pool of tokenizer threads feeding an in-order
// writer, validating a sidecar against the current inputs, and opening token files by mmap.
// Corpus reading is data/corpus.cpp; atomic writes and maps are util/atomic_file, mapped_file.
#include "data/token_cache.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "data/hash64.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

// No std::filesystem here: see [Note: no std::filesystem] in docs/NOTES.md.
namespace mcd::data {
using nlohmann::json;

namespace {

constexpr const char* kMetaName = "meta.json";
constexpr const char* kSplitRule = "content-hash-v1";
constexpr const char* kSplitNames[2] = {"train", "val"};

bool host_is_little_endian() {
  const uint16_t one = 1;
  return *reinterpret_cast<const uint8_t*>(&one) == 1;
}

std::string join_path(const std::string& dir, const std::string& name) {
  return fs::join(dir, name);
}

json file_stamp(const std::string& path) {
  return json{
      {"path", path}, {"size", fs::file_size(path)}, {"mtime_ns", fs::modification_time_ns(path)}};
}

// Everything a cache depends on; two caches with equal inputs hold identical token files.
json make_inputs(const CorpusSpec& spec, const std::vector<std::string>& files,
                 const BpeTokenizer& tokenizer, const TokenCacheOptions& options) {
  json stamps = json::array();
  for (const std::string& f : files) stamps.push_back(file_stamp(f));
  return json{
      {"tokenizer",
       {{"fingerprint", hex64(tokenizer.fingerprint())},
        {"vocab_size", uint64_t(tokenizer.vocab_size())},
        {"eot_id", tokenizer.eot_id()}}},
      {"corpus_format", spec.format},
      {"files", stamps},
      {"split",
       {{"rule", kSplitRule},
        {"val_fraction", options.val_fraction},
        {"seed", options.split_seed}}},
      {"max_documents", options.max_documents},
  };
}

// One line saying how `old_in` (from the sidecar) differs from `new_in`.
std::string describe_change(const json& old_in, const json& new_in) {
  try {
    if (old_in.at("tokenizer") != new_in.at("tokenizer"))
      return cat("tokenizer changed: ", old_in.at("tokenizer").dump(), " -> ",
                 new_in.at("tokenizer").dump());
    if (old_in.at("corpus_format") != new_in.at("corpus_format"))
      return cat("corpus format changed: ", old_in.at("corpus_format").dump(), " -> ",
                 new_in.at("corpus_format").dump());
    if (old_in.at("split") != new_in.at("split"))
      return cat("split parameters changed: ", old_in.at("split").dump(), " -> ",
                 new_in.at("split").dump());
    if (old_in.at("max_documents") != new_in.at("max_documents"))
      return cat("max_documents changed: ", old_in.at("max_documents").dump(), " -> ",
                 new_in.at("max_documents").dump());
    std::map<std::string, json> old_files;
    for (const json& f : old_in.at("files")) old_files[f.at("path").get<std::string>()] = f;
    for (const json& f : new_in.at("files")) {
      const std::string path = f.at("path").get<std::string>();
      const auto it = old_files.find(path);
      if (it == old_files.end()) return cat("source file '", path, "' is new");
      if (it->second.at("size") != f.at("size"))
        return cat("source file '", path, "' changed size ", it->second.at("size").dump(), " -> ",
                   f.at("size").dump(), " bytes");
      if (it->second.at("mtime_ns") != f.at("mtime_ns"))
        return cat("source file '", path, "' was modified (mtime changed)");
      old_files.erase(it);
    }
    if (!old_files.empty())
      return cat("source file '", old_files.begin()->first, "' is no longer in the corpus");
    if (old_in.at("files") != new_in.at("files")) return "the order of the source files changed";
  } catch (const json::exception&) {
    // The sidecar's inputs have another shape (an older writer): the fallback below says so.
  }
  return "the inputs recorded in the sidecar differ from the current ones";
}

json read_meta(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MCD_CHECK(in, "cannot read token cache sidecar '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  json meta = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  MCD_CHECK(!meta.is_discarded() && meta.is_object(), "token cache sidecar '", path,
            "' is not a valid JSON object (corrupt?); delete it, or pass rebuild_if_invalid");
  MCD_CHECK(meta.contains("format_version") && meta["format_version"].is_number_integer() &&
                meta.contains("inputs"),
            "token cache sidecar '", path, "' lacks \"format_version\" or \"inputs\" (corrupt?)");
  return meta;
}

void log_line(const TokenCacheOptions& options, const std::string& line) {
  if (options.log) {
    options.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

struct SplitCounts {
  int64_t tokens = 0;
  int64_t documents = 0;
};

// One tokenized document waiting for the writer.
struct DocResult {
  std::vector<uint16_t> ids;  // [tokens + 1]: the document's ids, then <|endoftext|>
  bool val = false;
  bool ready = false;
};

// Tokenizes `docs` with `threads` workers and writes them in document order to `out[0]`
// (train) or `out[1]` (val). Workers take documents from a shared counter and may run at most
// `window` documents ahead of the writer, which bounds memory to a few documents per thread.
void tokenize_all(const std::vector<std::string_view>& docs, const BpeTokenizer& tokenizer,
                  int threads, const TokenCacheOptions& options, std::FILE* out[2],
                  SplitCounts counts[2]) {
  const int64_t n = int64_t(docs.size());
  const int64_t window = std::max<int64_t>(64, 16 * int64_t(threads));
  const uint16_t eot = uint16_t(tokenizer.eot_id());
  std::vector<DocResult> slots(static_cast<size_t>(window));  // slot i % window holds document i
  std::mutex mu;
  std::condition_variable work_cv, done_cv;
  int64_t next = 0, written = 0;
  bool stop = false;
  std::exception_ptr error;

  auto worker = [&] {
    std::vector<int32_t> ids;  // reused across documents
    for (;;) {
      int64_t i;
      {
        std::unique_lock<std::mutex> lock(mu);
        work_cv.wait(lock, [&] { return stop || next >= n || next < written + window; });
        if (stop || next >= n) return;
        i = next++;
      }
      DocResult r;
      try {
        ids.clear();
        tokenizer.encode_into(docs[size_t(i)], /*allow_special=*/false, ids);
        r.ids.resize(ids.size() + 1);
        for (size_t k = 0; k < ids.size(); ++k) r.ids[k] = uint16_t(ids[k]);  // vocab <= 65536
        r.ids.back() = eot;
        r.val = is_validation_document(docs[size_t(i)], options.val_fraction, options.split_seed);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        stop = true;
        done_cv.notify_all();
        work_cv.notify_all();
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        r.ready = true;
        slots[size_t(i % window)] = std::move(r);
      }
      done_cv.notify_all();
    }
  };

  std::vector<std::thread> pool;
  auto stop_and_join = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    work_cv.notify_all();
    for (std::thread& t : pool) t.join();
  };
  try {
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (int64_t i = 0; i < n; ++i) {
      DocResult r;
      {
        std::unique_lock<std::mutex> lock(mu);
        DocResult& slot = slots[size_t(i % window)];
        done_cv.wait(lock, [&] { return error || slot.ready; });
        if (error) break;
        r = std::move(slot);
        slot.ready = false;
        ++written;
      }
      work_cv.notify_all();
      const int s = r.val ? 1 : 0;
      write_bytes(out[s], r.ids.data(), r.ids.size() * sizeof(uint16_t));
      counts[s].tokens += int64_t(r.ids.size());
      counts[s].documents += 1;
    }
  } catch (...) {
    stop_and_join();
    throw;
  }
  stop_and_join();
  if (error) std::rethrow_exception(error);
}

void build(const std::string& dir, const CorpusSpec& spec, const std::vector<std::string>& files,
           const BpeTokenizer& tokenizer, const TokenCacheOptions& options, const json& inputs) {
  const auto t0 = std::chrono::steady_clock::now();
  MCD_CHECK(tokenizer.vocab_size() <= 65536, "token cache stores uint16 ids, but tokenizer ",
            tokenizer.source(), " has ", tokenizer.vocab_size(), " ids");
  MCD_CHECK(tokenizer.eot_id() >= 0, "tokenizer ", tokenizer.source(),
            " has no <|endoftext|> token to separate documents");

  // Map every file and collect the documents (views into the maps) in corpus order.
  std::vector<MappedFile> maps;
  std::vector<std::string_view> docs;
  json formats = json::array();
  uint64_t text_bytes = 0;
  const bool limited = options.max_documents >= 0;
  for (const std::string& path : files) {
    if (limited && int64_t(docs.size()) >= options.max_documents) break;
    maps.push_back(MappedFile::open(path));
    const std::string_view content(reinterpret_cast<const char*>(maps.back().data()),
                                   maps.back().size());
    const CorpusFormat format = resolve_format(spec, strip_bom(content));
    formats.push_back(corpus_format_name(format));
    split_documents(content, format, path, [&](const Document& doc) {
      if (limited && int64_t(docs.size()) >= options.max_documents) return;
      docs.push_back(doc.text);
      text_bytes += doc.text.size();
    });
  }

  MCD_CHECK(!docs.empty(), "the corpus (", files.size(), " files, first '", files.front(),
            "') has no non-blank documents");

  // No sidecar while the token files are being replaced: a crash now means "rebuild".
  fs::remove_file(join_path(dir, kMetaName));

  int threads = options.threads > 0 ? options.threads : int(std::thread::hardware_concurrency());
  threads = std::max(1, threads);
  SplitCounts counts[2];
  const std::string paths[2] = {join_path(dir, "train.bin"), join_path(dir, "val.bin")};
  write_file_atomic(paths[0], [&](std::FILE* train) {
    std::setvbuf(train, nullptr, _IOFBF, 1 << 20);
    write_file_atomic(paths[1], [&](std::FILE* val) {
      std::setvbuf(val, nullptr, _IOFBF, 1 << 20);
      std::FILE* out[2] = {train, val};
      tokenize_all(docs, tokenizer, threads, options, out, counts);
    });
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  json meta = {{"format_version", kTokenCacheFormatVersion}, {"inputs", inputs}};
  for (int s = 0; s < 2; ++s) {
    const MappedFile written = MappedFile::open(paths[s]);  // checksum what is on disk
    meta[kSplitNames[s]] = {
        {"file", fs::file_name(paths[s])},
        {"tokens", counts[s].tokens},
        {"documents", counts[s].documents},
        {"bytes", uint64_t(written.size())},
        {"checksum", hex64(hash_bytes(written.data(), written.size()))},
    };
  }
  meta["info"] = {
      {"dtype", "uint16"},
      {"byte_order", "little"},
      {"separator", "<|endoftext|> after every document"},
      {"file_formats", formats},
      {"tokenizer_source", tokenizer.source()},
      {"text_bytes", text_bytes},
      {"threads", threads},
      {"build_seconds", seconds},
  };
  write_text_atomic(join_path(dir, kMetaName), meta.dump(2) + "\n");
  const int64_t total = counts[0].tokens + counts[1].tokens;
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.2f s (%.1f MB/s of text)", seconds,
                text_bytes / 1e6 / std::max(seconds, 1e-9));
  log_line(options,
           cat("token cache ", dir, ": built ", total, " tokens from ", docs.size(),
               " documents in ", files.size(), " files on ", threads, " threads in ", rate,
               "; train ", counts[0].tokens, " tokens / ", counts[0].documents, " documents, val ",
               counts[1].tokens, " tokens / ", counts[1].documents, " documents"));
  if (counts[1].documents == 0 && options.val_fraction > 0)
    log_line(options, cat("token cache ", dir, ": warning: the validation split is empty"));
}

}  // namespace

bool is_validation_document(std::string_view document, double val_fraction, uint64_t split_seed) {
  const uint64_t h = hash_bytes(document.data(), document.size(), split_seed);
  return double(h >> 11) * 0x1.0p-53 < val_fraction;  // uniform in [0, 1) from the top 53 bits
}

TokenCache TokenCache::open_checked(const std::string& dir, json meta, bool verify_checksum) {
  MCD_CHECK(host_is_little_endian(), "token caches are little-endian; this host is not");
  const std::string meta_path = join_path(dir, kMetaName);
  TokenCache cache;
  cache.dir_ = dir;
  for (int s = 0; s < 2; ++s) {
    std::string name, checksum;
    uint64_t bytes = 0;
    int64_t tokens = 0;
    try {
      const json& entry = meta.at(kSplitNames[s]);
      name = entry.at("file").get<std::string>();
      bytes = entry.at("bytes").get<uint64_t>();
      tokens = entry.at("tokens").get<int64_t>();
      checksum = entry.at("checksum").get<std::string>();
    } catch (const json::exception& e) {
      fail(cat("token cache sidecar '", meta_path, "' is malformed (", e.what(), ")"));
    }
    MCD_CHECK(!name.empty() && name.find('/') == std::string::npos, "token cache sidecar '",
              meta_path, "' names an invalid token file \"", name, "\"");
    MCD_CHECK(bytes == uint64_t(tokens) * 2, "token cache sidecar '", meta_path,
              "' is inconsistent: ", tokens, " tokens in ", bytes, " bytes");
    const std::string path = join_path(dir, name);
    MCD_CHECK(fs::exists(path), "token file '", path, "' is missing (listed in '", meta_path,
              "'); delete the cache directory to rebuild it");
    MappedFile file = MappedFile::open(path);
    MCD_CHECK(file.size() == bytes, "token file '", path, "' has ", file.size(), " bytes but '",
              meta_path, "' records ", bytes,
              " (truncated or overwritten?); delete the cache directory to rebuild it");
    if (verify_checksum) {
      const uint64_t want =
          parse_hex64(checksum, cat(meta_path, ": ", kSplitNames[s], ".checksum"));
      const uint64_t got = hash_bytes(file.data(), file.size());
      MCD_CHECK(got == want, "token file '", path, "' fails its checksum (", hex64(got), ", '",
                meta_path, "' records ", hex64(want),
                "): the file is corrupt; delete the cache directory to rebuild it");
    }
    (s == 0 ? cache.train_ : cache.val_) = std::move(file);
  }
  cache.meta_ = std::move(meta);
  return cache;
}

TokenCache TokenCache::open(const std::string& cache_dir, bool verify_checksum) {
  const std::string meta_path = join_path(cache_dir, kMetaName);
  MCD_CHECK(fs::exists(meta_path), "no token cache in '", cache_dir, "' (", meta_path,
            " is missing)");
  json meta = read_meta(meta_path);
  MCD_CHECK(meta["format_version"].get<int>() == kTokenCacheFormatVersion, "token cache '",
            cache_dir, "' has format version ", meta["format_version"].dump(),
            "; this build reads version ", kTokenCacheFormatVersion, " (rebuild it)");
  return open_checked(cache_dir, std::move(meta), verify_checksum);
}

TokenCache TokenCache::open_or_build(const CorpusSpec& spec, const BpeTokenizer& tokenizer,
                                     const TokenCacheOptions& options) {
  MCD_CHECK(!options.cache_dir.empty(), "TokenCacheOptions.cache_dir is empty");
  MCD_CHECK(options.val_fraction >= 0 && options.val_fraction <= 1,
            "val_fraction must be in [0, 1], got ", options.val_fraction);
  const std::string dir = options.cache_dir;
  fs::make_dirs(dir);

  const std::vector<std::string> files = list_corpus_files(spec);
  const json inputs = make_inputs(spec, files, tokenizer, options);
  const std::string meta_path = join_path(dir, kMetaName);

  std::string reason;
  if (!fs::exists(meta_path)) {
    reason = cat("no cache in '", dir, "'");
  } else {
    try {
      json meta = read_meta(meta_path);
      if (meta["format_version"].get<int>() != kTokenCacheFormatVersion) {
        reason = cat("cache format version ", meta["format_version"].dump(), " -> ",
                     kTokenCacheFormatVersion);
      } else if (meta["inputs"] != inputs) {
        reason = describe_change(meta["inputs"], inputs);
      } else {
        return open_checked(dir, std::move(meta), options.verify_checksum);
      }
    } catch (const Error& e) {
      if (!options.rebuild_if_invalid) throw;
      reason = cat("the cache is invalid: ", e.what());
    }
  }
  log_line(options, cat("token cache ", dir, ": rebuilding: ", reason));
  build(dir, spec, files, tokenizer, options, inputs);
  TokenCache cache = open(dir, /*verify_checksum=*/false);  // just checksummed in build()
  cache.rebuild_reason_ = reason;
  return cache;
}

}  // namespace mcd::data
