#!/usr/bin/env bash
# CSP at mamba-130m scale (issue 16, docs/csp.md): the time of the whole stage on E = 1536 × 24
# layers (20k calibration tokens, 2-second ordering limit per layer), then magnitude pruning to 50 %
# at block granularity g with and without CSP, and `profile` of dense, CSP-permuted and pruned
# models side by side. Random weights (init seed 0): enough for timing, not for quality (the
# quality study is scripts/csp_study.sh).
# Usage: scripts/csp_bench.sh DEVICE OUT_DIR CALIB_CORPUS [PROFILE ARGS...]
#   e.g. scripts/csp_bench.sh cuda runs/csp-bench ../shared/data/enwiki2015/AA/wiki_10 --iters 50
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${MCD_BIN:-$repo/build/mamba-codesign}"
device="$1"; out="$2"; calib="$3"; shift 3
threads="${THREADS:-0}"
g="${GRANULARITY:-32}"
mcd() { "$bin" --threads "$threads" "$@"; }
mkdir -p "$out"
[ -d "$out/dense" ] || mcd init --preset mamba-130m-gpt2 --seed 0 --out "$out/dense" >/dev/null
echo "== csp (device $device)"
"$bin" --threads "$threads" csp --model "$out/dense" --calib "$calib" --format wikiextractor \
  --tokens 20000 --seq-len 256 --per-document 512 --time-limit 2 --out "$out/dense-csp" --device "$device" \
  >"$out/csp.json" 2>"$out/csp.log" || { cat "$out/csp.log"; exit 1; }
grep -E "calibration [0-9]+/|layer (1|24)/|warning" "$out/csp.log" | tail -8
cat "$out/csp.json"
for src in dense dense-csp; do
  mcd prune --model "$out/$src" --out "$out/$src-p50-g$g" --magnitude global --sparsity 0.5 --granularity "$g" |
    tail -n 1 >"$out/$src-p50-g$g.json"
done
echo "== profile"
mcd profile --model "$out/dense" --model "$out/dense-csp" --model "$out/dense-p50-g$g" \
  --model "$out/dense-csp-p50-g$g" --device "$device" --out "$out/profile.json" "$@" 2>&1 | grep "profile:"
