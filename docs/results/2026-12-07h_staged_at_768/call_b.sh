# Thirty-ninth session, call B (the tree that runs BlockFwdStaged from 768 channels): the whole GPU suite, then the 130M
# pruned prefill ratios (dense and 25/50/75 % interleaved, 1 x 4096 as a graph), two processes; then batch-64 graph
# decode traces of the dense and 25 % models (that width's decode ratio is 0.928 against 0.924: where 3 µs per token are).
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=420 bash docs/results/2026-12-07h_staged_at_768/call_b.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu" source scripts/gpu_perf_prelude.sh  # R, pack, el, left; the card, the tree, the build
timeout 200 build-gpu/tests/test_gpu > $R/test_gpu.log 2>&1; echo "GPU tests rc=$? ($(el) s)"
grep -E '^\[  (PASSED|FAILED) |BlockForwardWithinAndBeyond' $R/test_gpu.log; pack
bin=build-gpu/mamba-codesign
for s in 0 25 50 75; do $bin init --preset mamba-130m --sparsity 0.$s --out /tmp/m/s$s > /dev/null; done
for round in 1 2; do
  (( $(left) < 30 )) && break
  timeout 60 $bin profile --model /tmp/m/s0 --model /tmp/m/s25 --model /tmp/m/s50 --model /tmp/m/s75 --device cuda \
    --prefill 1x4096 --prefill-mode graph --decode-batch "" --iters 30 --out $R/pruned-130m-$round.json > $R/pruned-130m-$round.log 2>&1
  echo "profile round $round rc=$? ($(el) s)"
  python3 -c "
import json; d=json.load(open('$R/pruned-130m-$round.json'))
for c in d['cases']:
  p=[r['summary_ms']['p50'] for r in c['results']]; print(c['label'], [round(x,4) for x in p], 'ratios', [round(x/p[0],3) for x in p[1:]])"
done
for s in 0 25; do
  (( $(left) < 25 )) && break
  timeout 40 $bin profile --model /tmp/m/s$s --device cuda --prefill "" --decode-batch 64 --decode-mode graph --decode-steps 16 \
    --iters 10 --trace /tmp/tr64-s$s.json --out $R/b64-trace-s$s.json > $R/b64-trace-s$s.log 2>&1
  echo "b64 trace s$s rc=$? ($(el) s)"
  python3 scripts/trace_kernels.py /tmp/tr64-s$s*.decode*.json > $R/tr64-130m-s$s-kernels.txt 2>&1; head -14 $R/tr64-130m-s$s-kernels.txt
done
pack; echo "done ($(el) s)"
