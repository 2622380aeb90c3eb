# Thirty-third session, call A (carry .gpu; the tree carries the fixed-column patch, .gpu/fixed_column.patch, applied):
# mamba-ssm's extensions building beside (nice 19, for call B's side by side); the staging pair (lab: each library
# staged configuration vs its fixed-column twin, bit for bit, then timed); the library with the flag on built, its
# whole GPU suite, and bench_ops' scan forward at (1, 4096, 1536) and (1, 4096, 2048).  DEADLINE=570 bash .gpu/s33_a.sh
set -u
[[ -e /tmp/mext.finished || -d /tmp/mext ]] || (setsid nohup nice -n 19 bash .gpu/ext/build_ext.sh /tmp/mext > /tmp/mext.out 2>&1 &)
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
$NVCC -std=c++17 -O3 -arch=sm_90 --use_fast_math -lineinfo --expt-relaxed-constexpr -I src -o /tmp/sp dev/scan_lab/staging_pair.cu > $R/sp_build.log 2>&1
echo "staging_pair build rc=$? ($(el) s)"; tail -5 $R/sp_build.log
timeout 120 /tmp/sp --reps 40 2>&1 | tee $R/staging_pair.txt
echo "staging_pair rc=$? ($(el) s)"; pack
grep -c "true, true, true, true>" src/ops/cuda/selective_scan_block_fwd.cuh
BUILD_TARGETS="mamba-codesign test_gpu bench_ops" source scripts/gpu_perf_prelude.sh
cat $R/gpu.txt
timeout 200 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure\|thrown" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
for s in 1,4096,1536,16 1,4096,2048,16; do
  timeout 60 build-gpu/bench/bench_ops --shape $s --reps 40 --layout both --no-composite > $R/bench_ops_$s.txt 2>&1
  echo "bench_ops $s rc=$? ($(el) s)"; grep -iE "scan|fwd|forward" $R/bench_ops_$s.txt | head -12
done
pack; cat /tmp/mext.out 2>/dev/null | tail -3; echo "done ($(el) s)"
