# Thirty-eighth session: the staged block forward's two-warp configuration (BlockFwdTwoWarps, lab version 30) from
# kBlockFwdTwoWarpMinChannels = 768 channels, for 130M pruned by half (E = 768), whose 1 x 4096 graph prefill ratio
# to dense read 0.790 against its 0.748 target in this session's side by side (../2026-12-07f_final_side_by_side/).
# Builds the GPU tests and the CLI, runs ScanKernelModes.* (the new configuration at B·E = 800), then `profile` of
# 130M dense and 25/50/75 % pruned, interleaved, prefill 1x4096 as a graph (the same case as before).
# Usage (carry .gpu): DEADLINE=300 bash docs/results/2026-12-07g_two_warp_pruned_scan/call_a.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-300} - $(date +%s) + t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
R=/tmp/res_tw; mkdir -p $R; pack() { tar -czf $OUT/results_tw.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
MCD_BUILD_TARGETS="test_gpu mamba-codesign" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log
timeout 60 build-gpu/tests/test_gpu --gtest_filter='ScanKernelModes.*' > $R/tests_scan.log 2>&1
echo "ScanKernelModes rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |^\[  FAILED  \]" $R/tests_scan.log; pack
bin=build-gpu/mamba-codesign
for s in 0 25 50 75; do $bin init --preset mamba-130m --sparsity 0.$s --out /tmp/m/s$s > /dev/null; done
timeout $(( $(left) - 5 )) $bin profile --model /tmp/m/s0 --model /tmp/m/s25 --model /tmp/m/s50 --model /tmp/m/s75 --device cuda \
  --prefill 1x4096 --prefill-mode graph --decode-batch "" --iters 30 --out $R/pruned-130m.json > $R/pruned-130m.log 2>&1
echo "profile rc=$? ($(el) s)"
python3 -c "
import json; d=json.load(open('$R/pruned-130m.json'))
for c in d['cases']:
  p=[r['summary_ms']['p50'] for r in c['results']]; print(c['label'], [round(x,4) for x in p], 'ratios', [round(x/p[0],3) for x in p[1:]])"
pack; echo "done ($(el) s)"
