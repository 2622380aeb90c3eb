// The download manifest of `mamba-codesign data download`: which files to fetch, from where, how
// to check them and where their contents go under the destination folder. A YAML file the user
// may edit (the shipped one is configs/data_manifest.yaml); docs/data.md, "Downloading
// WikiText-103 and GLUE", describes the keys.
//
// Reading is strict: an unknown key, a missing required key, a value of the wrong kind, a name
// used twice or a path that leaves the destination folder is an mcd::Error naming the file, the
// entry, the key and (where yaml-cpp knows it) the line.
#pragma once

#include <string>
#include <vector>

namespace mcd::data::download {

enum class Archive { kNone, kZip, kTarGz };

// "none", "zip", "tar.gz".
const char* archive_name(Archive archive);

// One file to download.
struct Entry {
  std::string name;   // [A-Za-z0-9._-]+, unique in the manifest; names the download's files
  std::string group;  // optional; `--only GROUP` selects every entry of the group
  std::string url;    // http://, https:// or file://
  std::string sha256;  // 64 lower-case hex digits; empty: not pinned (recorded at first download)
  Archive archive = Archive::kNone;
  // Relative to the destination folder: the folder an archive's members go to ("." = the folder
  // itself), or, for archive none, the path of the downloaded file itself.
  std::string extract_to;
  int strip_components = 0;  // leading folders removed from the archive's member paths
  std::vector<std::string> expect;  // files (relative to the destination) that must exist after
  int line = 0;                     // 1-based line of the entry in the manifest (0 unknown)
};

// A file set built from downloaded entries. The one step there is, `mrpc_split`, does what
// GLUE's own download script did for MRPC (whose files GLUE could not host): it splits
// MRPC's train file (`source`) into `<out>/train.tsv` and `<out>/dev.tsv` by GLUE's dev ids.
struct Derived {
  std::string name;  // unique among entries and derived steps
  std::string group;
  std::string step;     // "mrpc_split"
  std::string source;   // entry names (archive none)
  std::string dev_ids;
  std::string out;      // folder relative to the destination
  int line = 0;
};

struct Manifest {
  std::string path;  // the file read (names it in messages)
  std::vector<Entry> entries;
  std::vector<Derived> derived;

  const Entry* find_entry(const std::string& name) const;  // null when absent
};

// Reads and validates a manifest file.
Manifest load_manifest(const std::string& path);
// The same on YAML text already in memory; `source` stands in for the path.
Manifest parse_manifest(const std::string& yaml_text, const std::string& source);

// What `only` (entry names, derived-step names or group names) selects; empty = everything.
// A derived step brings in the entries it reads. An unknown name is an mcd::Error listing the
// names and groups there are. Entries keep the manifest's order.
struct Selection {
  std::vector<const Entry*> entries;
  std::vector<const Derived*> derived;
};
Selection select(const Manifest& manifest, const std::vector<std::string>& only);

}  // namespace mcd::data::download
