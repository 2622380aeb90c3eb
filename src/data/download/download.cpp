// The download driver (download.h): per entry, verify what is there, else fetch (with retries
// that resume), verify, rename into place, record, extract; then the derived steps.
#include "data/download/download.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "data/download/archive.h"
#include "data/download/http.h"
#include "data/tokenizer/sha256.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::data::download {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kRecordVersion = 1;

std::string now_utc() {
  const time_t t = ::time(nullptr);
  struct tm tm;
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// download_record.json: {"format_version": 1, "entries": {name: {...}}, "derived": {name: {...}}}.
class Record {
 public:
  explicit Record(std::string path) : path_(std::move(path)) {
    j_ = json{{"format_version", kRecordVersion}, {"entries", json::object()}, {"derived", json::object()}};
    if (!fs::exists(path_)) return;
    std::ifstream f(path_, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    json j;
    try {
      j = json::parse(ss.str());
    } catch (const json::exception& e) {
      fail(cat(path_, ": not a valid download record (", e.what(), "); delete it to download and record again"));
    }
    MCD_CHECK(j.is_object() && j.value("format_version", 0) == kRecordVersion && j.contains("entries") &&
                  j["entries"].is_object(),
              path_, ": not a download record of format_version ", kRecordVersion,
              "; delete it to download and record again");
    if (!j.contains("derived") || !j["derived"].is_object()) j["derived"] = json::object();
    j_ = std::move(j);
  }

  const json* entry(const std::string& name) const { return find(j_["entries"], name); }
  const json* derived(const std::string& name) const { return find(j_["derived"], name); }
  void set_entry(const std::string& name, json value) { set("entries", name, std::move(value)); }
  void set_derived(const std::string& name, json value) { set("derived", name, std::move(value)); }

 private:
  static const json* find(const json& table, const std::string& name) {
    const auto it = table.find(name);
    return it == table.end() || !it->is_object() ? nullptr : &*it;
  }
  void set(const char* table, const std::string& name, json value) {
    j_[table][name] = std::move(value);
    write_text_atomic(path_, j_.dump(2) + "\n");
  }
  std::string path_;
  json j_;
};

std::string extension_of(Archive a) {
  switch (a) {
    case Archive::kZip: return ".zip";
    case Archive::kTarGz: return ".tar.gz";
    case Archive::kNone: return "";
  }
  return "";
}

std::vector<std::string> missing_expected(const std::string& dest, const Entry& e) {
  std::vector<std::string> missing;
  for (const auto& p : e.expect)
    if (!fs::exists(fs::join(dest, p))) missing.push_back(p);
  return missing;
}

std::string list_of(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// Reports progress for one transfer at most every `interval` seconds (and once at the end).
class ProgressReporter {
 public:
  ProgressReporter(const Options& o, std::string entry)
      : o_(o), entry_(std::move(entry)), start_(Clock::now()), last_(start_) {}
  void update(int64_t done, int64_t total, int64_t received, bool finished = false) {
    if (!o_.progress) return;
    const auto now = Clock::now();
    if (!finished && std::chrono::duration<double>(now - last_).count() < o_.progress_interval_s) return;
    last_ = now;
    Progress p;
    p.entry = entry_;
    p.done = done;
    p.total = total;
    const double dt = std::chrono::duration<double>(now - start_).count();
    p.bytes_per_s = dt > 0 ? double(received) / dt : 0;
    p.eta_s = (total >= 0 && p.bytes_per_s > 0) ? double(total - done) / p.bytes_per_s : -1;
    p.finished = finished;
    o_.progress(p);
  }

 private:
  const Options& o_;
  std::string entry_;
  Clock::time_point start_, last_;
};

void log_line(const Options& o, const std::string& line) {
  if (o.log) o.log(line);
}

// Fetches the entry into "<final>.part" with retries; returns the last attempt's outcome (the part
// is complete), with `received` counting every attempt's bytes.
FetchOutcome fetch_with_retries(const Entry& e, const std::string& part, const Options& o) {
  FetchOptions fo;
  fo.connect_timeout_s = o.connect_timeout_s;
  fo.stall_timeout_s = o.stall_timeout_s;
  double delay = o.retry_delay_s;
  int64_t received_before = 0;  // by the failed attempts
  for (int attempt = 0;; ++attempt) {
    ProgressReporter reporter(o, e.name);
    fo.progress = [&](int64_t done, int64_t size, int64_t received) { reporter.update(done, size, received); };
    try {
      FetchOutcome out = fetch_to_file(e.url, part, fo);
      reporter.update(out.size, out.size, out.received, true);
      out.received += received_before;
      return out;
    } catch (const TransferError& err) {
      if (!err.retryable || attempt >= o.retries)
        fail(cat("entry '", e.name, "': ", err.what(),
                 err.retryable && o.retries > 0 ? cat(" (gave up after ", attempt + 1, " attempts)") : std::string()));
      received_before += err.received;
      log_line(o, cat("entry '", e.name, "': ", err.what(), "; retrying in ", delay, " s (retry ", attempt + 1,
                      " of ", o.retries, ")"));
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      delay *= 2;
    }
  }
}

json entry_record(const Entry& e, const std::string& sha, int64_t bytes, const std::string& file, bool extracted) {
  return json{{"url", e.url},
              {"sha256", sha},
              {"bytes", bytes},
              {"file", file},
              {"archive", archive_name(e.archive)},
              {"extract_to", e.extract_to},
              {"strip_components", e.strip_components},
              {"extracted", extracted},
              {"recorded_at", now_utc()}};
}

// Unpacks a verified download and checks the expected files.
void unpack(const Entry& e, const std::string& dest, const std::string& file, EntryResult& r) {
  if (e.archive != Archive::kNone)
    r.placed = extract_archive(file, e.archive, dest, e.extract_to, e.strip_components, e.name);
  const auto missing = missing_expected(dest, e);
  if (!missing.empty()) {
    const std::string where = e.extract_to == "." ? dest : fs::join(dest, e.extract_to);
    std::vector<std::string> there;
    if (fs::is_directory(where)) there = fs::list_dir(where);
    fail(cat("entry '", e.name, "': after unpacking, the expected files are missing: ", list_of(missing), "; ",
             where, " holds: ", there.empty() ? "(nothing)" : list_of(there),
             " (check extract_to and strip_components in the manifest)"));
  }
}

void process_entry(const Entry& e, const std::string& dest, Record& record, const Options& o, EntryResult& r) {
  const std::string file = download_path(dest, e);
  const std::string rel_file = file.substr(dest.size() + 1);
  const json* rec = record.entry(e.name);
  std::string recorded_sha;
  if (rec && rec->value("url", "") == e.url) {
    recorded_sha = rec->value("sha256", "");
  } else if (rec) {
    log_line(o, cat("entry '", e.name, "': its URL changed since ", record_path(dest),
                    " was written; the recorded sha256 is not used"));
  }
  const std::string expected = !e.sha256.empty() ? e.sha256 : recorded_sha;
  r.sha256_source = !e.sha256.empty() ? "manifest" : (!recorded_sha.empty() ? "record" : "new");
  // The record says this download was unpacked with the manifest's current settings.
  const bool unpacked = rec && rec->value("extracted", false) && rec->value("sha256", "") == expected &&
                        rec->value("archive", "") == archive_name(e.archive) &&
                        rec->value("extract_to", "") == e.extract_to &&
                        rec->value("strip_components", -1) == e.strip_components;

  if (fs::is_regular_file(file)) {
    const std::string actual = sha256_file_hex(file);
    if (expected.empty() || actual == expected) {
      r.sha256 = actual;
      r.bytes = fs::file_size(file);
      if (e.archive == Archive::kNone || (unpacked && missing_expected(dest, e).empty())) {
        if (e.archive == Archive::kNone) unpack(e, dest, file, r);  // checks `expect`
        r.status = "skipped";
        if (!rec || rec->value("sha256", "") != actual || !rec->value("extracted", false))
          record.set_entry(e.name, entry_record(e, actual, r.bytes, rel_file, true));
        return;
      }
      record.set_entry(e.name, entry_record(e, actual, r.bytes, rel_file, false));
      unpack(e, dest, file, r);
      record.set_entry(e.name, entry_record(e, actual, r.bytes, rel_file, true));
      r.status = "extracted";
      return;
    }
    log_line(o, cat("entry '", e.name, "': ", file, " has sha256 ", actual, " but ", expected, " is expected (",
                    r.sha256_source, "); downloading it again"));
    fs::remove_file(file);
  }

  fs::make_dirs(fs::parent_path(file));
  const std::string part = file + ".part";
  const FetchOutcome out = fetch_with_retries(e, part, o);
  r.received = out.received;
  r.resumed_from = out.resumed_from;
  r.restarted = out.restarted;
  if (out.restarted) log_line(o, cat("entry '", e.name, "': partial download discarded: ", out.restart_reason));
  if (out.resumed_from > 0) log_line(o, cat("entry '", e.name, "': resumed from byte ", out.resumed_from));
  const std::string actual = sha256_file_hex(part);
  if (!expected.empty() && actual != expected) {
    fs::remove_file(part);
    fs::remove_file(part + ".state");
    fail(cat("entry '", e.name, "': sha256 mismatch: expected ", expected,
             r.sha256_source == "manifest" ? " (from the manifest)" : cat(" (recorded in ", record_path(dest), ")"),
             ", got ", actual, " for ", out.size, " bytes from ", e.url, "; the download was deleted"));
  }
  fs::rename_path(part, file);
  r.sha256 = actual;
  r.bytes = out.size;
  r.status = "downloaded";
  record.set_entry(e.name, entry_record(e, actual, r.bytes, rel_file, false));
  unpack(e, dest, file, r);
  if (e.archive == Archive::kNone) r.placed = {rel_file};
  record.set_entry(e.name, entry_record(e, actual, r.bytes, rel_file, true));
}

void process_derived(const Derived& d, const Manifest& m, const std::string& dest, Record& record,
                     const std::vector<EntryResult>& entries, EntryResult& r) {
  const Entry* source = m.find_entry(d.source);
  const Entry* dev_ids = m.find_entry(d.dev_ids);
  std::string shas[2];
  int i = 0;
  for (const Entry* e : {source, dev_ids}) {
    const EntryResult* er = nullptr;
    for (const auto& x : entries)
      if (x.name == e->name) er = &x;
    MCD_CHECK(er && er->status != "failed", "needs entry '", e->name, "', which ",
              er ? "failed" : "was not processed");
    shas[i++] = er->sha256;
  }
  const std::string out = fs::join(dest, d.out);
  const json* rec = record.derived(d.name);
  const bool done = rec && rec->value("source_sha256", "") == shas[0] && rec->value("dev_ids_sha256", "") == shas[1] &&
                    fs::exists(fs::join(out, "train.tsv")) && fs::exists(fs::join(out, "dev.tsv"));
  if (done) {
    r.status = "skipped";
    return;
  }
  const json counts = mrpc_split(download_path(dest, *source), download_path(dest, *dev_ids), out);
  record.set_derived(d.name, json{{"step", d.step},
                                  {"out", d.out},
                                  {"source_sha256", shas[0]},
                                  {"dev_ids_sha256", shas[1]},
                                  {"counts", counts},
                                  {"recorded_at", now_utc()}});
  r.status = "built";
  r.placed = {d.out + "/train.tsv", d.out + "/dev.tsv"};
}

// Lines of a text file without their ending (CRLF accepted); `bom` reports a leading BOM.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MCD_CHECK(f.good(), path, ": cannot open");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> split_tabs(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t tab = s.find('\t', start);
    out.push_back(s.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string record_path(const std::string& dest) { return fs::join(dest, "download_record.json"); }

std::string download_path(const std::string& dest, const Entry& e) {
  if (e.archive == Archive::kNone) return fs::join(dest, e.extract_to);
  return fs::join(fs::join(dest, ".downloads"), e.name + extension_of(e.archive));
}

nlohmann::json mrpc_split(const std::string& source, const std::string& dev_ids, const std::string& out_dir) {
  std::set<std::pair<std::string, std::string>> dev;
  const auto id_lines = read_lines(dev_ids);
  for (size_t i = 0; i < id_lines.size(); ++i) {
    std::string line = id_lines[i];
    if (i == 0 && line.rfind("\xEF\xBB\xBF", 0) == 0) line = line.substr(3);
    if (line.empty()) continue;
    const auto f = split_tabs(line);
    if (i == 0 && (f.size() != 2 || !all_digits(f[0]))) continue;  // a header line
    MCD_CHECK(f.size() == 2 && all_digits(f[0]) && all_digits(f[1]), dev_ids, ":", i + 1,
              ": expected two tab-separated ids");
    dev.insert({f[0], f[1]});
  }
  const auto lines = read_lines(source);
  MCD_CHECK(!lines.empty(), source, ": empty file");
  MCD_CHECK(split_tabs(lines[0]).size() == 5, source, ":1: expected the header 'Quality #1 ID #2 ID #1 String "
                                                      "#2 String' (5 tab-separated columns)");
  std::string train = lines[0] + "\n", dev_out = lines[0] + "\n";
  int64_t n_train = 0, n_dev = 0;
  std::set<std::pair<std::string, std::string>> found;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto f = split_tabs(lines[i]);
    MCD_CHECK(f.size() == 5, source, ":", i + 1, ": expected 5 tab-separated columns, found ", f.size());
    const std::pair<std::string, std::string> key{f[1], f[2]};
    if (dev.count(key)) {
      dev_out += lines[i] + "\n";
      ++n_dev;
      found.insert(key);
    } else {
      train += lines[i] + "\n";
      ++n_train;
    }
  }
  fs::make_dirs(out_dir);
  write_text_atomic(fs::join(out_dir, "train.tsv"), train);
  write_text_atomic(fs::join(out_dir, "dev.tsv"), dev_out);
  return json{{"train", n_train}, {"dev", n_dev}, {"dev_ids_not_found", int64_t(dev.size() - found.size())}};
}

nlohmann::json Summary::to_json() const {
  json list = json::array();
  for (const auto& e : entries) {
    json j{{"name", e.name}, {"status", e.status}};
    if (!e.sha256.empty()) {
      j["sha256"] = e.sha256;
      j["sha256_source"] = e.sha256_source;
      j["bytes"] = e.bytes;
    }
    if (e.received) j["received_bytes"] = e.received;
    if (e.resumed_from) j["resumed_from"] = e.resumed_from;
    if (e.restarted) j["restarted"] = true;
    if (!e.placed.empty()) j["placed"] = e.placed;
    if (!e.error.empty()) j["error"] = e.error;
    j["seconds"] = std::round(e.seconds * 1000) / 1000;
    list.push_back(std::move(j));
  }
  return json{{"dest", dest}, {"manifest", manifest}, {"received_bytes", received}, {"failed", failed},
              {"entries", std::move(list)}};
}

void throw_if_failed(const Summary& summary) {
  if (summary.failed == 0) return;
  std::string msg = cat(summary.failed, " of ", summary.entries.size(), " downloads failed:");
  for (const auto& e : summary.entries)
    if (e.status == "failed") msg += "\n  " + e.error;
  fail(msg);
}

Summary download(const Manifest& manifest, const Options& options) {
  MCD_CHECK(!options.dest.empty(), "data download: no destination folder (--dest)");
  const Selection selection = select(manifest, options.only);
  std::string dest = options.dest;
  while (dest.size() > 1 && dest.back() == '/') dest.pop_back();
  fs::make_dirs(dest);
  Record record(record_path(dest));
  Summary s;
  s.dest = dest;
  s.manifest = manifest.path;
  for (const Entry* e : selection.entries) {
    EntryResult r;
    r.name = e->name;
    const auto t0 = Clock::now();
    try {
      process_entry(*e, dest, record, options, r);
    } catch (const Error& err) {  // reported in the summary (and by throw_if_failed)
      r.status = "failed";
      r.error = err.what();
    }
    r.seconds = seconds_since(t0);
    s.received += r.received;
    s.failed += r.status == "failed";
    s.entries.push_back(std::move(r));
  }
  const std::vector<EntryResult> fetched = s.entries;
  for (const Derived* d : selection.derived) {
    EntryResult r;
    r.name = d->name;
    const auto t0 = Clock::now();
    try {
      process_derived(*d, manifest, dest, record, fetched, r);
    } catch (const Error& err) {
      r.status = "failed";
      r.error = cat("derived '", d->name, "': ", err.what());
    }
    r.seconds = seconds_since(t0);
    s.failed += r.status == "failed";
    s.entries.push_back(std::move(r));
  }
  return s;
}

}  // namespace mcd::data::download
