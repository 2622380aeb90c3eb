#!/usr/bin/env bash
# Side-by-side performance run on one GPU (docs/PERF_NOTES.md): builds build-gpu/ (PyTorch's
# LibTorch, sm_90), runs the GPU tests, then bench_ops (scan/conv kernels), bench_model (130M and
# 370M training step, with a kernel-time breakdown from a Kineto trace) and, when the mamba_ssm
# and causal_conv1d Python packages are importable, bench/compare/mamba_ssm_side_by_side.py on the
# same card in the same run. The repo ships neither mamba-ssm's code nor a recipe to build it.
#
#   bash scripts/gpu_perf.sh OUT_DIR        (results: OUT_DIR/*.jsonl, trace summaries, logs)
#   MCD_WAIT_FOR=FILE: wait (≤ 10 min) for FILE before looking for mamba_ssm, for a build running beside.
#   MCD_PERF_EXTRAS=0: skip the Kineto traces and the op-by-op-mixer and low-memory-scan model rows
#   (a shorter run).
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:?usage: gpu_perf.sh OUT_DIR}" && cd "$1" && pwd)"
cd "$repo"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
t0=$(date +%s)
MCD_BUILD_DIR=build-gpu bash scripts/build_gpu.sh >"$out/build.log" 2>&1 || {
  grep -m3 -A8 error "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
timeout 300 build-gpu/tests/test_gpu >"$out/test_gpu.log" 2>&1
echo "test_gpu rc=$?: $(grep -E '^\[  (PASSED|FAILED) ' "$out/test_gpu.log" | tr '\n' ' ')"
MCD_GIT_COMMIT=$(git describe --always --dirty) timeout 300 build-gpu/bench/bench_ops --no-composite \
  --layout model --reps 30 >"$out/bench_ops.jsonl" 2>"$out/bench_ops.err"
echo "bench_ops rc=$?"
extras="${MCD_PERF_EXTRAS:-1}"
for p in mamba-130m-gpt2 mamba-370m; do
  trace=()
  [[ "$extras" != 0 ]] && trace=(--trace "$out/trace_$p.json")
  timeout 150 build-gpu/bench/bench_model --preset "$p" --batch 8 --seq 2048 --iters 10 --variants dense \
    --prefill 1024 --decode 0 "${trace[@]}" >>"$out/bench_model.jsonl" 2>>"$out/bench_model.err"
  echo "bench_model $p rc=$?"
  [[ "$extras" == 0 ]] && continue
  python3 scripts/trace_summary.py "$out/trace_$p.json.dense" --top 15 >"$out/trace_$p.txt" && rm -f "$out/trace_$p.json.dense"
  # The same step with the op-by-op mixer (ops option fused_mixer=false), for the before/after,
  # and with the scan's low-memory plan (scan_plan=low_memory: no dense saved states).
  timeout 150 build-gpu/bench/bench_model --preset "$p" --batch 8 --seq 2048 --iters 10 \
    --variants dense --prefill 1024 --decode 0 --ops fused_mixer=false \
    >>"$out/bench_model.jsonl" 2>>"$out/bench_model.err"
  echo "bench_model $p (op-by-op mixer) rc=$?"
  timeout 150 build-gpu/bench/bench_model --preset "$p" --batch 8 --seq 2048 --iters 10 \
    --variants dense --prefill 1024 --decode 0 --ops scan_plan=low_memory \
    >>"$out/bench_model.jsonl" 2>>"$out/bench_model.err"
  echo "bench_model $p (scan_plan=low_memory) rc=$?"
done
if [[ -n "${MCD_WAIT_FOR:-}" ]]; then  # a file another job creates when mamba-ssm is importable
  for _ in $(seq 600); do [[ -e "$MCD_WAIT_FOR" ]] && break; sleep 1; done
fi
if python3 -c 'import mamba_ssm, causal_conv1d' 2>/dev/null; then
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/compare/mamba_ssm_side_by_side.py --check --cases ops,inner,model \
    --models 130m,370m --model-fed L --out "$out/mamba_ssm.jsonl" >/dev/null 2>"$out/mamba_ssm.err"
  echo "mamba_ssm harness rc=$?"
else
  echo "mamba_ssm not importable: side-by-side rows skipped"
fi
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
for f in ("bench_ops.jsonl", "mamba_ssm.jsonl", "bench_model.jsonl"):
    path = os.path.join(out, f)
    if not os.path.exists(path):
        continue
    for line in open(path):
        j = json.loads(line)
        if j.get("bench", "").startswith("check"):
            continue
        t = j.get("median_us") or (j.get("timing", {}).get("median_ms", 0) * 1000)
        print(f"{f[:9]:<9} {j.get('bench',''):<14} {str(j.get('impl', j.get('preset',''))):<16} "
              f"{j.get('algorithm', j.get('scan_plan', ''))!s:<26.26} B={j.get('B', j.get('batch',''))!s:<3} L={j.get('L', j.get('seq_len',''))!s:<5} "
              f"{j.get('mode','') or ('fused' if j.get('fused_mixer') else ('op-by-op' if 'fused_mixer' in j else '')):<28.28} "
              f"{t:10.1f} us  tok/s={j.get('tokens_per_s','')!s:.8} "
              f"peak={j.get('peak_mem_bytes', j.get('peak_memory_bytes',''))}")
PY
