// The strict manifest reader (manifest.h). yaml-cpp is used directly: src/data may not include
// src/config (docs/ARCHITECTURE.md), whose StrictYamlMap does the same for model configs.
#include "data/download/manifest.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "util/error.h"

namespace mcd::data::download {
namespace {

std::string line_suffix(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  return m.line >= 0 ? cat(" (line ", m.line + 1, ")") : std::string();
}

int line_of(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  return m.line >= 0 ? m.line + 1 : 0;
}

// One mapping of the manifest with the context its messages need ("<file>: entries[2]
// (glue-cola)").
class Map {
 public:
  Map(const YAML::Node& node, std::string where) : node_(node), where_(std::move(where)) {
    MCD_CHECK(node_.IsMap(), where_, ": expected a mapping of keys to values", line_suffix(node_));
  }

  void reject_unknown(const std::set<std::string>& known) const {
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (known.count(key)) continue;
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(cat(where_, ": unknown key '", key, "'", line_suffix(kv.first), " (known keys: ", list, ")"));
    }
  }

  bool has(const std::string& key) const { return bool(node_[key]) && !node_[key].IsNull(); }

  std::string string(const std::string& key, bool required) const {
    const YAML::Node v = node_[key];
    if (!v || v.IsNull()) {
      MCD_CHECK(!required, where_, ": missing key '", key, "'", line_suffix(node_));
      return "";
    }
    MCD_CHECK(v.IsScalar(), where_, ": key '", key, "' must be a string", line_suffix(v));
    return v.Scalar();
  }

  int integer(const std::string& key, int fallback, int lo, int hi) const {
    const YAML::Node v = node_[key];
    if (!v || v.IsNull()) return fallback;
    int value = 0;
    bool ok = v.IsScalar();
    if (ok) {
      try {
        value = v.as<int>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
    }
    MCD_CHECK(ok && value >= lo && value <= hi, where_, ": key '", key, "' must be an integer in [",
              lo, ", ", hi, "]", line_suffix(v));
    return value;
  }

  std::vector<std::string> string_list(const std::string& key) const {
    const YAML::Node v = node_[key];
    std::vector<std::string> out;
    if (!v || v.IsNull()) return out;
    MCD_CHECK(v.IsSequence(), where_, ": key '", key, "' must be a list of strings", line_suffix(v));
    for (const auto& item : v) {
      MCD_CHECK(item.IsScalar(), where_, ": key '", key, "' must be a list of strings", line_suffix(item));
      out.push_back(item.Scalar());
    }
    return out;
  }

  // An error about `key`'s value.
  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    fail(cat(where_, ": key '", key, "': ", what, line_suffix(node_[key] ? node_[key] : node_)));
  }

  const std::string& where() const { return where_; }

 private:
  YAML::Node node_;
  std::string where_;
};

bool valid_name(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// A path relative to the destination that stays inside it: no leading '/', no ".." component,
// no empty component (except a lone "."). Returns "" when fine, else the reason.
std::string relative_path_problem(const std::string& p, bool allow_dot) {
  if (p.empty()) return "is empty";
  if (p == ".") return allow_dot ? "" : "must name a file, not '.'";
  if (p[0] == '/') return "must be relative to the destination folder";
  std::stringstream ss(p);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part == "..") return "must not contain '..'";
    if (part.empty()) return "must not contain an empty component ('//')";
  }
  if (p.back() == '/') return "must not end with '/'";
  return "";
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Entry parse_entry(const YAML::Node& node, const std::string& where) {
  Map m(node, where);
  m.reject_unknown({"name", "group", "url", "sha256", "archive", "extract_to", "strip_components", "expect"});
  Entry e;
  e.line = line_of(node);
  e.name = m.string("name", true);
  const Map named(node, cat(where, " (", e.name, ")"));
  if (!valid_name(e.name)) named.bad("name", cat("'", e.name, "' may hold only letters, digits, '.', '_' and '-'"));
  e.group = named.string("group", false);
  if (!e.group.empty() && !valid_name(e.group))
    named.bad("group", cat("'", e.group, "' may hold only letters, digits, '.', '_' and '-'"));
  e.url = named.string("url", true);
  if (e.url.rfind("http://", 0) != 0 && e.url.rfind("https://", 0) != 0 && e.url.rfind("file://", 0) != 0)
    named.bad("url", cat("'", e.url, "' must start with http://, https:// or file://"));
  std::string sha = named.string("sha256", false);
  std::transform(sha.begin(), sha.end(), sha.begin(), [](char c) { return char(std::tolower(c)); });
  if (!sha.empty() && !is_hex64(sha)) named.bad("sha256", cat("'", sha, "' is not 64 hexadecimal digits (leave it out or null when unknown)"));
  e.sha256 = sha;
  const std::string archive = named.string("archive", true);
  if (archive == "none") e.archive = Archive::kNone;
  else if (archive == "zip") e.archive = Archive::kZip;
  else if (archive == "tar.gz" || archive == "tgz") e.archive = Archive::kTarGz;
  else named.bad("archive", cat("'", archive, "' is not one of none, zip, tar.gz"));
  e.extract_to = named.string("extract_to", true);
  const std::string problem = relative_path_problem(e.extract_to, e.archive != Archive::kNone);
  if (!problem.empty()) named.bad("extract_to", cat("'", e.extract_to, "' ", problem));
  e.strip_components = named.integer("strip_components", 0, 0, 16);
  if (e.archive == Archive::kNone && e.strip_components != 0)
    named.bad("strip_components", "applies only to archives (archive: zip or tar.gz)");
  e.expect = named.string_list("expect");
  for (const auto& p : e.expect) {
    const std::string why = relative_path_problem(p, false);
    if (!why.empty()) named.bad("expect", cat("'", p, "' ", why));
  }
  return e;
}

Derived parse_derived(const YAML::Node& node, const std::string& where) {
  Map m(node, where);
  m.reject_unknown({"name", "group", "step", "source", "dev_ids", "out"});
  Derived d;
  d.line = line_of(node);
  d.name = m.string("name", true);
  const Map named(node, cat(where, " (", d.name, ")"));
  if (!valid_name(d.name)) named.bad("name", cat("'", d.name, "' may hold only letters, digits, '.', '_' and '-'"));
  d.group = named.string("group", false);
  d.step = named.string("step", true);
  if (d.step != "mrpc_split") named.bad("step", cat("'", d.step, "' is not a known step (known: mrpc_split)"));
  d.source = named.string("source", true);
  d.dev_ids = named.string("dev_ids", true);
  d.out = named.string("out", true);
  const std::string problem = relative_path_problem(d.out, false);
  if (!problem.empty()) named.bad("out", cat("'", d.out, "' ", problem));
  return d;
}

}  // namespace

const char* archive_name(Archive archive) {
  switch (archive) {
    case Archive::kNone: return "none";
    case Archive::kZip: return "zip";
    case Archive::kTarGz: return "tar.gz";
  }
  return "?";
}

const Entry* Manifest::find_entry(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

Manifest parse_manifest(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(cat(source, ": invalid YAML at line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ", e.msg));
  }
  MCD_CHECK(root.IsMap(), source, ": a manifest is a mapping with the keys manifest_version, entries and derived");
  const Map top(root, source);
  top.reject_unknown({"manifest_version", "entries", "derived"});
  const int version = top.integer("manifest_version", -1, -1, 1000);
  MCD_CHECK(version == 1, source, ": key 'manifest_version' must be 1 (this tool reads version 1)");
  Manifest m;
  m.path = source;
  const YAML::Node entries = root["entries"];
  MCD_CHECK(entries && entries.IsSequence() && entries.size() > 0, source,
            ": key 'entries' must be a non-empty list", line_suffix(entries ? entries : root));
  for (size_t i = 0; i < entries.size(); ++i)
    m.entries.push_back(parse_entry(entries[i], cat(source, ": entries[", i, "]")));
  if (const YAML::Node derived = root["derived"]; derived && !derived.IsNull()) {
    MCD_CHECK(derived.IsSequence(), source, ": key 'derived' must be a list", line_suffix(derived));
    for (size_t i = 0; i < derived.size(); ++i)
      m.derived.push_back(parse_derived(derived[i], cat(source, ": derived[", i, "]")));
  }
  // Names are unique across entries and derived steps, and never equal a group's name.
  std::set<std::string> names, groups;
  for (const auto& e : m.entries) {
    MCD_CHECK(names.insert(e.name).second, source, ": entries: name '", e.name, "' is used twice (line ", e.line, ")");
    if (!e.group.empty()) groups.insert(e.group);
  }
  for (const auto& d : m.derived) {
    MCD_CHECK(names.insert(d.name).second, source, ": derived: name '", d.name, "' is used twice (line ", d.line, ")");
    if (!d.group.empty()) groups.insert(d.group);
    for (const auto& [key, input] : {std::pair<const char*, const std::string*>{"source", &d.source},
                                     {"dev_ids", &d.dev_ids}}) {
      const Entry* e = m.find_entry(*input);
      MCD_CHECK(e, source, ": derived (", d.name, "): key '", key, "': no entry is named '", *input, "'");
      MCD_CHECK(e->archive == Archive::kNone, source, ": derived (", d.name, "): key '", key, "': entry '",
                *input, "' must be a plain file (archive: none)");
    }
  }
  for (const auto& g : groups)
    MCD_CHECK(!names.count(g), source, ": group '", g, "' has the same name as an entry");
  return m;
}

Manifest load_manifest(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MCD_CHECK(f.good(), path, ": cannot open the download manifest");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_manifest(ss.str(), path);
}

Selection select(const Manifest& manifest, const std::vector<std::string>& only) {
  Selection s;
  std::set<std::string> want_entries, want_derived;
  if (only.empty()) {
    for (const auto& e : manifest.entries) want_entries.insert(e.name);
    for (const auto& d : manifest.derived) want_derived.insert(d.name);
  }
  for (const auto& name : only) {
    bool found = false;
    for (const auto& e : manifest.entries)
      if (e.name == name || e.group == name) {
        want_entries.insert(e.name);
        found = true;
      }
    for (const auto& d : manifest.derived)
      if (d.name == name || d.group == name) {
        want_derived.insert(d.name);
        found = true;
      }
    if (!found) {
      std::set<std::string> known;
      for (const auto& e : manifest.entries) {
        known.insert(e.name);
        if (!e.group.empty()) known.insert(e.group);
      }
      for (const auto& d : manifest.derived) {
        known.insert(d.name);
        if (!d.group.empty()) known.insert(d.group);
      }
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(cat(manifest.path, ": --only: no entry or group is named '", name, "' (there are: ", list, ")"));
    }
  }
  for (const auto& d : manifest.derived)
    if (want_derived.count(d.name)) {
      s.derived.push_back(&d);
      want_entries.insert(d.source);
      want_entries.insert(d.dev_ids);
    }
  for (const auto& e : manifest.entries)
    if (want_entries.count(e.name)) s.entries.push_back(&e);
  return s;
}

}  // namespace mcd::data::download
