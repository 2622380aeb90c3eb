# Thirty-first session, call C: the state-split block forward. The scan lab's versions 73–78 against the library's
# 59 / 62 / 65 at B = 1 (each checked against float64 first); the whole GPU suite with BlockFwdStagedSplit (73) as
# kBlockForwardStaged's first choice; bench_ops' scan forward and our prefill with it.
# Usage on the device (carry .gpu): DEADLINE=400 bash .gpu/s31_split.sh
set -u
BUILD_ARGS=-DMCD_BUILD_DEV=ON BUILD_TARGETS="scan_lab mamba-codesign test_gpu bench_ops" source scripts/gpu_perf_prelude.sh
for e in 1536 2048 1152; do
  (( $(left) > 150 )) || break
  timeout 60 build-gpu/dev/scan_lab --shape 1,4096,$e,16 --only 59,62,65,73,74,75,76,77,78 --reps 30 > /tmp/lab.txt 2>&1
  echo "lab E=$e rc=$? ($(el) s)"; cat /tmp/lab.txt >> $R/scan_lab.txt; grep -E "FAIL|bf16|check:" /tmp/lab.txt | sed 's/  */ /g' | head -14
done
pack
(( $(left) > 90 )) && timeout $(( $(left) - 15 )) build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure\|thrown" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
(( $(left) > 35 )) && timeout 30 build-gpu/bench/bench_ops --no-composite --layout contiguous --reps 50 --shape 1,4096,1536,16 --shape 1,4096,2048,16 \
  --shape 1,4096,1152,16 --shape 1,4096,1024,16 > $R/bench_ops.jsonl 2> $R/bench_ops.err
echo "bench_ops rc=$? ($(el) s)"
python3 - $R/bench_ops.jsonl <<'PY'
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    if d.get("bench") == "scan_fwd" and d.get("dtype") == "bf16": print(d["E"], d["algorithm"], "%.1f" % d["median_us"])
PY
pack
pack; echo "done ($(el) s)"
