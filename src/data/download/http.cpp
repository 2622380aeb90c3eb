// The resumable transfer of http.h on libcurl's easy interface. A transfer writes into the
// partial file through a POSIX descriptor; what the server answered decides, at the first body
// byte, whether the bytes are appended (206), the partial file is rewritten from the start (200)
// or the request is dropped and made again without a range (a 206 that does not fit).
#include "data/download/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/atomic_file.h"
#include "util/fs.h"

namespace mcd::data::download {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool is_http(const std::string& url) { return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0; }

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// What the partial file was fetched as (kept in "<part>.state" between calls).
struct PartState {
  std::string url, etag, last_modified;
  int64_t total = -1;
};

PartState load_state(const std::string& path) {
  PartState s;
  std::ifstream f(path, std::ios::binary);
  if (!f) return s;
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    const auto j = nlohmann::json::parse(ss.str());
    s.url = j.value("url", "");
    s.etag = j.value("etag", "");
    s.last_modified = j.value("last_modified", "");
    s.total = j.value("total", int64_t(-1));
  } catch (const nlohmann::json::exception&) {
    return PartState{};  // unreadable: the partial file cannot be trusted, so it is not resumed
  }
  return s;
}

void save_state(const std::string& path, const PartState& s) {
  write_text_atomic(path, nlohmann::json{{"url", s.url}, {"etag", s.etag}, {"last_modified", s.last_modified},
                                         {"total", s.total}}
                              .dump() +
                              "\n");
}

// "bytes START-END/TOTAL" or "bytes */TOTAL" -> start (-1 for '*') and total (-1 for '*').
void parse_content_range(const std::string& value, int64_t& start, int64_t& total) {
  start = total = -1;
  const std::string v = lower(trim(value));
  if (v.rfind("bytes", 0) != 0) return;
  const std::string rest = trim(v.substr(5));
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) return;
  const std::string range = rest.substr(0, slash), size = rest.substr(slash + 1);
  if (range != "*") start = std::strtoll(range.c_str(), nullptr, 10);
  if (size != "*") total = std::strtoll(size.c_str(), nullptr, 10);
}

// One request: what was asked, what came back, what was written.
struct Request {
  int fd = -1;
  int64_t offset = 0;  // bytes in the file before this request (0 after a restart)
  bool ranged = false;
  bool http = true;
  PartState* state = nullptr;
  std::string state_path;
  const FetchOptions* options = nullptr;
  // the response (the last one, after redirects)
  long status = 0;
  std::string etag, last_modified, content_range;
  int64_t content_length = -1;
  // what happened
  bool body_started = false;
  bool mismatch = false;  // a 206 that does not continue the partial file
  std::string mismatch_reason;
  bool error_status = false;
  bool restarted = false;
  std::string restart_reason;
  int write_errno = 0;
  int64_t written = 0;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& r = *static_cast<Request*>(user);
  const std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (e.g. after a redirect): forget the last one
    r.status = 0;
    const size_t sp = line.find(' ');
    if (sp != std::string::npos) r.status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
    r.etag.clear();
    r.last_modified.clear();
    r.content_range.clear();
    r.content_length = -1;
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  const std::string name = lower(trim(line.substr(0, colon)));
  const std::string value = trim(line.substr(colon + 1));
  if (name == "etag") r.etag = value;
  else if (name == "last-modified") r.last_modified = value;
  else if (name == "content-range") r.content_range = value;
  else if (name == "content-length") r.content_length = std::strtoll(value.c_str(), nullptr, 10);
  return size * n;
}

// Called at the first body byte: decides what the body is. Returns false to abort the transfer.
bool start_body(Request& r) {
  r.body_started = true;
  if (!r.http) {  // file://: the whole file, from the start
    r.state->total = r.content_length;
    return true;
  }
  if (r.status == 206) {
    int64_t start = -1, total = -1;
    parse_content_range(r.content_range, start, total);
    if (!r.ranged || start != r.offset) {
      r.mismatch = true;
      r.mismatch_reason = cat("the server sent bytes from ", start, " (Content-Range '", r.content_range,
                              "') but the partial file holds ", r.offset);
      return false;
    }
    if (r.state->total >= 0 && total >= 0 && total != r.state->total) {
      r.mismatch = true;
      r.mismatch_reason = cat("the file's size changed from ", r.state->total, " to ", total, " bytes");
      return false;
    }
    if (total >= 0) r.state->total = total;
    if (!r.etag.empty()) r.state->etag = r.etag;
    if (!r.last_modified.empty()) r.state->last_modified = r.last_modified;
    save_state(r.state_path, *r.state);
    return true;
  }
  if (r.status == 200) {
    if (r.offset > 0) {  // the server ignored the range or If-Range saw new content
      r.restarted = true;
      r.restart_reason = r.ranged ? "the server answered the range request with the whole file (no range "
                                    "support, or the content changed)"
                                  : "the partial file could not be resumed";
      if (::ftruncate(r.fd, 0) != 0 || ::lseek(r.fd, 0, SEEK_SET) != 0) {
        r.write_errno = errno;
        return false;
      }
      r.offset = 0;
    }
    r.state->etag = r.etag;
    r.state->last_modified = r.last_modified;
    r.state->total = r.content_length;
    save_state(r.state_path, *r.state);
    return true;
  }
  r.error_status = true;  // the body is an error page: read and dropped
  return true;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& r = *static_cast<Request*>(user);
  const size_t bytes = size * n;
  if (!r.body_started && !start_body(r)) return 0;
  if (r.error_status) return bytes;
  size_t done = 0;
  while (done < bytes) {
    const ssize_t w = ::write(r.fd, data + done, bytes - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      r.write_errno = errno;
      return 0;
    }
    done += size_t(w);
  }
  r.written += int64_t(bytes);
  return bytes;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto& r = *static_cast<Request*>(user);
  if (r.error_status || !r.options->progress || !r.body_started) return 0;
  r.options->progress(r.offset + int64_t(dlnow), dltotal > 0 ? r.offset + int64_t(dltotal) : -1, int64_t(dlnow));
  return 0;
}

struct CurlHandle {
  CURL* h = curl_easy_init();
  curl_slist* headers = nullptr;
  ~CurlHandle() {
    if (headers) curl_slist_free_all(headers);
    if (h) curl_easy_cleanup(h);
  }
};

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int64_t size_of_fd(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? int64_t(st.st_size) : -1;
}

}  // namespace

std::string http_client_version() { return curl_version(); }

FetchOutcome fetch_to_file(const std::string& url, const std::string& part_path, const FetchOptions& options) {
  global_init();
  const std::string state_path = part_path + ".state";
  FetchOutcome out;
  Fd file{::open(part_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)};
  if (file.fd < 0) throw TransferError(cat(part_path, ": cannot open for writing: ", std::strerror(errno)), false);
  int64_t have = size_of_fd(file.fd);
  PartState state = load_state(state_path);
  const bool http = is_http(url);
  // A partial file is resumed only when it was fetched from this URL over HTTP(S).
  if (have > 0 && (!http || state.url != url)) {
    out.restarted = true;
    out.restart_reason = state.url.empty() ? "no record of where the partial file came from"
                                           : (state.url != url ? "the URL changed" : "file:// is never resumed");
    if (::ftruncate(file.fd, 0) != 0) throw TransferError(cat(part_path, ": cannot truncate: ", std::strerror(errno)), false);
    have = 0;
  }
  if (have == 0) state = PartState{};
  state.url = url;

  bool complete = false;
  for (int request = 0; request < 3; ++request) {
    if (::lseek(file.fd, have, SEEK_SET) != have)
      throw TransferError(cat(part_path, ": cannot seek: ", std::strerror(errno)), false);
    Request r;
    r.fd = file.fd;
    r.offset = have;
    r.ranged = http && have > 0;
    r.http = http;
    r.state = &state;
    r.state_path = state_path;
    r.options = &options;
    CurlHandle c;
    if (!c.h) throw TransferError("libcurl: cannot create a transfer handle", false);
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c.h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c.h, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c.h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c.h, CURLOPT_USERAGENT, "mamba-codesign-data-download/1");
    curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
    curl_easy_setopt(c.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c.h, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_s);
    curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c.h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c.h, CURLOPT_XFERINFODATA, &r);
    curl_easy_setopt(c.h, CURLOPT_NOPROGRESS, 0L);
    const std::string range = cat(have, "-");
    if (r.ranged) {
      curl_easy_setopt(c.h, CURLOPT_RANGE, range.c_str());
      // If-Range: the server sends the rest only if the file is still the one we have a part
      // of (a strong ETag, else the Last-Modified date); otherwise the whole new file.
      const bool strong_etag = !state.etag.empty() && state.etag.rfind("W/", 0) != 0;
      const std::string validator = strong_etag ? state.etag : state.last_modified;
      if (!validator.empty()) {
        c.headers = curl_slist_append(c.headers, ("If-Range: " + validator).c_str());
        curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.headers);
      }
    }
    const CURLcode rc = curl_easy_perform(c.h);
    long status = 0;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
    out.received += r.written;
    if (r.restarted) {
      out.restarted = true;
      out.restart_reason = r.restart_reason;
    }
    if (r.write_errno)
      throw TransferError(cat(part_path, ": cannot write: ", std::strerror(r.write_errno)), false);
    const auto start_over = [&](const std::string& why) {
      out.restarted = true;
      out.restart_reason = why;
      if (::ftruncate(file.fd, 0) != 0) throw TransferError(cat(part_path, ": cannot truncate: ", std::strerror(errno)), false);
      have = 0;
      state = PartState{};
      state.url = url;
    };
    if (r.mismatch) {
      start_over(r.mismatch_reason);
      continue;
    }
    if (http && status == 416 && r.ranged) {
      int64_t start = -1, total = -1;
      parse_content_range(r.content_range, start, total);
      if (total >= 0 && total == have && (state.total < 0 || state.total == total)) {
        out.resumed_from = have;  // the partial file already was the whole file
        state.total = total;
        complete = true;
        break;
      }
      start_over(cat("the server refused the range from byte ", have, " (HTTP 416)"));
      continue;
    }
    if (r.error_status) {
      const bool retryable = status >= 500 || status == 408 || status == 429;
      throw TransferError(cat("HTTP ", status, " from ", url), retryable, out.received);
    }
    if (rc != CURLE_OK) {
      const int64_t kept = size_of_fd(file.fd);
      if (kept == 0) {  // nothing to resume: leave no empty partial file behind
        fs::remove_file(part_path);
        fs::remove_file(state_path);
      }
      throw TransferError(cat("transfer from ", url, " failed: ", curl_easy_strerror(rc),
                              errbuf[0] ? cat(" (", errbuf, ")") : std::string(),
                              kept > 0 ? cat("; ", kept, " bytes are kept in ", part_path,
                                             " and the next attempt resumes from there")
                                       : std::string()),
                          http, out.received);  // a local file:// failure would fail again
    }
    if (http && status != 200 && status != 206)
      throw TransferError(cat("HTTP ", status, " from ", url, " (expected 200 or 206)"), false);
    if (!r.body_started) {  // an empty body: the resource is empty
      if (have > 0) start_over("the server sent an empty file");
      state.total = 0;
    }
    if (r.ranged && status == 206) out.resumed_from = have;
    complete = true;
    break;
  }
  if (!complete) throw TransferError(cat("transfer from ", url, ": the server's answers to range requests did not fit "
                                         "the partial file three times (last: ", out.restart_reason, ")"), true);
  const int64_t size = size_of_fd(file.fd);
  if (state.total >= 0 && size != state.total)
    throw TransferError(cat("transfer from ", url, " ended after ", size, " of ", state.total, " bytes"), true);
  if (::fsync(file.fd) != 0) throw TransferError(cat(part_path, ": cannot fsync: ", std::strerror(errno)), false);
  fs::remove_file(state_path);
  out.size = size;
  return out;
}

}  // namespace mcd::data::download
