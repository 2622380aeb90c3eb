#!/usr/bin/env bash
# Configures and builds the project into build/ (Release). Extra arguments go to cmake's
# configure step. Used by run.sh and test.sh; scripts/build_gpu.sh is the GPU machine's twin.
# Ninja when present (it keeps both of a small machine's cores busy); the LibTorch libraries as
# unity batches (MCD_UNITY_BUILD: a fresh build on 2 cores in much less time, docs/NOTES.md).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MCD_BUILD_DIR:-$repo/build}"
generator=()
# The generator of an existing build folder cannot change; a new one gets Ninja when it exists.
[[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMCD_UNITY_BUILD=ON "$@" \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)"
