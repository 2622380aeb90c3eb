// A small HTTP/1.1 file server for the download tests, on 127.0.0.1 and a port the kernel picks
// (bind to port 0), serving in-memory files from one background thread. Per file it can honour
// or ignore range requests (with If-Range against its ETag), drop the connection after a number
// of body bytes, or answer with an error status a number of times. It records every request's
// path, Range and If-Range headers. Each response closes its connection.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "data/hash64.h"

namespace mcd::test {

class HttpTestServer {
 public:
  struct Request {
    std::string path, range, if_range;
  };

  HttpTestServer() {
    // libcurl honours http_proxy; these requests must go straight to the loopback address.
    ::setenv("no_proxy", "127.0.0.1,localhost", 1);
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // any free port
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 16) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error("cannot bind/listen on 127.0.0.1");
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~HttpTestServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  // Serves `body` at `path` ("/name"); a new body gets a new ETag.
  void put(const std::string& path, const std::string& body, bool ranges = true) {
    std::lock_guard<std::mutex> lock(mu_);
    File& f = files_[path];
    f.body = body;
    f.ranges = ranges;
    f.etag = "\"" + std::to_string(data::hash_bytes(body.data(), body.size(), 7)) + "\"";
  }
  // The next `times` responses for `path` stop after `bytes` body bytes and close the connection.
  void drop_after(const std::string& path, int64_t bytes, int times = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path].drop_after = bytes;
    files_[path].drops_left = times;
  }
  // The next `times` requests for `path` get `status` (e.g. 503) with a short text body.
  void fail_with(const std::string& path, int status, int times = 1) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path].fail_status = status;
    files_[path].fails_left = times;
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int port() const { return port_; }

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  size_t request_count() const { return requests().size(); }

 private:
  struct File {
    std::string body, etag;
    bool ranges = true;
    int64_t drop_after = -1;
    int drops_left = 0;
    int fail_status = 0, fails_left = 0;
  };

  static std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  static void send_all(int fd, const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return;  // the client went away
      data += w;
      n -= size_t(w);
    }
  }

  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      handle(fd);
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
    }
  }

  void handle(int fd) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return;
      req.append(buf, size_t(n));
    }
    Request r;
    const size_t sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return;
    r.path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = req.find("\r\n");
    while (pos != std::string::npos) {
      const size_t next = req.find("\r\n", pos + 2);
      if (next == std::string::npos || next == pos + 2) break;
      const std::string line = req.substr(pos + 2, next - pos - 2);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        const std::string name = lower(line.substr(0, colon));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(value.begin());
        if (name == "range") r.range = value;
        if (name == "if-range") r.if_range = value;
      }
      pos = next;
    }
    File file;
    bool found = false, drop = false, failing = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(r);
      auto it = files_.find(r.path);
      if (it != files_.end()) {
        found = true;
        if (it->second.fails_left > 0) {
          --it->second.fails_left;
          failing = true;
        } else if (it->second.drops_left > 0) {
          --it->second.drops_left;
          drop = true;
        }
        file = it->second;
      }
    }
    std::string head, body;
    if (!found || failing) {
      const int status = found ? file.fail_status : 404;
      body = "error " + std::to_string(status) + "\n";
      head = "HTTP/1.1 " + std::to_string(status) + " Error\r\n";
    } else {
      const int64_t size = int64_t(file.body.size());
      int64_t from = -1;
      if (file.ranges && r.range.rfind("bytes=", 0) == 0 && r.range.back() == '-' &&
          (r.if_range.empty() || r.if_range == file.etag))
        from = std::strtoll(r.range.c_str() + 6, nullptr, 10);
      if (from >= size) {
        head = "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" + std::to_string(size) + "\r\n";
      } else if (from >= 0) {
        body = file.body.substr(size_t(from));
        head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(from) + "-" +
               std::to_string(size - 1) + "/" + std::to_string(size) + "\r\n";
      } else {
        body = file.body;
        head = "HTTP/1.1 200 OK\r\n";
      }
      head += "ETag: " + file.etag + "\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n";
      head += file.ranges ? "Accept-Ranges: bytes\r\n" : "Accept-Ranges: none\r\n";
    }
    head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    send_all(fd, head.data(), head.size());
    const size_t n = drop ? std::min(body.size(), size_t(file.drop_after)) : body.size();
    send_all(fd, body.data(), n);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, File> files_;
  std::vector<Request> requests_;
};

}  // namespace mcd::test
