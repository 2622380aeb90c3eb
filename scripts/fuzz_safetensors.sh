#!/usr/bin/env bash
# Builds the libFuzzer target fuzz/safetensors_fuzz.cpp with clang (ASan + UBSan, no LibTorch:
# only src/io/safetensors.cpp and src/util/*.cpp), generates a seed corpus with our own writer
# (fuzz/safetensors_seed_gen.cpp) and fuzzes for SECONDS (default 180). See docs/safetensors.md.
#
# Usage: scripts/fuzz_safetensors.sh [SECONDS]     env: CXX (default clang++-14 or clang++),
#        MCD_FUZZ_DIR (default build-fuzz), MCD_FUZZ_JOBS (default 1)
set -euo pipefail

seconds="${1:-180}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${MCD_FUZZ_DIR:-$root/build-fuzz}"
jobs="${MCD_FUZZ_JOBS:-1}"
if [[ -z "${CXX:-}" ]]; then
  if command -v clang++-14 >/dev/null; then CXX=clang++-14; else CXX=clang++; fi
fi

sources=("$root/src/io/safetensors.cpp")
for f in "$root"/src/util/*.cpp; do sources+=("$f"); done
common=(-std=c++17 -g -I"$root/src" -Wall -Wextra -Wno-unused-parameter)

mkdir -p "$out/corpus" "$out/seeds" "$out/artifacts"
echo "== building $out/safetensors_fuzz with $CXX"
"$CXX" "${common[@]}" -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  "$root/fuzz/safetensors_fuzz.cpp" "${sources[@]}" -o "$out/safetensors_fuzz"
"$CXX" "${common[@]}" -O1 "$root/fuzz/safetensors_seed_gen.cpp" "${sources[@]}" \
  -o "$out/safetensors_seed_gen"

echo "== seed corpus"
"$out/safetensors_seed_gen" "$out/seeds"
ls -l "$out/seeds"

echo "== fuzzing for ${seconds}s"
# New inputs go to corpus/ (kept between runs); crashes to artifacts/.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
parallel=()
if (( jobs > 1 )); then parallel=(-jobs="$jobs" -workers="$jobs"); fi  # logs go to fuzz-N.log
"$out/safetensors_fuzz" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 "${parallel[@]}" \
  -dict="$root/fuzz/safetensors.dict" -artifact_prefix="$out/artifacts/" \
  -print_final_stats=1 "$out/corpus" "$out/seeds"
