// POSIX implementations of the helpers in fs.h.
#include "util/fs.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "util/error.h"

namespace mcd::fs {
namespace {
bool stat_of(const std::string& path, struct stat& st) { return ::stat(path.c_str(), &st) == 0; }
std::string errno_text() { return std::strerror(errno); }
}  // namespace

bool exists(const std::string& path) {
  struct stat st;
  return stat_of(path, st);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return stat_of(path, st) && S_ISDIR(st.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat st;
  return stat_of(path, st) && S_ISREG(st.st_mode);
}

int64_t file_size(const std::string& path) {
  struct stat st;
  MCD_CHECK(stat_of(path, st), path, ": cannot stat: ", errno_text());
  return st.st_size;
}

std::string read_file(const std::string& path) {
  MCD_CHECK(!is_directory(path), path, ": is a directory, not a file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  MCD_CHECK(f, path, ": cannot open: ", errno_text());
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  MCD_CHECK(!failed, path, ": read error");
  return text;
}

int64_t modification_time_ns(const std::string& path) {
  struct stat st;
  MCD_CHECK(stat_of(path, st), path, ": cannot stat: ", errno_text());
  return int64_t(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

void make_dirs(const std::string& path) {
  if (path.empty() || is_directory(path)) return;
  const std::string parent = parent_path(path);
  if (!parent.empty() && parent != path) make_dirs(parent);
  if (::mkdir(path.c_str(), 0777) != 0 && errno != EEXIST)
    fail(cat(path, ": cannot create directory: ", errno_text()));
  MCD_CHECK(is_directory(path), path, ": exists but is not a directory");
}

void remove_tree(const std::string& path) {
  if (!exists(path)) return;
  auto remove_one = [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); };
  MCD_CHECK(::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0, path,
            ": cannot remove: ", errno_text());
}

void remove_file(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail(cat(path, ": cannot remove: ", errno_text()));
}

void rename_path(const std::string& from, const std::string& to) {
  MCD_CHECK(::rename(from.c_str(), to.c_str()) == 0, "cannot rename ", from, " to ", to, ": ", errno_text());
}

void resize_file(const std::string& path, int64_t size) {
  MCD_CHECK(::truncate(path.c_str(), size) == 0, path, ": cannot resize: ", errno_text());
}

std::vector<std::string> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  MCD_CHECK(d, dir, ": cannot list directory: ", errno_text());
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string make_temp_dir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "XXXXXX";
  MCD_CHECK(::mkdtemp(tmpl.data()), tmpl, ": cannot create temporary directory: ", errno_text());
  return tmpl;
}

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (!b.empty() && b.front() == '/') return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

std::string parent_path(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto pos = p.rfind('/');
  if (pos == std::string::npos) return "";
  return pos == 0 ? "/" : p.substr(0, pos);
}

std::string file_name(const std::string& path) {
  const auto pos = path.rfind('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

std::string executable_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

}  // namespace mcd::fs
