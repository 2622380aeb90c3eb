#!/usr/bin/env bash
# One sha256 over the files that make a build (src, tests, bench, dev, cmake, scripts and the top-level
# CMakeLists.txt): names and contents, in sorted order. The device machine gets a copy of the working
# tree whose git metadata may be stale, so GPU scripts record this next to `git log -1`; running it
# at a commit here tells whether that commit is the tree a result came from.
# Usage: scripts/source_hash.sh [REPO]   (prints "source <hash>")
set -euo pipefail
cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}"
h=$(find src tests bench dev cmake scripts CMakeLists.txt -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort |
    while IFS= read -r f; do printf '%s\n' "$f"; sha256sum < "$f"; done | sha256sum | cut -c1-16)
echo "source $h"
