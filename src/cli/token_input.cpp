// Token sequences from safetensors or a corpus (see token_input.h).
#include "cli/token_input.h"

#include "io/safetensors_torch.h"
#include "util/error.h"

#ifdef MCD_HAS_TOKENIZER
#include "data/token_windows.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/tokenizer/vocab_map.h"
#endif

namespace mcd::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TokenInput read_token_input(const std::string& path, const std::string& format, int64_t seq_len,
                            int64_t max_tokens, int64_t per_document, const char* option,
                            const std::string& model_dir, int64_t model_vocab) {
  TokenInput in;
  if (ends_with(path, ".safetensors")) {
    const io::SafetensorsFile file = io::SafetensorsFile::open(path);
    const io::TensorInfo* info = file.find("input_ids");
    MCD_CHECK(info, option, " ", path, ": no tensor named 'input_ids'");
    at::Tensor ids = io::read_tensor(file, *info);
    MCD_CHECK(ids.dim() == 2 && ids.size(0) >= 1 && ids.size(1) >= 2, option, " ", path,
              ": 'input_ids' must be (B, L>=2), got ", ids.sizes());
    MCD_CHECK(!at::isFloatingType(ids.scalar_type()), option, " ", path, ": 'input_ids' must be integers, got ",
              ids.scalar_type());
    ids = ids.to(at::kLong);
    if (max_tokens > 0) {
      const int64_t rows = std::min(ids.size(0), (max_tokens + ids.size(1) - 1) / ids.size(1));
      ids = ids.slice(0, 0, rows);
    }
    in.ids = ids.contiguous();
    in.source = "safetensors";
    return in;
  }
#ifdef MCD_HAS_TOKENIZER
  const auto tokenizer = data::tokenizer_for_model(model_dir, model_vocab);
  data::WindowOptions w;
  w.seq_len = seq_len;
  w.max_tokens = max_tokens;
  w.per_document = per_document;
  data::TokenWindows windows = data::read_token_windows(data::CorpusSpec{format, {path}}, tokenizer, w);
  in.ids = torch::from_blob(windows.ids.data(), {windows.rows, windows.seq_len}, at::kInt).to(at::kLong);
  in.source = "corpus";
  in.documents = windows.documents;
  return in;
#else
  fail(cat(option, " ", path, ": reading a corpus needs the tokenizer, which this build lacks; "
           "pass a .safetensors file with input_ids"));
#endif
}

}  // namespace mcd::cli
