// One resumable transfer into a partial file, through libcurl (HTTP, HTTPS, file://).
// Used by download.h; torch-free. docs/data.md, "Downloading WikiText-103 and GLUE", says
// when a partial file is resumed and when it is discarded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "util/error.h"

namespace mcd::data::download {

// A failed transfer. `retryable` is true for network failures and HTTP 5xx/408/429 (the
// partial file is kept and the next attempt resumes it), false for answers that another
// attempt would get again (HTTP 404, a refused range that cannot be repaired).
class TransferError : public Error {
 public:
  TransferError(const std::string& message, bool retryable, int64_t received = 0)
      : Error(message), retryable(retryable), received(received) {}
  bool retryable;
  int64_t received;  // bytes received over the network before the failure
};

struct FetchOptions {
  long connect_timeout_s = 30;
  // A transfer that receives nothing for this long is aborted (and may be retried).
  long stall_timeout_s = 120;
  // Called often during the transfer: bytes of the file present so far (the partial file's
  // earlier bytes included), the file's total size (-1 while unknown) and the bytes received by
  // the current request.
  std::function<void(int64_t done, int64_t total, int64_t received)> progress;
};

struct FetchOutcome {
  int64_t size = 0;        // the complete file's size
  int64_t received = 0;    // bytes received over the network by this call
  int64_t resumed_from = 0;  // > 0: the transfer continued a partial file of this many bytes
  bool restarted = false;    // a partial file was discarded (no range support, or content changed)
  std::string restart_reason;
};

// Downloads `url` into `part_path`. When `part_path` already holds bytes from an earlier call for
// the same URL (recorded in "<part_path>.state", with the server's ETag / Last-Modified and the
// total size), the request asks for the rest (Range, and If-Range with the validator). The
// answer decides:
//   206 with the expected start and total -> the bytes are appended (resumed);
//   200 (no range support, or If-Range saw the content change) -> the partial bytes are discarded
//       and the file is written from the start (restarted);
//   206 with another start or total, or 416 for a partial that is not the whole file -> the
//       partial is discarded and a fresh request made.
// file:// URLs are always fetched whole. On success the state file is removed and the partial
// file holds exactly the resource; on failure the partial file and its state stay for the next
// call and TransferError is thrown.
FetchOutcome fetch_to_file(const std::string& url, const std::string& part_path, const FetchOptions& options);

// "libcurl/7.88.1 OpenSSL/3.0.x ..." — for the summary and bug reports.
std::string http_client_version();

}  // namespace mcd::data::download
