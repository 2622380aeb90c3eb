// MappedFile implementation: open + fstat + mmap(PROT_READ, MAP_PRIVATE), POSIX only.
// The descriptor is closed right after mapping; the mapping alone keeps the pages reachable.
// Note: if another process truncates the file while it is mapped, reads past the new end fault
// (SIGBUS) — the same caveat as every mmap-based loader; we write files atomically to avoid it.
#include "util/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits>
#include <utility>

#include "util/error.h"

namespace mcd {
namespace {

// data() of an empty map points here so callers can pass it to memcpy(…, 0) safely.
const uint8_t kEmptyByte = 0;

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

MappedFile MappedFile::open(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    fail(cat("cannot open '", path, "' for reading: ", errno_text(err)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(cat("cannot stat '", path, "': ", errno_text(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(cat("cannot map '", path, "': not a regular file"));
  }
  if (st.st_size < 0 ||
      static_cast<unsigned long long>(st.st_size) > std::numeric_limits<size_t>::max()) {
    ::close(fd);
    fail(cat("cannot map '", path, "': size ", st.st_size, " does not fit in memory"));
  }

  MappedFile out;
  out.path_ = path;
  out.size_ = static_cast<size_t>(st.st_size);
  if (out.size_ > 0) {  // mmap of length 0 is EINVAL
    void* p = ::mmap(nullptr, out.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(cat("cannot memory-map '", path, "' (", out.size_, " bytes): ", errno_text(err)));
    }
    out.map_ = p;
  }
  ::close(fd);
  return out;
}

MappedFile::~MappedFile() { release(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

const uint8_t* MappedFile::data() const {
  return map_ ? static_cast<const uint8_t*>(map_) : &kEmptyByte;
}

void MappedFile::release() noexcept {
  if (map_) ::munmap(map_, size_);
  map_ = nullptr;
  size_ = 0;
}

}  // namespace mcd
