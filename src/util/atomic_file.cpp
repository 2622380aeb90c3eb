// write_file_atomic implementation (POSIX): temp file + fsync + rename + directory fsync.
// rename(2) within one directory is atomic, so readers (and util/mapped_file) see either the old
// or the new contents; the fsyncs make that also hold across a power loss.
#include "util/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "util/error.h"

namespace mcd {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A per-process sequence number keeps two threads writing the same path from sharing a temp file.
std::string temp_path_for(const std::string& path) {
  static std::atomic<unsigned long> sequence{0};
  return cat(path, ".tmp.", static_cast<long>(::getpid()), ".", sequence.fetch_add(1));
}

// Makes the rename durable. Filesystems that cannot fsync a directory (EINVAL) are accepted.
void fsync_directory(const std::string& dir, const std::string& path) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    fail(cat("wrote '", path, "' but cannot open its directory '", dir,
             "' to make the rename durable: ", errno_text(err)));
  }
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
    const int err = errno;
    ::close(fd);
    fail(cat("wrote '", path, "' but cannot fsync its directory '", dir, "': ", errno_text(err)));
  }
  ::close(fd);
}

}  // namespace

void write_bytes(std::FILE* f, const void* data, size_t size) {
  if (size == 0) return;
  errno = 0;
  const size_t written = std::fwrite(data, 1, size, f);
  if (written != size) {
    const int err = errno;
    fail(cat("write failed after ", written, " of ", size, " bytes: ",
             err ? errno_text(err) : std::string("short write")));
  }
}

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer) {
  MCD_CHECK(!path.empty(), "write_file_atomic: empty path");
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    fail(cat("cannot write '", path, "': cannot create temporary file '", tmp,
             "': ", errno_text(err)));
  }
  std::FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(cat("cannot write '", path, "': fdopen failed: ", errno_text(err)));
  }

  // Everything up to fclose may fail; each failure path closes and removes the temp file.
  std::string problem;
  try {
    if (writer) writer(f);
    if (std::ferror(f)) {
      problem = "a write to the temporary file failed";
    } else if (std::fflush(f) != 0) {
      problem = cat("flush failed: ", errno_text(errno));
    } else if (::fsync(::fileno(f)) != 0) {
      problem = cat("fsync failed: ", errno_text(errno));
    }
  } catch (const std::exception& e) {
    problem = e.what();
  } catch (...) {
    problem = "the writer threw a non-standard exception";
  }
  if (!problem.empty()) {
    std::fclose(f);
    ::unlink(tmp.c_str());
    fail(cat("cannot write '", path, "': ", problem));
  }
  if (std::fclose(f) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(cat("cannot write '", path, "': close failed: ", errno_text(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(cat("cannot write '", path, "': rename from '", tmp, "' failed: ", errno_text(err)));
  }
  fsync_directory(directory_of(path), path);
}

void write_text_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, [&](std::FILE* f) { write_bytes(f, contents.data(), contents.size()); });
}

}  // namespace mcd
