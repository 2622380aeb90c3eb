// Crash-safe file replacement, torch-free: write a temporary file beside the target, fsync it,
// rename it over the target and fsync the directory. Used by io/safetensors (checkpoints) and by
// anything else that must never leave a half-written file; util/mapped_file is the reader side.
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>

namespace mcd {

// Calls `writer` with a stdio stream opened on "<path>.tmp.<pid>.<n>" in the same directory,
// then flushes, fsyncs, renames it to `path` and fsyncs the directory. If the writer throws or
// any step fails, the temporary file is removed, `path` is left as it was, and mcd::Error naming
// `path` is thrown. A crash at any moment leaves either the old or the new file at `path`
// (possibly plus a stale "*.tmp.*" file), never a partial one.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer);

// write_file_atomic with `contents` as the whole file.
void write_text_atomic(const std::string& path, const std::string& contents);

// fwrite that throws mcd::Error (with the errno text) unless all `size` bytes were written.
// For use inside write_file_atomic writers.
void write_bytes(std::FILE* f, const void* data, size_t size);

}  // namespace mcd
