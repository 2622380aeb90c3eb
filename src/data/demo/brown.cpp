// Brown corpus tag stripping and detokenization (brown.h).
#include "data/demo/brown.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "util/error.h"

namespace mcd::data::demo {
namespace {

bool is_one_of(const std::string& t, std::initializer_list<const char*> set) {
  return std::any_of(set.begin(), set.end(), [&](const char* s) { return t == s; });
}

bool has_alnum(const std::string& t) {
  return std::any_of(t.begin(), t.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
}

// The marks the release sometimes doubles.
bool repeatable_mark(const std::string& t) { return is_one_of(t, {";", "?", "!", ",", ":", "(", ")"}); }

}  // namespace

std::string detokenize(const std::vector<std::string>& words) {
  std::string out;
  bool glue_next = true;  // no space before the next token
  bool single_open = false;
  for (const auto& w : words) {
    std::string text = w;
    bool attach_left = false, attach_right = false;
    if (w == "``") {
      text = "\"";
      attach_right = true;
    } else if (w == "''") {
      text = "\"";
      attach_left = true;
    } else if (w == "'") {
      (single_open ? attach_left : attach_right) = true;
      single_open = !single_open;
    } else if (is_one_of(w, {"(", "[", "{"})) {
      attach_right = true;
    } else if (is_one_of(w, {")", "]", "}", ",", ".", ";", ":", "?", "!"})) {
      attach_left = true;
    }
    if (!out.empty() && !glue_next && !attach_left) out += ' ';
    out += text;
    glue_next = attach_right;
  }
  return out;
}

BrownText brown_to_text(std::string_view tagged, const std::string& source) {
  BrownText r;
  std::vector<std::string> paragraph;
  int64_t sentences_in_paragraph = 0;
  auto flush = [&] {
    if (paragraph.empty()) return;
    if (!r.text.empty()) r.text += "\n";
    r.text += detokenize(paragraph) + "\n";
    ++r.paragraphs;
    r.sentences += sentences_in_paragraph;
    paragraph.clear();
    sentences_in_paragraph = 0;
  };
  size_t pos = 0;
  int64_t line_no = 0;
  std::vector<std::pair<std::string, bool>> line_words;  // word, tagged as part of a headline
  while (pos <= tagged.size()) {
    size_t end = tagged.find('\n', pos);
    if (end == std::string_view::npos) end = tagged.size();
    const std::string_view line = tagged.substr(pos, end - pos);
    ++line_no;
    pos = end + 1;
    line_words.clear();
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i >= line.size()) break;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      const std::string_view token = line.substr(i, j - i);
      i = j;
      const size_t slash = token.rfind('/');
      MCD_CHECK(slash != std::string_view::npos && slash > 0 && slash + 1 < token.size(), source, ":", line_no,
                ": token '", token, "' is not word/tag");
      line_words.emplace_back(std::string(token.substr(0, slash)),
                              token.substr(slash + 1).find("-hl") != std::string_view::npos);
    }
    if (line_words.empty()) {
      flush();  // a blank line ends the paragraph
    } else {
      // A headline (most of its words tagged *-hl) is a paragraph of its own.
      int words = 0, headline_words = 0;
      for (const auto& [w, hl] : line_words)
        if (has_alnum(w)) ++words, headline_words += hl;
      const bool headline = headline_words > 0 && 2 * headline_words >= words;
      if (headline) flush();
      for (auto& [w, hl] : line_words) {
        if (!paragraph.empty()) {
          const std::string& prev = paragraph.back();
          if (w == prev && repeatable_mark(w)) continue;             // the release's doubled marks
          if (w == "." && prev.size() > 1 && prev.back() == '.') continue;  // "Jr." + "." -> "Jr."
        }
        paragraph.push_back(std::move(w));
        ++r.tokens;
        r.words += has_alnum(paragraph.back());
      }
      ++sentences_in_paragraph;
      if (headline) flush();
    }
    if (end == tagged.size()) break;
  }
  flush();
  return r;
}

}  // namespace mcd::data::demo
