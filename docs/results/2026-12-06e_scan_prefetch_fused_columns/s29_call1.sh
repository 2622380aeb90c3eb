# Twenty-ninth session, call 1: mamba-ssm's extensions built beside (nice 19, for call 2's side by side);
# build with the scan lab; the whole test_gpu (the twenty-eighth session's unrun GPU-test refactor 4328331 and
# this session's prefetching block forward); the lab's block-forward load-timing versions 68–72 against 59 / 62 /
# 65 at the prefill widths; bench_ops' scan forward at B = 1; our prefill profile.
# Usage on the device (carry .gpu): DEADLINE=540 bash .gpu/s29_call1.sh
set -u
[[ -e /tmp/mext.finished || -d /tmp/mext ]] || (setsid nohup nice -n 19 bash .gpu/ext/build_ext.sh /tmp/mext > /tmp/mext.out 2>&1 &)
BUILD_ARGS=-DMCD_BUILD_DEV=ON BUILD_TARGETS="mamba-codesign test_gpu bench_ops scan_lab" source scripts/gpu_perf_prelude.sh
timeout 100 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
for e in 1536 2048 1152 1024 768; do
  (( $(left) > 150 )) || break
  timeout 60 build-gpu/dev/scan_lab --shape 1,4096,$e,16 --only 59,62,65,68,69,70,71,72 --reps 30 > /tmp/lab.txt 2>&1
  echo "lab E=$e rc=$? ($(el) s)"; cat /tmp/lab.txt >> $R/scan_lab.txt; grep -E "FAIL|bf16" /tmp/lab.txt | head -20
done
pack
timeout 60 build-gpu/bench/bench_ops --no-composite --layout contiguous --reps 50 --shape 1,4096,1536,16 --shape 1,4096,2048,16 \
  --shape 1,4096,1024,16 > $R/bench_ops.jsonl 2> $R/bench_ops.err
echo "bench_ops rc=$? ($(el) s)"
python3 - $R/bench_ops.jsonl <<'PY'
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    if d.get("bench") == "scan_fwd" and d.get("dtype") == "bf16": print(d["E"], d["algorithm"], "%.1f" % d["median_us"])
PY
pack
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do
  (( $(left) > 50 )) || break
  [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null
  timeout 60 $bin profile --model /tmp/$p --device cuda --prefill 1x1024,1x4096 --prefill-mode both --decode-batch "" \
    --iters 30 --out $R/prefill-$p.json > /tmp/p.log 2>&1
  echo "prefill $p rc=$? ($(el) s)"
  python3 -c "
import json
d = json.load(open('$R/prefill-$p.json'))
for c in d['cases']: print(c['label'], ' '.join('%.3f' % r['summary_ms']['p50'] for r in c['results']))"
done
pack; cat /tmp/mext/status.txt 2>/dev/null; echo "done ($(el) s)"
