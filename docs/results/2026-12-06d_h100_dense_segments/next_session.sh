# Twenty-ninth session (or later), one call — copy to .gpu/ (scripts/pack_gpu_carry.sh recreates the carried
# assets), run with carry [".gpu"]:  DEADLINE=540 bash .gpu/next_session.sh
# 1. The twenty-eighth session's final tree on whichever card comes (its GPU tests passed on an H100): the whole
#    test_gpu, issue 13's training curve (the 130M 25 % width now runs the dense-state backward in 4 time segments).
# 2. With the third carry kernel, 8 segments beat 4 for the four-lane segmented backward at (8, 2048, 384) on the
#    H100 (527.9 against 586.6 µs fwd+bwd): bench_ops at the 75 % widths (130M 384, 370M 512) says whether
#    scan_backward_time_segments should give kStateSequentialSegmented 8 there (not yet changed).
set -u
BUILD_TARGETS="mamba-codesign test_gpu bench_ops" source scripts/gpu_perf_prelude.sh
timeout 100 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
timeout 120 build-gpu/bench/bench_ops --no-composite --layout model --reps 30 --shape 8,2048,384,16,48 \
  --shape 8,2048,512,16,64 --shape 8,2048,1152,16,48 > $R/bench_ops.jsonl 2> $R/bench_ops.err
echo "bench_ops rc=$? ($(el) s)"
python3 - $R/bench_ops.jsonl <<'PY'
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    a = d["algorithm"]
    if d["bench"] == "scan_fwd_bwd" and d["mode"] == "atomic" and ("segmented" in a or "dense" in a or a.startswith("auto")):
        print(d["E"], a, "%.1f" % d["median_us"])
PY
pack
bin=build-gpu/mamba-codesign; mkdir -p /tmp/m
for round in 1 2 3; do for p in mamba-130m mamba-370m; do
  (( $(left) > 70 )) || break 2
  for q in 0 25 50 75; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout 65 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s25 --model /tmp/m/$p-s50 --model /tmp/m/$p-s75 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-$round.json > /dev/null 2>&1
  echo "train $p round $round rc=$? ($(el) s)"; python3 scripts/profile_ratios.py $R/tr-$p-$round.json
  pack
done; done
echo "done ($(el) s)"
