# Twenty-eighth session, calls 2 and 4 — the dense-state backward in time segments where its blocks fill under 3/4
# of their one wave (130M at 25 % pruned: 288 blocks of 396 → 4 segments in 3 waves, predicted ~0.75 of the
# walk plus the carry pass). Copy to .gpu/, run with carry [".gpu"]:  DEADLINE=540 bash .gpu/s28_call2.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu bench_ops" source scripts/gpu_perf_prelude.sh
timeout 100 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
# The scan alone: every algorithm, the segmented backwards at 2 … 16 segments, and the auto rows (what the
# autograd nodes run, segments included), at the 130M 25 % width, the dense 130M width and 370M at 50 %.
timeout 150 build-gpu/bench/bench_ops --no-composite --layout model --reps 30 ${SHAPES:---shape 8,2048,1152,16,48 \
  --shape 8,2048,1536,16,48 --shape 8,2048,1024,16,64} > $R/bench_ops.jsonl 2> $R/bench_ops.err
echo "bench_ops rc=$? ($(el) s)"
python3 - $R/bench_ops.jsonl <<'PY'
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    a = d["algorithm"]
    if d["bench"] == "scan_fwd_bwd" and d["mode"] == "atomic" and ("dense" in a or "segments=4" in a or "segments=8" in a or a.startswith("auto")):
        print(d["E"], a, "%.1f" % d["median_us"])
PY
pack
bin=build-gpu/mamba-codesign; mkdir -p /tmp/m
for q in 0 25 50 75; do [[ -d /tmp/m/130-s$q ]] || $bin init --preset mamba-130m --sparsity 0.$q --out /tmp/m/130-s$q > /dev/null; done
ratios() { python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    p = [r["summary_ms"]["p50"] for r in c["results"]]
    print(c["label"], " ".join("%.3f" % x for x in p), "| ratios", " ".join("%.4f" % (x / p[0]) for x in p[1:]), flush=True)
PY
}
# A/B at 130M: dense and 25 % in one profile, segments on (the new default) and off, alternating processes.
for round in 1 2; do for seg in on off; do
  (( $(left) > 60 )) || break 2
  timeout 60 $bin --scan-time-segments $seg profile --model /tmp/m/130-s0 --model /tmp/m/130-s25 --device cuda \
    --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/ab-$seg-$round.json > /dev/null 2>&1
  echo "A/B segments $seg round $round rc=$? ($(el) s)"; ratios $R/ab-$seg-$round.json
done; done; pack
# The training curves under the new default, while time lasts.
for round in 1 2 3; do for p in mamba-130m mamba-370m; do
  (( $(left) > 70 )) || break 2
  for q in 0 25 50 75; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout 65 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s25 --model /tmp/m/$p-s50 --model /tmp/m/$p-s75 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-$round.json > /dev/null 2>&1
  echo "train $p round $round rc=$? ($(el) s)"; ratios $R/tr-$p-$round.json; pack
done; done
echo "done ($(el) s)"
