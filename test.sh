#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest prints the summary).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$repo/scripts/install_deps.sh"
"$repo/scripts/build.sh"
cd "${MCD_BUILD_DIR:-$repo/build}"
ctest --output-on-failure -j"$(nproc)" --timeout 900
