// E-mail to text (email_text.h): a small MIME walker, the transfer decodings, charset repair and a
// crude HTML-to-text pass. Deliberately forgiving: the corpus has broken MIME, missing
// boundaries and mislabelled charsets, and the goal is readable text, not a faithful parse.
#include "data/demo/email_text.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "util/utf8.h"

namespace mcd::data::demo {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A code point of the decoded text as UTF-8; NUL, surrogates and values past U+10FFFF become U+FFFD.
void append_text_char(std::string& out, uint32_t cp) {
  if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
  append_utf8(out, cp);
}

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// Windows-1252's 0x80-0x9F (the rest of its upper half is ISO-8859-1).
uint32_t cp1252_high(unsigned char c) {
  static const uint32_t table[32] = {0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                     0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
                                     0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                     0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};
  return table[c - 0x80];
}

std::string without_controls(std::string s) {
  for (auto& c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7F) c = ' ';
  }
  return s;
}

// ---- headers and MIME ----

struct Headers {
  std::vector<std::pair<std::string, std::string>> fields;  // lower-case name, unfolded value
  std::string get(const std::string& name) const {
    for (const auto& [n, v] : fields)
      if (n == name) return v;
    return "";
  }
};

bool is_field_name(std::string_view line, size_t colon) {
  if (colon == 0 || colon == std::string_view::npos) return false;
  for (size_t i = 0; i < colon; ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c <= 32 || c >= 127) return false;
  }
  return true;
}

// Splits `msg` (LF line ends) into headers and body.
std::pair<Headers, std::string_view> split_message(std::string_view msg) {
  Headers h;
  size_t pos = 0;
  if (starts_with(msg, "From ")) {  // mbox separator line
    const size_t nl = msg.find('\n');
    pos = nl == std::string_view::npos ? msg.size() : nl + 1;
  }
  while (pos < msg.size()) {
    size_t nl = msg.find('\n', pos);
    if (nl == std::string_view::npos) nl = msg.size();
    const std::string_view line = msg.substr(pos, nl - pos);
    if (line.empty()) return {h, msg.substr(std::min(msg.size(), nl + 1))};
    if ((line[0] == ' ' || line[0] == '\t') && !h.fields.empty()) {
      h.fields.back().second += " " + std::string(trim(line));
    } else {
      const size_t colon = line.find(':');
      if (!is_field_name(line, colon)) return {h, msg.substr(pos)};  // no (more) headers: body
      h.fields.emplace_back(lower(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
    }
    pos = nl + 1;
  }
  return {h, std::string_view()};
}

struct ContentType {
  std::string type = "text/plain";
  std::map<std::string, std::string> params;
};

ContentType parse_content_type(const std::string& value) {
  ContentType ct;
  if (trim(value).empty()) return ct;
  size_t semi = value.find(';');
  const std::string type = lower(trim(std::string_view(value).substr(0, semi)));
  if (type.find('/') != std::string::npos) ct.type = type;
  while (semi != std::string::npos) {
    const size_t start = semi + 1;
    // a quoted value may hold ';'
    size_t eq = value.find('=', start);
    if (eq == std::string::npos) break;
    const std::string key = lower(trim(std::string_view(value).substr(start, eq - start)));
    std::string val;
    size_t i = eq + 1;
    while (i < value.size() && std::isspace(static_cast<unsigned char>(value[i]))) ++i;
    if (i < value.size() && value[i] == '"') {
      const size_t close = value.find('"', i + 1);
      val = value.substr(i + 1, close == std::string::npos ? std::string::npos : close - i - 1);
      semi = close == std::string::npos ? std::string::npos : value.find(';', close);
    } else {
      semi = value.find(';', i);
      val = std::string(trim(std::string_view(value).substr(i, semi == std::string::npos ? std::string::npos : semi - i)));
    }
    ct.params[key] = val;
  }
  return ct;
}

// The parts between "--boundary" lines (the closing "--boundary--" ends them).
std::vector<std::string_view> split_multipart(std::string_view body, const std::string& boundary) {
  std::vector<std::string_view> parts;
  const std::string delim = "--" + boundary;
  size_t pos = 0, part_start = std::string_view::npos;
  while (pos <= body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    const std::string_view line = trim(body.substr(pos, nl - pos));
    if (starts_with(line, delim)) {
      const std::string_view rest = line.substr(delim.size());
      if (rest.empty() || starts_with(rest, "--")) {
        if (part_start != std::string_view::npos) parts.push_back(body.substr(part_start, pos - part_start));
        if (!rest.empty()) return parts;  // closing delimiter
        part_start = std::min(body.size(), nl + 1);
      }
    }
    if (nl == body.size()) break;
    pos = nl + 1;
  }
  if (part_start != std::string_view::npos && part_start < body.size()) parts.push_back(body.substr(part_start));
  return parts;
}

bool looks_like_html(std::string_view text) {
  const std::string head = lower(text.substr(0, 4000));
  if (head.find("<html") != std::string::npos || head.find("<body") != std::string::npos ||
      head.find("<!doctype html") != std::string::npos)
    return true;
  int tags = 0;
  for (const char* t : {"<br", "<p>", "<font", "<table", "<a href", "<td", "<div", "<center", "<b>"}) {
    for (size_t p = head.find(t); p != std::string::npos; p = head.find(t, p + 1)) ++tags;
  }
  return tags >= 3;
}

struct Collected {
  std::vector<std::string> plain, html;
};

void collect(const Headers& h, std::string_view body, int depth, Collected& out) {
  const ContentType ct = parse_content_type(h.get("content-type"));
  const std::string encoding = lower(trim(h.get("content-transfer-encoding")));
  const std::string disposition = lower(trim(h.get("content-disposition")));
  if (starts_with(ct.type, "multipart/") && depth < 8) {
    const auto b = ct.params.find("boundary");
    if (b != ct.params.end() && !b->second.empty()) {
      const auto parts = split_multipart(body, b->second);
      if (!parts.empty()) {
        for (const auto part : parts) {
          const auto [ph, pbody] = split_message(part);
          collect(ph, pbody, depth + 1, out);
        }
        return;
      }
    }
    // a multipart without usable boundaries: read it as text below
  } else if (ct.type == "message/rfc822" && depth < 8) {
    const auto [ph, pbody] = split_message(body);
    collect(ph, pbody, depth + 1, out);
    return;
  }
  if (starts_with(disposition, "attachment")) return;
  if (!starts_with(ct.type, "text/") && !starts_with(ct.type, "multipart/")) return;
  if (starts_with(ct.type, "text/") && ct.type != "text/plain" && ct.type != "text/html") return;
  std::string decoded;
  if (encoding == "quoted-printable") decoded = decode_quoted_printable(body);
  else if (encoding == "base64") decoded = decode_base64(body);
  else decoded = std::string(body);
  const auto cs = ct.params.find("charset");
  const std::string text = to_utf8(decoded, cs == ct.params.end() ? "" : cs->second);
  if (ct.type == "text/html" || looks_like_html(text)) out.html.push_back(html_to_text(text));
  else out.plain.push_back(normalize_whitespace(text));
}

// ---- HTML ----

const std::map<std::string, uint32_t>& entities() {
  static const std::map<std::string, uint32_t> table = {
      {"amp", '&'},     {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
      {"nbsp", ' '},    {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"mdash", 0x2014},
      {"ndash", 0x2013}, {"hellip", 0x2026}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
      {"rdquo", 0x201D}, {"bull", 0x2022},  {"middot", 0xB7},  {"laquo", 0xAB},   {"raquo", 0xBB},
      {"cent", 0xA2},   {"pound", 0xA3},   {"euro", 0x20AC},  {"yen", 0xA5},     {"deg", 0xB0},
      {"eacute", 0xE9}, {"egrave", 0xE8},  {"aacute", 0xE1},  {"uuml", 0xFC},    {"ouml", 0xF6},
      {"auml", 0xE4},   {"szlig", 0xDF},   {"ccedil", 0xE7},  {"ntilde", 0xF1},  {"times", 0xD7}};
  return table;
}

bool block_tag(const std::string& name) {
  static const char* const names[] = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                                      "table", "ul", "ol", "blockquote", "hr", "title", "center", "pre",
                                      "dd", "dt", "form", "body", "html"};
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_utf8(std::string_view bytes, std::string_view charset) {
  if (is_valid_utf8(bytes)) return without_controls(std::string(bytes));
  const std::string cs = lower(trim(charset));
  const bool western = cs.empty() || cs == "us-ascii" || cs == "ascii" || cs == "iso-8859-1" ||
                       cs == "iso8859-1" || cs == "latin1" || cs == "latin-1" || cs == "iso-8859-15" ||
                       cs == "windows-1252" || cs == "cp1252";
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 4);
  bool in_bad_run = false;
  for (size_t i = 0; i < bytes.size();) {
    const size_t n = utf8_sequence(bytes, i);
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (n > 0 && (c < 0x80 || !western)) {
      out.append(bytes.substr(i, n));
      i += n;
      in_bad_run = false;
      continue;
    }
    if (western) {
      append_text_char(out, c < 0x80 ? c : (c < 0xA0 ? cp1252_high(c) : c));
    } else if (!in_bad_run) {
      append_text_char(out, 0xFFFD);
      in_bad_run = true;
    }
    ++i;
  }
  return without_controls(std::move(out));
}

std::string decode_quoted_printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') {
      out += s[i];
      continue;
    }
    if (i + 1 < s.size() && s[i + 1] == '\n') {  // soft line break
      ++i;
      continue;
    }
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') {
      i += 2;
      continue;
    }
    if (i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += char(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
      continue;
    }
    out += '=';
  }
  return out;
}

std::string decode_base64(std::string_view s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') {
      acc = 0;  // padding ends a group
      bits = 0;
      continue;
    } else continue;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string decode_header_words(std::string_view value) {
  std::string out;
  size_t pos = 0;
  bool last_was_word = false;
  while (pos < value.size()) {
    const size_t start = value.find("=?", pos);
    if (start == std::string_view::npos) {
      out.append(value.substr(pos));
      break;
    }
    const size_t q1 = value.find('?', start + 2);
    const size_t q2 = q1 == std::string_view::npos ? q1 : value.find('?', q1 + 1);
    const size_t end = q2 == std::string_view::npos ? q2 : value.find("?=", q2 + 1);
    if (end == std::string_view::npos || q2 != q1 + 2) {  // not an encoded word
      out.append(value.substr(pos, start + 2 - pos));
      last_was_word = false;
      pos = start + 2;
      continue;
    }
    const std::string_view between = value.substr(pos, start - pos);
    if (!(last_was_word && trim(between).empty())) out.append(between);  // spaces between words go
    const std::string charset = std::string(value.substr(start + 2, q1 - start - 2));
    const char enc = char(std::toupper(static_cast<unsigned char>(value[q1 + 1])));
    const std::string_view text = value.substr(q2 + 1, end - q2 - 1);
    std::string bytes;
    if (enc == 'B') {
      bytes = decode_base64(text);
    } else {
      std::string t(text);
      std::replace(t.begin(), t.end(), '_', ' ');
      bytes = decode_quoted_printable(t);
    }
    out += to_utf8(bytes, charset.substr(0, charset.find('*')));  // RFC 2231 language suffix
    last_was_word = true;
    pos = end + 2;
  }
  return out;
}

std::string html_to_text(std::string_view html) {
  std::string out;
  out.reserve(html.size());
  const std::string low = lower(html);
  size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '<') {
      if (low.compare(i, 4, "<!--") == 0) {
        const size_t end = low.find("-->", i + 4);
        i = end == std::string::npos ? html.size() : end + 3;
        continue;
      }
      const size_t close = html.find('>', i + 1);
      const char next = i + 1 < html.size() ? low[i + 1] : '\0';
      if (close == std::string_view::npos || !(std::isalpha(static_cast<unsigned char>(next)) || next == '/' ||
                                               next == '!' || next == '?')) {
        out += c;  // a literal '<'
        ++i;
        continue;
      }
      size_t n = i + 1 + (next == '/');
      std::string name;
      while (n < close && std::isalnum(static_cast<unsigned char>(low[n]))) name += low[n++];
      if (next != '/' && (name == "script" || name == "style")) {
        const size_t end = low.find("</" + name, close);
        const size_t end_close = end == std::string::npos ? std::string::npos : low.find('>', end);
        i = end_close == std::string::npos ? html.size() : end_close + 1;
        continue;
      }
      if (block_tag(name)) out += '\n';
      else if (name == "td" || name == "th") out += ' ';
      i = close + 1;
      continue;
    }
    if (c == '&') {
      const size_t semi = html.find(';', i + 1);
      if (semi != std::string_view::npos && semi - i <= 10) {
        const std::string name = std::string(html.substr(i + 1, semi - i - 1));
        uint32_t cp = 0;
        if (!name.empty() && name[0] == '#') {
          const bool hex = name.size() > 1 && (name[1] == 'x' || name[1] == 'X');
          const std::string digits = name.substr(hex ? 2 : 1);
          if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [&](char d) {
                return hex ? hex_value(d) >= 0 : (d >= '0' && d <= '9');
              }))
            cp = uint32_t(std::min<unsigned long>(std::stoul(digits, nullptr, hex ? 16 : 10), 0x10FFFF));
          if (cp >= 0x80 && cp < 0xA0) cp = cp1252_high(static_cast<unsigned char>(cp));  // as browsers do
        } else {
          const auto it = entities().find(lower(name));
          if (it != entities().end()) cp = it->second;
        }
        if (cp != 0) {
          append_text_char(out, cp);
          i = semi + 1;
          continue;
        }
      }
    }
    out += c;
    ++i;
  }
  return normalize_whitespace(out);
}

std::string normalize_whitespace(std::string_view s) {
  std::string out;
  bool pending_blank = false;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) nl = s.size();
    const std::string_view raw = s.substr(pos, nl - pos);
    std::string line;
    bool space = false;
    for (size_t i = 0; i < raw.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(raw[i]);
      bool is_space = c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
      if (c == 0xC2 && i + 1 < raw.size() && static_cast<unsigned char>(raw[i + 1]) == 0xA0) {  // U+00A0
        is_space = true;
        ++i;
      }
      if (is_space) {
        space = !line.empty();
        continue;
      }
      if (space) line += ' ';
      space = false;
      line += char(c);
    }
    if (line.empty()) {
      pending_blank = !out.empty();
    } else {
      if (!out.empty()) out += pending_blank ? "\n\n" : "\n";
      out += line;
      pending_blank = false;
    }
    if (nl == s.size()) break;
    pos = nl + 1;
  }
  return out;
}

std::string truncate_utf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut));
}

EmailText email_to_text(std::string_view message) {
  std::string msg;
  msg.reserve(message.size());
  for (size_t i = 0; i < message.size(); ++i) {  // CRLF and lone CR -> LF
    if (message[i] == '\r') {
      msg += '\n';
      if (i + 1 < message.size() && message[i + 1] == '\n') ++i;
    } else {
      msg += message[i];
    }
  }
  const auto [headers, body] = split_message(msg);
  EmailText r;
  r.subject = normalize_whitespace(decode_header_words(to_utf8(headers.get("subject"), "")));
  std::replace(r.subject.begin(), r.subject.end(), '\n', ' ');
  Collected parts;
  collect(headers, body, 0, parts);
  const auto& chosen = parts.plain.empty() ? parts.html : parts.plain;
  std::string joined;
  for (const auto& p : chosen)
    if (!p.empty()) joined += (joined.empty() ? "" : "\n\n") + p;
  r.body = normalize_whitespace(joined);
  return r;
}

}  // namespace mcd::data::demo
