// Token windows from a corpus (see token_windows.h).
#include "data/token_windows.h"

#include <algorithm>

#include "data/tokenizer/bpe_tokenizer.h"
#include "util/error.h"

namespace mcd::data {

TokenWindows read_token_windows(const CorpusSpec& spec, const BpeTokenizer& tokenizer, const WindowOptions& options) {
  MCD_CHECK(options.seq_len > 0, "token windows: seq_len must be > 0, got ", options.seq_len);
  MCD_CHECK(options.max_tokens == -1 || options.max_tokens > 0, "token windows: max_tokens must be > 0 or -1, got ",
            options.max_tokens);
  MCD_CHECK(options.per_document == -1 || options.per_document > 0,
            "token windows: per_document must be > 0 or -1, got ", options.per_document);
  // Whole windows covering max_tokens.
  const int64_t want = options.max_tokens < 0
                           ? -1
                           : (options.max_tokens + options.seq_len - 1) / options.seq_len * options.seq_len;
  TokenWindows out;
  out.seq_len = options.seq_len;
  std::vector<int32_t> doc;
  struct Done {};
  try {
    for_each_document(spec, [&](std::string_view text) {
      doc.clear();
      tokenizer.encode_into(text, /*allow_special=*/false, doc);
      if (options.per_document > 0 && int64_t(doc.size()) > options.per_document) doc.resize(size_t(options.per_document));
      doc.push_back(tokenizer.eot_id());
      ++out.documents;
      size_t take = doc.size();
      if (want >= 0) take = std::min<size_t>(take, size_t(want - int64_t(out.ids.size())));
      out.ids.insert(out.ids.end(), doc.begin(), doc.begin() + take);
      if (want >= 0 && int64_t(out.ids.size()) >= want) throw Done{};
    });
  } catch (const Done&) {
  }
  out.rows = int64_t(out.ids.size()) / options.seq_len;
  out.dropped_tail = int64_t(out.ids.size()) - out.rows * options.seq_len;
  out.ids.resize(size_t(out.rows * options.seq_len));
  const std::string first = spec.paths.empty() ? std::string("(no paths)") : spec.paths.front();
  MCD_CHECK(out.rows > 0, "token windows: corpus ", first, (spec.paths.size() > 1 ? " (and more)" : ""), " has ",
            out.dropped_tail, " tokens, fewer than one window of ", options.seq_len);
  return out;
}

}  // namespace mcd::data
