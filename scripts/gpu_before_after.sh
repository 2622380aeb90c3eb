#!/usr/bin/env bash
# Before/after on one GPU, in one lease (PERF.md: a claim is a ratio measured side by side on one
# card): this tree against an older source tree (a folder, e.g. `git archive --prefix=old/ COMMIT`
# unpacked). Phases, each short enough for one device call:
#   build  — build this tree (build-gpu/, with dev/ programs) and OLD (build-gpu-old/) at the same
#            time, run this tree's GPU tests and the scan kernel lab
#   step   — bench_ops (scan/conv kernels) once per build, then the 130M and 370M training step
#            (8 × 2048, bf16) of old and new alternately, twice each
#   sparse — this tree only: dense, SDM-gated and pruned 25/50/75 % steps, 130M and 370M
#   bash scripts/gpu_before_after.sh OLD_SRC OUT PHASE
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="$(cd "${1:?usage: gpu_before_after.sh OLD_SRC OUT PHASE}" && pwd)"
out="$(mkdir -p "${2:?OUT}" && cd "$2" && pwd)"
phase="${3:?PHASE: build, step or sparse}"
cd "$repo"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$out/gpu.txt"
new_b=build-gpu old_b=build-gpu-old

step_bench() {  # build label preset
  timeout 200 "$1/bench/bench_model" --preset "$3" --batch 8 --seq 2048 --iters 10 --variants dense \
    --prefill 1024 --decode 0 2>>"$out/bench_model.err" | sed "s/^{/{\"build\":\"$2\",/" >>"$out/step.jsonl"
  echo "step $2 $3 rc=${PIPESTATUS[0]}"
}

case "$phase" in
build)
  t0=$(date +%s)
  (MCD_BUILD_DIR="$repo/$old_b" bash "$old/scripts/build_gpu.sh" >"$out/build_old.log" 2>&1; echo "old build rc=$?") &
  MCD_BUILD_DIR="$repo/$new_b" bash scripts/build_gpu.sh -DMCD_BUILD_DEV=ON >"$out/build_new.log" 2>&1
  echo "new build rc=$? ($(( $(date +%s) - t0 )) s)"
  grep -m3 -B2 -A12 "error" "$out/build_new.log"
  wait
  echo "both built ($(( $(date +%s) - t0 )) s)"
  timeout 300 "$new_b/tests/test_gpu" >"$out/test_gpu.log" 2>&1
  echo "test_gpu rc=$?: $(grep -E '^\[  (PASSED|FAILED) ' "$out/test_gpu.log" | tr '\n' ' ')"
  grep -E "^\[  FAILED  \]|Failure" -A4 "$out/test_gpu.log" | head -60
  if [[ -x "$new_b/dev/scan_lab" ]]; then
    timeout 120 "$new_b/dev/scan_lab" >"$out/scan_lab.txt" 2>&1; echo "scan_lab rc=$?"; tail -15 "$out/scan_lab.txt"
  fi
  ;;
step)
  MCD_GIT_COMMIT=old timeout 200 "$old_b/bench/bench_ops" --no-composite --layout model --reps 30 \
    >"$out/ops_old.jsonl" 2>"$out/ops_old.err"; echo "bench_ops old rc=$?"
  MCD_GIT_COMMIT=new timeout 200 "$new_b/bench/bench_ops" --no-composite --layout model --reps 30 \
    >"$out/ops_new.jsonl" 2>"$out/ops_new.err"; echo "bench_ops new rc=$?"
  for rep in 1 2; do
    for p in mamba-130m-gpt2 mamba-370m; do
      step_bench "$old_b" old "$p"
      step_bench "$new_b" new "$p"
    done
  done
  ;;
sparse)
  for p in mamba-130m-gpt2 mamba-370m; do
    timeout 280 "$new_b/bench/bench_model" --preset "$p" --batch 8 --seq 2048 --iters 10 \
      --variants dense,gated,p25,p50,p75 --prefill 1024 --decode 0 >>"$out/sparse.jsonl" 2>>"$out/sparse.err"
    echo "sparse $p rc=$?"
  done
  ;;
esac
