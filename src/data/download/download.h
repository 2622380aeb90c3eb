// `mamba-codesign data download`: fetches the entries of a manifest (manifest.h) into a
// destination folder, checks them by sha256, unpacks them into the layout the readers expect,
// and keeps a record so that a later run skips what is already there and verified.
// Torch-free; libcurl does the transfers (http.h). docs/data.md, "Downloading WikiText-103 and
// GLUE", has the rules; in short:
//
//  - Each download goes to a partial file, "<final>.part", and is renamed to its final name only
//    when complete and verified. Archives are kept in "<dest>/.downloads/<name>.<ext>" (so a
//    later run can verify them and re-extract without the network); a plain file (archive none)
//    is its own final file "<dest>/<extract_to>".
//  - sha256: the manifest's value when given; otherwise the one recorded by the first download
//    in "<dest>/download_record.json"; otherwise (the first download) the file's own, which is
//    then recorded. A download whose hash differs from the expected one is deleted and the entry
//    fails, naming the entry and both hashes.
//  - An entry whose file is present, verified and extracted (its `expect` files exist) is skipped
//    without a request. An interrupted transfer leaves its partial file, which the next attempt
//    (a retry in this run, or the next run) resumes with an HTTP range request.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/download/manifest.h"

namespace mcd::data::download {

struct Progress {
  std::string entry;
  int64_t done = 0;    // bytes of the file present
  int64_t total = -1;  // -1: unknown
  double bytes_per_s = 0;  // this run's average for the entry
  double eta_s = -1;       // -1: unknown
  bool finished = false;   // the last report for this transfer
};

struct Options {
  std::string dest;               // destination folder (created when missing)
  std::vector<std::string> only;  // entry, derived-step or group names; empty = all
  int retries = 2;                // further attempts after a failed transfer, each resuming
  double retry_delay_s = 2;       // before the first retry; doubled for each further one
  long connect_timeout_s = 30;
  long stall_timeout_s = 120;     // abort a transfer that receives nothing for this long
  double progress_interval_s = 0.5;  // at most one progress report per entry this often
  std::function<void(const Progress&)> progress;   // null: no reports
  std::function<void(const std::string&)> log;     // one line per event; null: silent
};

struct EntryResult {
  std::string name;
  // "downloaded", "skipped" (present and verified), "extracted" (the kept download was verified
  // and unpacked again), "built" (a derived step), "failed".
  std::string status;
  int64_t bytes = 0;        // the download's size
  int64_t received = 0;     // bytes received over the network in this run
  int64_t resumed_from = 0;  // > 0: a partial file of this many bytes was continued
  bool restarted = false;    // a partial file was discarded
  std::string sha256;
  std::string sha256_source;  // "manifest", "record" (verified against the record), "new" (recorded now)
  double seconds = 0;
  std::vector<std::string> placed;  // what this run put into dest (relative paths)
  std::string error;                // when failed
};

struct Summary {
  std::string dest, manifest;
  std::vector<EntryResult> entries;  // the selected entries, then the derived steps
  int64_t received = 0;
  int failed = 0;
  nlohmann::json to_json() const;  // one object: {"dest","manifest","received_bytes","failed","entries":[...]}
};

// Processes every selected entry, then every selected derived step. A failing entry does not
// stop the others; its error is in its result and the summary counts it. Problems with the
// manifest selection, the destination or the record file throw mcd::Error.
Summary download(const Manifest& manifest, const Options& options);

// Throws mcd::Error listing each failed entry's error (one per line) when summary.failed > 0.
void throw_if_failed(const Summary& summary);

// "<dest>/download_record.json".
std::string record_path(const std::string& dest);
// Where an entry's download is kept: "<dest>/.downloads/<name>.zip|.tar.gz", or for a plain file
// "<dest>/<extract_to>".
std::string download_path(const std::string& dest, const Entry& entry);

// The `mrpc_split` step on files: `source` in MRPC's layout (header `Quality #1 ID #2 ID #1
// String #2 String`, 5 tab-separated columns), `dev_ids` with lines "<#1 ID>\t<#2 ID>". Writes
// `<out_dir>/train.tsv` (rows whose id pair is not in dev_ids) and `<out_dir>/dev.tsv` (the
// others), both starting with the source's header, each written atomically. Returns
// {"train": n, "dev": n, "dev_ids_not_found": n}. Rows with another column count are errors
// naming the file and line.
nlohmann::json mrpc_split(const std::string& source, const std::string& dev_ids, const std::string& out_dir);

}  // namespace mcd::data::download
