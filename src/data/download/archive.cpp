// Archive extraction through child processes (archive.h). `unzip` and `tar` are on every Debian
// and Ubuntu machine the project targets (scripts/install_deps.sh installs unzip); running them
// keeps zip/gzip/tar parsing of untrusted downloads out of this process.
#include "data/download/archive.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

extern char** environ;

namespace mcd::data::download {
namespace {

// The last `n` lines of a text file (for error messages).
std::string tail_of(const std::string& path, int n) {
  std::ifstream f(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    lines.push_back(line);
    if (int(lines.size()) > n) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += "\n    " + l;
  return out;
}

// Entries of `dir` except the ones archivers on macOS add.
std::vector<std::string> members(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& name : fs::list_dir(dir))
    if (name != "__MACOSX") out.push_back(name);
  return out;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "(nothing)" : s;
}

}  // namespace

std::string find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0 ? program : "";
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = fs::join(dir, program);
    if (fs::is_regular_file(candidate) && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

int run_program(const std::vector<std::string>& argv, const std::string& log_path) {
  MCD_CHECK(!argv.empty(), "run_program: no program");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  MCD_CHECK(err == 0, "cannot run ", argv[0], ": ", std::strerror(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    MCD_CHECK(errno == EINTR, "waiting for ", argv[0], ": ", std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

std::vector<std::string> extract_archive(const std::string& archive_path, Archive type, const std::string& dest,
                                         const std::string& extract_to, int strip_components,
                                         const std::string& entry_name) {
  MCD_CHECK(type != Archive::kNone, "extract_archive: entry '", entry_name, "' is not an archive");
  std::vector<std::string> argv;
  const std::string scratch = fs::join(dest, ".extract-" + entry_name);
  if (type == Archive::kZip) {
    MCD_CHECK(!find_program("unzip").empty(), "entry '", entry_name,
              "' is a zip archive and needs the 'unzip' program, which is not on PATH (Debian/Ubuntu: apt-get "
              "install unzip)");
    argv = {"unzip", "-q", "-o", archive_path, "-d", scratch};
  } else {
    MCD_CHECK(!find_program("tar").empty() && !find_program("gzip").empty(), "entry '", entry_name,
              "' is a tar.gz archive and needs the 'tar' and 'gzip' programs on PATH");
    argv = {"tar", "-xzf", archive_path, "-C", scratch, "--no-same-owner", "--no-same-permissions"};
  }
  fs::remove_tree(scratch);
  fs::make_dirs(scratch);
  const std::string log = scratch + ".log";
  fs::remove_file(log);
  const int status = run_program(argv, log);
  if (status != 0) {
    const std::string tail = tail_of(log, 8);
    fs::remove_tree(scratch);
    fs::remove_file(log);
    fail(cat("entry '", entry_name, "': ", argv[0], " failed (exit status ", status, ") on ", archive_path,
             tail.empty() ? std::string() : ":" + tail));
  }
  fs::remove_file(log);
  std::string top = scratch;
  for (int level = 0; level < strip_components; ++level) {
    const auto names = members(top);
    if (names.size() != 1 || !fs::is_directory(fs::join(top, names[0]))) {
      fs::remove_tree(scratch);
      fail(cat("entry '", entry_name, "': strip_components is ", strip_components, " but level ", level + 1,
               " of the archive is not a single folder; it holds: ", joined(names)));
    }
    top = fs::join(top, names[0]);
  }
  const std::string target = extract_to == "." ? dest : fs::join(dest, extract_to);
  fs::make_dirs(target);
  std::vector<std::string> placed;
  const auto names = members(top);
  for (const auto& name : names) {
    if (target == dest && (name == ".downloads" || name == "download_record.json")) {
      fs::remove_tree(scratch);
      fail(cat("entry '", entry_name, "': the archive holds '", name,
               "', which would replace the downloader's own files; extract it into a folder (extract_to)"));
    }
  }
  for (const auto& name : names) {
    const std::string to = fs::join(target, name);
    fs::remove_tree(to);
    fs::rename_path(fs::join(top, name), to);
    placed.push_back(extract_to == "." ? name : extract_to + "/" + name);
  }
  fs::remove_tree(scratch);
  return placed;
}

}  // namespace mcd::data::download
