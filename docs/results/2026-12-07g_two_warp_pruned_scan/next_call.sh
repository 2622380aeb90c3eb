# For the next lease (written in the thirty-eighth session, not yet run): the block forward's configurations at the
# pruned prefill widths (dev/scan_lab/narrow_variants.cu, built off the device and carried as .gpu/nv; rebuild with the
# command in its header, -o .gpu/nv), two rounds per shape, then this tree's 130M pruned prefill ratios again (dense and
# 25/50/75 % interleaved, 1 x 4096 as a graph, two processes) as the reference for a library change the lab may
# suggest (the 50 % width is 0.010 above its target).
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=300 bash docs/results/2026-12-07g_two_warp_pruned_scan/next_call.sh
set -u
BUILD_TARGETS="mamba-codesign" source scripts/gpu_perf_prelude.sh  # R, pack, el, left; the card, the tree, the build
cp .gpu/nv /tmp/nv; chmod +x /tmp/nv
timeout 150 /tmp/nv --reps 30 > $R/narrow_variants.txt 2>&1; echo "narrow variants rc=$? ($(el) s)"
grep -E "round|check:|FAILED" $R/narrow_variants.txt; pack
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
pack
# Where the half-width prefill's time goes against dense's, kernel by kernel (one eager 1 x 4096 prefill each under
# Kineto; scripts/trace_kernels.py): what besides the scan does not shrink with the width.
for s in 0 50; do
  (( $(left) < 25 )) && break
  timeout 40 $bin profile --model /tmp/m/s$s --device cuda --prefill 1x4096 --prefill-mode eager --decode-batch "" --iters 5 \
    --trace $R/trace-s$s.json --out $R/trace-s$s-profile.json > $R/trace-s$s.log 2>&1
  echo "trace s$s rc=$? ($(el) s)"
  python3 scripts/trace_kernels.py $R/trace-s$s*prefill*.json > $R/trace-s$s-kernels.txt 2>&1; head -16 $R/trace-s$s-kernels.txt
  rm -f $R/trace-s$s*prefill*.json
done
pack; echo "done ($(el) s)"
