#!/usr/bin/env bash
# End-to-end pre-training speed, this tree against an older source tree, side by side on one GPU
# (PERF.md: a claim is a ratio measured in one run on one card). What a user sees: the whole
# `mamba-codesign pretrain` step (data, forward, backward, clipping, optimizer, logging), bf16,
# 8 × 2048 tokens per step, on enwiki2015/AA, for mamba-130m-gpt2 and mamba-370m; each run 80 steps,
# old and new alternating ROUNDS times (default 2). Prints per run the mean tokens/s of the logged
# steps after step 20 and the peak memory, then each build's ratio of means to the old one.
# LOW_MEMORY=1: also this tree with `--scan-plan low_memory` (label new-low_memory).
# Usage: scripts/pretrain_before_after.sh OLD_SRC ENWIKI_AA_DIR OUT
#   (OLD_SRC: e.g. `git archive --prefix=old/ COMMIT` unpacked; both trees built here as in
#   gpu_before_after.sh: build-gpu/ and build-gpu-old/, in parallel, when not built yet.)
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="$(cd "${1:?usage: pretrain_before_after.sh OLD_SRC ENWIKI_AA_DIR OUT}" && pwd)"
enwiki="$(cd "${2:?ENWIKI_AA_DIR}" && pwd)"
out="$(mkdir -p "${3:?OUT}" && cd "$3" && pwd)"
rounds=${ROUNDS:-2}
cd "$repo"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$out/gpu.txt"
if [[ ! -x build-gpu-old/mamba-codesign || ! -x build-gpu/mamba-codesign ]]; then
  t0=$(date +%s)
  (MCD_BUILD_DIR="$repo/build-gpu-old" bash "$old/scripts/build_gpu.sh" >"$out/build_old.log" 2>&1; echo "old build rc=$?") &
  MCD_BUILD_DIR="$repo/build-gpu" bash scripts/build_gpu.sh >"$out/build_new.log" 2>&1
  echo "new build rc=$? ($(( $(date +%s) - t0 )) s)"; grep -m3 -A8 "error" "$out/build_new.log"
  wait
fi
run() {  # label build preset round [extra global options]
  local dir="$out/runs/$1-$3-$4"
  bash scripts/pretrain_timed_run.sh "$2/mamba-codesign" "$3" "$enwiki" "$out/tokens" "$dir" "${@:5}"
  local rc=$?
  python3 "$repo/scripts/pretrain_run_line.py" "$dir/metrics.jsonl" build "$1" "$3" "$4" "$rc" >>"$out/e2e.jsonl"
  tail -1 "$out/e2e.jsonl"
}
for r in $(seq 1 "$rounds"); do
  for p in mamba-130m-gpt2 mamba-370m; do
    run old build-gpu-old "$p" "$r"
    run new build-gpu "$p" "$r"
    [[ ${LOW_MEMORY:-0} == 1 ]] && run new-low_memory build-gpu "$p" "$r" --scan-plan low_memory
  done
done
python3 - "$out/e2e.jsonl" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for r in rows:
    if r["tokens_per_s"]: by[(r["preset"], r["build"])].append(r)
print("| preset | build | tokens/s | vs old | peak GiB |")
print("| --- | --- | --- | --- | --- |")
rates = lambda rs: " / ".join("%.0f" % r["tokens_per_s"] for r in rs)
mean = lambda rs: sum(r["tokens_per_s"] for r in rs) / len(rs)
for p in sorted({k[0] for k in by}):
    o = by.get((p, "old"), [])
    for b in ["old"] + sorted({k[1] for k in by if k[0] == p and k[1] != "old"}):
        rs = by.get((p, b), [])
        if not rs: continue
        ratio = "%.3f" % (mean(rs) / mean(o)) if o else "-"
        print("| %s | %s | %s | %s | %.2f |" % (p, b, rates(rs), ratio, max(r["peak_gib"] for r in rs)))
PY
