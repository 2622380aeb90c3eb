// Unpacking a downloaded archive into the destination folder: `unzip` or `tar` run as child
// processes (no shell), into a scratch folder first; then leading folders are stripped and the
// top-level members moved into place, replacing what was there under the same names.
#pragma once

#include <string>
#include <vector>

#include "data/download/manifest.h"

namespace mcd::data::download {

// The full path of `program` on PATH, or "" when it is not there.
std::string find_program(const std::string& program);

// Runs argv (argv[0] looked up on PATH) with standard output and error appended to `log_path`;
// returns the exit status (128 + signal when killed). Throws mcd::Error when it cannot start.
int run_program(const std::vector<std::string>& argv, const std::string& log_path);

// Unpacks `archive_path` (zip or tar.gz) into `<dest>/<extract_to>` for the entry `entry_name`:
// extraction into "<dest>/.extract-<entry_name>", `strip_components` levels removed (each level
// must be a single folder; "__MACOSX" folders are ignored), then each remaining top-level member
// renamed into place. A missing unzip/tar, a failed extraction (the tool's last lines are
// quoted) or a level that cannot be stripped is an mcd::Error naming the entry. Returns the
// paths moved into place, relative to dest.
std::vector<std::string> extract_archive(const std::string& archive_path, Archive type, const std::string& dest,
                                         const std::string& extract_to, int strip_components,
                                         const std::string& entry_name);

}  // namespace mcd::data::download
