#!/usr/bin/env bash
# End-to-end pre-training speed and peak memory of one build under the memory options, in one run
# on one GPU (issue 15's peak-memory target): for each preset, `pretrain` 8 × 2048 × 80 steps on
# enwiki2015/AA (scripts/pretrain_timed_run.sh) with
#   default     the defaults;
#   low_memory  --scan-plan low_memory --save-in-proj-input off --keep-cast-weights off
# alternating ROUNDS times (default 1). Prints one JSON line per run (mean tokens/s of the logged
# steps after step 20, peak memory in GiB) into OUT/e2e.jsonl and on stdout.
# Usage: scripts/pretrain_memory_plans.sh BIN ENWIKI_AA_DIR OUT [PRESET...]
#        (presets default: mamba-130m-gpt2 mamba-370m)
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$1" enwiki="$2"
out="$(mkdir -p "$3" && cd "$3" && pwd)"
shift 3
presets=("$@")
[[ ${#presets[@]} -gt 0 ]] || presets=(mamba-130m-gpt2 mamba-370m)
run() {  # plan preset round [global options]
  local dir="$out/runs/$1-$2-$3"
  bash "$repo/scripts/pretrain_timed_run.sh" "$bin" "$2" "$enwiki" "$out/tokens" "$dir" "${@:4}"
  local rc=$?
  python3 "$repo/scripts/pretrain_run_line.py" "$dir/metrics.jsonl" plan "$1" "$2" "$3" "$rc" >>"$out/e2e.jsonl"
  tail -1 "$out/e2e.jsonl"
}
for r in $(seq 1 "${ROUNDS:-1}"); do
  for p in "${presets[@]}"; do
    run low_memory "$p" "$r" --scan-plan low_memory --save-in-proj-input off --keep-cast-weights off
    run default "$p" "$r"
  done
done
