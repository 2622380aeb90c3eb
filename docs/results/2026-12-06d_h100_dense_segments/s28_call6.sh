# Twenty-eighth session, call 6 — the final rule (no segments at two dense-state blocks per SM or fewer): the
# whole test_gpu, then one training curve per preset. Copy to .gpu/, run with carry [".gpu"]:
#   DEADLINE=330 bash .gpu/s28_call6.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu" source scripts/gpu_perf_prelude.sh
timeout 100 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
bin=build-gpu/mamba-codesign; mkdir -p /tmp/m
for p in mamba-370m mamba-130m; do
  (( $(left) > 60 )) || break
  for q in 0 25 50 75; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout 65 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s25 --model /tmp/m/$p-s50 --model /tmp/m/$p-s75 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p.json > /dev/null 2>&1
  echo "train $p rc=$? ($(el) s)"
  python3 - $R/tr-$p.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    p = [r["summary_ms"]["p50"] for r in c["results"]]
    print(c["label"], " ".join("%.3f" % x for x in p), "| ratios", " ".join("%.4f" % (x / p[0]) for x in p[1:]), flush=True)
PY
  pack
done
echo "done ($(el) s)"
