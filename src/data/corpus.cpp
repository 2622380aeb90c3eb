// Corpus readers declared in corpus.h: file listing (sorted directory walks) and the three
// document splitters. Each splitter scans the memory-mapped file line by line with memchr and
// hands out views into it, so reading costs no copies; data/token_cache.cpp drives them.
#include "data/corpus.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "util/error.h"
#include "util/fs.h"
#include "util/mapped_file.h"

// No std::filesystem here: see [Note: no std::filesystem] in docs/NOTES.md.
namespace mcd::data {
namespace {

bool is_blank_char(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

bool is_blank(std::string_view s) { return std::all_of(s.begin(), s.end(), is_blank_char); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank_char(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank_char(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Calls fn(line_begin, line_end, line_number) for each line; line_end is past the '\n' (or the
// end of `content` for a last line without one). fn returns false to stop.
template <typename Fn>
void for_each_line(std::string_view content, Fn&& fn) {
  size_t pos = 0;
  int64_t number = 1;
  while (pos < content.size()) {
    const void* nl = std::memchr(content.data() + pos, '\n', content.size() - pos);
    const size_t end =
        nl ? size_t(static_cast<const char*>(nl) - content.data()) + 1 : content.size();
    if (!fn(pos, end, number)) return;
    pos = end;
    ++number;
  }
}

// A WikiText level-1 heading: "= Title =" after trimming, with a title that is not itself
// "= ... =" (that would be a level-2 subheading " = = Section = = ").
bool wikitext_title(std::string_view line, std::string_view* title) {
  const std::string_view t = trim(line);
  if (t.size() < 5 || t[0] != '=' || t[1] != ' ' || t[t.size() - 1] != '=' ||
      t[t.size() - 2] != ' ')
    return false;
  const std::string_view inner = trim(t.substr(2, t.size() - 4));
  if (inner.empty() || inner.front() == '=' || inner.back() == '=') return false;
  if (title) *title = inner;
  return true;
}

bool is_doc_open(std::string_view trimmed) {
  return starts_with(trimmed, "<doc ") || trimmed == "<doc>";
}

std::string_view doc_attribute(std::string_view tag, std::string_view name) {
  const std::string key = std::string(" ") + std::string(name) + "=\"";
  const size_t at = tag.find(key);
  if (at == std::string_view::npos) return {};
  const size_t begin = at + key.size();
  const size_t end = tag.find('"', begin);
  return end == std::string_view::npos ? std::string_view{} : tag.substr(begin, end - begin);
}

void emit(std::string_view text, std::string_view title,
          const std::function<void(const Document&)>& fn) {
  if (!is_blank(text)) fn(Document{text, title});
}

void split_wikitext(std::string_view content, const std::function<void(const Document&)>& fn) {
  size_t doc_begin = 0;
  std::string_view title;
  for_each_line(content, [&](size_t begin, size_t end, int64_t) {
    std::string_view heading;
    if (wikitext_title(content.substr(begin, end - begin), &heading)) {
      emit(content.substr(doc_begin, begin - doc_begin), title, fn);
      doc_begin = begin;
      title = heading;
    }
    return true;
  });
  emit(content.substr(doc_begin), title, fn);
}

void split_wikiextractor(std::string_view content, const std::string& source,
                         const std::function<void(const Document&)>& fn) {
  bool inside = false;
  size_t doc_begin = 0;
  int64_t open_line = 0;
  std::string_view title;
  for_each_line(content, [&](size_t begin, size_t end, int64_t number) {
    const std::string_view line = trim(content.substr(begin, end - begin));
    if (!inside) {
      if (is_doc_open(line)) {
        MCD_CHECK(line.back() == '>', source, ":", number, ": unterminated <doc ...> tag");
        inside = true;
        doc_begin = end;
        open_line = number;
        title = doc_attribute(line, "title");
      } else {
        MCD_CHECK(line.empty(), source, ":", number, ": text outside <doc>...</doc> (is this ",
                  "really WikiExtractor output? the corpus format can be set explicitly)");
      }
    } else if (line == "</doc>") {
      emit(content.substr(doc_begin, begin - doc_begin), title, fn);
      inside = false;
    } else {
      MCD_CHECK(!is_doc_open(line), source, ":", number, ": <doc> inside the <doc> opened at line ",
                open_line, " (missing </doc>)");
    }
    return true;
  });
  MCD_CHECK(!inside, source, ": the <doc> opened at line ", open_line, " is never closed");
}

// `path` made absolute (against the working directory) and lexically normalized: no ".", no
// "..", no repeated or trailing '/'. Symbolic links are not resolved.
std::string absolute_normal(const std::string& path) {
  std::string full = path;
  if (full.empty() || full[0] != '/') {
    std::string cwd(4096, '\0');
    MCD_CHECK(::getcwd(cwd.data(), cwd.size()),
              "cannot get the working directory: ", std::strerror(errno));
    full = std::string(cwd.c_str()) + "/" + full;
  }
  std::vector<std::string_view> parts;
  const std::string_view all(full);
  size_t pos = 0;
  while (pos <= all.size()) {
    size_t slash = all.find('/', pos);
    if (slash == std::string_view::npos) slash = all.size();
    const std::string_view part = all.substr(pos, slash - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = slash + 1;
  }
  std::string out;
  for (const auto& part : parts) out.append("/").append(part);
  return out.empty() ? "/" : out;
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// Appends the files below `dir`: entries sorted by name (byte order) at each level, a
// subdirectory's files at the subdirectory's place. Hidden entries are skipped; symbolic links
// to files are followed, links to directories are not (no cycles).
void add_directory(const std::string& dir, std::vector<std::string>& out) {
  for (const std::string& name : fs::list_dir(dir)) {
    if (name[0] == '.') continue;
    const std::string path = fs::join(dir, name);
    if (fs::is_directory(path)) {
      if (!is_symlink(path)) add_directory(path, out);
    } else if (fs::is_regular_file(path)) {
      out.push_back(path);
    }
  }
}

}  // namespace

CorpusFormat parse_corpus_format(const std::string& name) {
  if (name == "wikitext") return CorpusFormat::kWikiText;
  if (name == "wikiextractor") return CorpusFormat::kWikiExtractor;
  if (name == "text") return CorpusFormat::kText;
  fail(cat("unknown corpus format '", name, "' (expected wikitext, wikiextractor, text or auto)"));
}

const char* corpus_format_name(CorpusFormat format) {
  switch (format) {
    case CorpusFormat::kWikiText: return "wikitext";
    case CorpusFormat::kWikiExtractor: return "wikiextractor";
    case CorpusFormat::kText: return "text";
  }
  return "?";
}

std::string_view strip_bom(std::string_view content) {
  return starts_with(content, "\xEF\xBB\xBF") ? content.substr(3) : content;
}

CorpusFormat detect_corpus_format(std::string_view content) {
  content = strip_bom(content);
  CorpusFormat format = CorpusFormat::kText;
  for_each_line(content, [&](size_t begin, size_t end, int64_t) {
    const std::string_view line = content.substr(begin, end - begin);
    if (is_blank(line)) return true;
    if (is_doc_open(trim(line))) {
      format = CorpusFormat::kWikiExtractor;
    } else if (wikitext_title(line, nullptr)) {
      format = CorpusFormat::kWikiText;
    }
    return false;  // only the first non-blank line decides
  });
  return format;
}

CorpusFormat resolve_format(const CorpusSpec& spec, std::string_view content) {
  return spec.format == "auto" ? detect_corpus_format(content) : parse_corpus_format(spec.format);
}

std::vector<std::string> list_corpus_files(const CorpusSpec& spec) {
  if (spec.format != "auto") parse_corpus_format(spec.format);  // validates the name
  MCD_CHECK(!spec.paths.empty(), "corpus spec names no paths");
  std::vector<std::string> files;
  for (const std::string& name : spec.paths) {
    const std::string path = absolute_normal(name);
    MCD_CHECK(fs::exists(path), "corpus path '", name, "' does not exist");
    if (fs::is_directory(path)) {
      const size_t before = files.size();
      add_directory(path, files);
      MCD_CHECK(files.size() > before, "corpus directory '", name, "' has no (non-hidden) files");
    } else {
      MCD_CHECK(fs::is_regular_file(path), "corpus path '", name,
                "' is not a regular file or directory");
      files.push_back(path);
    }
  }
  return files;
}

void split_documents(std::string_view content, CorpusFormat format, const std::string& source,
                     const std::function<void(const Document&)>& fn) {
  content = strip_bom(content);
  switch (format) {
    case CorpusFormat::kWikiText: return split_wikitext(content, fn);
    case CorpusFormat::kWikiExtractor: return split_wikiextractor(content, source, fn);
    case CorpusFormat::kText: return emit(content, {}, fn);
  }
}

int64_t for_each_document(const CorpusSpec& spec, const std::function<void(std::string_view)>& fn) {
  int64_t count = 0;
  for (const std::string& path : list_corpus_files(spec)) {
    const MappedFile file = MappedFile::open(path);
    const std::string_view content(reinterpret_cast<const char*>(file.data()), file.size());
    split_documents(content, resolve_format(spec, strip_bom(content)), path,
                    [&](const Document& doc) {
                      ++count;
                      fn(doc.text);
                    });
  }
  return count;
}

}  // namespace mcd::data
