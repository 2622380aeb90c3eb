# Twenty-eighth session (or later), one call — copy to .gpu/ (scripts/pack_gpu_carry.sh recreates the carried
# assets), run with carry [".gpu"]:  DEADLINE=540 bash .gpu/next_session.sh
# Issue 13's evidence on whichever card comes (the twenty-seventh session's were on an H100): the whole test_gpu,
# the SDM gate overhead (bench_model dense,gated twice per preset, eager; H100: 130M +2.3 / +1.0 %, 370M +1.4 /
# +1.2 %) and the same ratio from profile with its interval, a trace of the 130M dense and 25 % steps, then the training curve (dense and 25/50/75 % pruned interleaved in one profile, graph step) in rounds
# while time lasts (130M 25 % sits on its 0.9253 line: 0.9246–0.9270 on the H100, 0.9301 on the H200).
set -u
BUILD_TARGETS="mamba-codesign test_gpu bench_model" source scripts/gpu_perf_prelude.sh
timeout 90 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
for p in mamba-130m mamba-370m; do
  timeout 70 build-gpu/bench/bench_model --preset $p --variants dense,gated,dense,gated --prefill "" --decode 0 --iters 20 > $R/bm-$p.jsonl 2> /dev/null
  echo "bench_model $p rc=$? ($(el) s)"
  python3 -c '
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    print(d["preset"], d["variant"], "%.2f ms" % d["timing"]["median_ms"], "peak %.2f GB" % (d.get("peak_memory_bytes", 0) / 1e9))' $R/bm-$p.jsonl
done; pack
# The gate overhead again with profile: dense and gated 8 x 2048 eager steps interleaved in one process, the ratio of
# medians with its bootstrap interval (profile trains a gated model with fresh noise per sample since f31fd6b).
bin=build-gpu/mamba-codesign; mkdir -p /tmp/m
for p in mamba-130m mamba-370m; do
  (grep -v '^description' configs/models/$p.yaml; echo 'gate_type: hard_concrete') > /tmp/$p-gated.yaml
  [[ -d /tmp/m/$p-gated ]] || $bin init --config /tmp/$p-gated.yaml --out /tmp/m/$p-gated > /dev/null
  [[ -d /tmp/m/$p-s0 ]] || $bin init --preset $p --sparsity 0.0 --out /tmp/m/$p-s0 > /dev/null
  timeout 70 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-gated --device cuda --prefill "" --decode-batch "" \
    --train-batch 8x2048 --train-mode eager --iters 20 --out $R/gate-$p.json > /dev/null 2>&1
  echo "gate profile $p rc=$? ($(el) s)"
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["cases"][0]["results"]
q = r[1]["ratio_to_model0"]
print("dense %.2f gated %.2f ms, ratio %.4f [%.4f, %.4f]" % (r[0]["summary_ms"]["p50"], r[1]["summary_ms"]["p50"], q["ratio_of_medians"], q["lower"], q["upper"]))' $R/gate-$p.json
done; pack
# Where the 130M 25 % step's time goes against dense (kernel time by name; an eager step each): what does not
# shrink with E besides the scan.
timeout 60 build-gpu/bench/bench_model --preset mamba-130m --variants dense,p25 --prefill "" --decode 0 --iters 5 \
  --trace $R/tr130 > /dev/null 2>&1
for v in dense p25; do python3 scripts/trace_summary.py $R/tr130.$v > $R/tr130.$v.sum.txt 2>&1; xz -T8 $R/tr130.$v; done
head -8 $R/tr130.dense.sum.txt $R/tr130.p25.sum.txt; pack
for round in 1 2 3; do for p in mamba-130m mamba-370m; do
  (( $(left) > 70 )) || break 2
  for q in 0 25 50 75; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout 65 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s25 --model /tmp/m/$p-s50 --model /tmp/m/$p-s75 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-$round.json > /dev/null 2>&1
  echo "train $p round $round rc=$? ($(el) s)"
  python3 - $R/tr-$p-$round.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    p = [r["summary_ms"]["p50"] for r in c["results"]]
    print(c["label"], " ".join("%.3f" % x for x in p), "| ratios", " ".join("%.4f" % (x / p[0]) for x in p[1:]), flush=True)
PY
  pack
done; done
echo "done ($(el) s)"
