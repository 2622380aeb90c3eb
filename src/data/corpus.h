// Corpus readers: which files a corpus spec names (deterministic order) and how each file splits
// into documents (WikiText, WikiExtractor, plain text, or auto-detected per file). Torch-free;
// data/token_cache.h tokenizes what these yield, separating documents with <|endoftext|>.
//
// Formats (documents are exact byte slices of the file; empty or whitespace-only documents are
// dropped; a leading UTF-8 byte-order mark is ignored):
//   wikitext       WikiText-2/103 `wiki.*.tokens` and `wiki.*.raw`. A line " = Title = " (one
//                  '=' each side) starts a document that runs to the next such line, heading
//                  included. Subheadings " = = Section = = " do not start documents. Text before
//                  the first heading (if not blank) is a document of its own.
//   wikiextractor  `<doc id=.. url=.. title=..>` ... `</doc>`, each tag on a line of its own.
//                  A document is the text between the tag lines (its first line is the title).
//                  Blank lines between documents are fine; other text outside <doc>, a <doc>
//                  inside a <doc>, or a <doc> never closed are errors naming the file and line.
//   text           The whole file is one document.
//   auto           Per file, from its first non-blank line: "<doc " -> wikiextractor, a
//                  " = Title = " heading -> wikitext, anything else -> text.
// Paths: each spec path is a file or a directory. A directory stands for every regular file
// below it, recursively: entries sorted by name in byte order at each level, a subdirectory's
// files at the subdirectory's place. Entries whose name starts with '.' are skipped (so a hidden
// cache folder inside a corpus is not read); links to directories are not followed. Paths named
// directly are used in the order given.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mcd::data {

enum class CorpusFormat { kWikiText, kWikiExtractor, kText };

// "wikitext" | "wikiextractor" | "text"; anything else (including "auto") throws mcd::Error.
CorpusFormat parse_corpus_format(const std::string& name);
const char* corpus_format_name(CorpusFormat format);
// The `auto` rule above, applied to a file's contents.
CorpusFormat detect_corpus_format(std::string_view content);

struct CorpusSpec {
  std::string format = "auto";     // wikitext | wikiextractor | text | auto
  std::vector<std::string> paths;  // files and/or directories
};

// Every file the spec names, as absolute normalized paths, in reading order. Throws mcd::Error
// for an unknown format, an empty path list, a missing path, or a directory without files.
std::vector<std::string> list_corpus_files(const CorpusSpec& spec);

struct Document {
  std::string_view text;   // the document's bytes (a view into the file's contents)
  std::string_view title;  // heading / title="..." attribute as written; empty for text files
};

// Splits one file's `content` (after any BOM) in `format`, calling `fn` for each non-blank
// document in order. `source` names the file in error messages.
void split_documents(std::string_view content, CorpusFormat format, const std::string& source,
                     const std::function<void(const Document&)>& fn);

// Streams every document of the corpus in order (files memory-mapped one at a time; the view
// is valid only during the call). Returns the number of documents.
int64_t for_each_document(const CorpusSpec& spec,
                          const std::function<void(std::string_view doc)>& fn);

// The format a file is read in under `spec` (detects when spec.format is "auto").
CorpusFormat resolve_format(const CorpusSpec& spec, std::string_view content);

// `content` without a leading UTF-8 byte-order mark.
std::string_view strip_bom(std::string_view content);

}  // namespace mcd::data
