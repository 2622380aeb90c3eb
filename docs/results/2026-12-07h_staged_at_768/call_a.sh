# Thirty-ninth session, call A (same lease as the narrow_variants lab, with only kBlockFwdStagedMinChannels changed to 768):
# the CLI rebuilt, then the 130M pruned prefill ratios, two processes. Usage (carry .gpu): DEADLINE=400 bash call_a.sh
set -u
BUILD_TARGETS="mamba-codesign" source scripts/gpu_perf_prelude.sh
bin=build-gpu/mamba-codesign
for s in 0 25 50 75; do [[ -d /tmp/m/s$s ]] || $bin init --preset mamba-130m --sparsity 0.$s --out /tmp/m/s$s > /dev/null; done
for round in 1 2; do
  timeout 60 $bin profile --model /tmp/m/s0 --model /tmp/m/s25 --model /tmp/m/s50 --model /tmp/m/s75 --device cuda \
    --prefill 1x4096 --prefill-mode graph --decode-batch "" --iters 30 --out $R/pruned-130m-$round.json > $R/pruned-130m-$round.log 2>&1
  echo "profile round $round rc=$? ($(el) s)"
  python3 -c "
import json; d=json.load(open('$R/pruned-130m-$round.json'))
for c in d['cases']:
  p=[r['summary_ms']['p50'] for r in c['results']]; print(c['label'], [round(x,4) for x in p], 'ratios', [round(x/p[0],3) for x in p[1:]])"
done
pack; echo "done ($(el) s)"
