// Small POSIX file-system helpers used instead of std::filesystem.
// See [Note: no std::filesystem] in docs/NOTES.md: PyTorch's LibTorch wheels export their own
// statically linked std::filesystem symbols, and a program built with a newer g++ that calls
// std::filesystem then crashes (pytorch/pytorch#133437). Torch-free, so every library can use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mcd::fs {

bool exists(const std::string& path);
bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);
bool same_file(const std::string& a, const std::string& b);  // both exist and are one file or folder
int64_t file_size(const std::string& path);            // throws mcd::Error naming the path
std::string read_file(const std::string& path);        // the whole file; throws naming the path
int64_t modification_time_ns(const std::string& path);  // throws mcd::Error naming the path
void make_dirs(const std::string& path);                // mkdir -p; throws naming the path
void remove_tree(const std::string& path);              // rm -rf; missing path is fine
void remove_file(const std::string& path);              // missing file is fine
void rename_path(const std::string& from, const std::string& to);
void resize_file(const std::string& path, int64_t size);
std::vector<std::string> list_dir(const std::string& dir);  // entry names, sorted, no . or ..
std::string make_temp_dir(const std::string& prefix);       // a fresh folder under $TMPDIR or /tmp
std::string join(const std::string& a, const std::string& b);
std::string parent_path(const std::string& path);
std::string file_name(const std::string& path);
std::string executable_path();  // /proc/self/exe, or "" if unknown

}  // namespace mcd::fs
