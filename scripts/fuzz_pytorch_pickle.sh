#!/usr/bin/env bash
# Builds the libFuzzer target fuzz/pytorch_pickle_fuzz.cpp with clang (ASan + UBSan + LeakSanitizer, no
# LibTorch: src/io/pytorch_pickle.cpp, src/io/safetensors.cpp and src/util/*.cpp), takes seeds from
# Python's own pickler (tests/io/python_pickler_state_dict.py, protocols 2, 4 and 5: the data.pkl of each)
# and fuzzes for SECONDS (default 180). See docs/safetensors.md, "PyTorch checkpoints".
#
# Usage: scripts/fuzz_pytorch_pickle.sh [SECONDS]     env: CXX (default clang++-14 or clang++),
#        MCD_FUZZ_DIR (default build-fuzz), MCD_FUZZ_JOBS (default 1)
set -euo pipefail

seconds="${1:-180}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${MCD_FUZZ_DIR:-$root/build-fuzz}"
jobs="${MCD_FUZZ_JOBS:-1}"
if [[ -z "${CXX:-}" ]]; then
  if command -v clang++-14 >/dev/null; then CXX=clang++-14; else CXX=clang++; fi
fi
sources=("$root/src/io/pytorch_pickle.cpp" "$root/src/io/safetensors.cpp")
for f in "$root"/src/util/*.cpp; do sources+=("$f"); done

mkdir -p "$out/pickle_corpus" "$out/pickle_seeds" "$out/pickle_artifacts"
echo "== building $out/pytorch_pickle_fuzz with $CXX"
"$CXX" -std=c++17 -g -I"$root/src" -Wall -Wextra -Wno-unused-parameter -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  "$root/fuzz/pytorch_pickle_fuzz.cpp" "${sources[@]}" -o "$out/pytorch_pickle_fuzz"

echo "== seeds from Python's pickler"
for protocol in 2 4 5; do
  python3 "$root/tests/io/python_pickler_state_dict.py" "$out/seed.bin" "$protocol"
  python3 -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile('$out/seed.bin').read('archive/data.pkl'))" \
    > "$out/pickle_seeds/protocol$protocol.pkl"
done
rm -f "$out/seed.bin"
ls -l "$out/pickle_seeds"

echo "== fuzzing for ${seconds}s"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
parallel=()
if (( jobs > 1 )); then parallel=(-jobs="$jobs" -workers="$jobs"); fi
"$out/pytorch_pickle_fuzz" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 "${parallel[@]}" \
  -dict="$root/fuzz/pytorch_pickle.dict" -artifact_prefix="$out/pickle_artifacts/" \
  -print_final_stats=1 "$out/pickle_corpus" "$out/pickle_seeds"
