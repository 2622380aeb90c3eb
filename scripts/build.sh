#!/usr/bin/env bash
# Configures and builds the project into build/ (Release). Extra arguments go to cmake's
# configure step. Used by run.sh and test.sh; scripts/build_gpu.sh is the GPU machine's twin.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MCD_BUILD_DIR:-$repo/build}"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)"
