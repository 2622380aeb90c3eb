# Thirty-second session, call A (carry .gpu): this tree (widen_argmax with four 16-byte loads per thread; block_columns'
# one multiply-add) against HEAD fd5df52 (.gpu/old.tgz), both built at once, one lease: the whole GPU suite on this
# tree, then `profile` old/new alternately (two rounds; prefill 1x1024/1x4096, graph decode b1/b64; 130M and 370M),
# then batch-64 130M traces of both (widen_argmax's own time).  Usage: DEADLINE=570 bash .gpu/s32_a.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
mkdir -p /tmp/o && tar -xzf .gpu/old.tgz -C /tmp/o
TEST_FILTER='*' TEST_TIMEOUT=150 ROUNDS=2 timeout $(( ${DEADLINE:-570} - 70 )) \
  bash scripts/decode_before_after.sh /tmp/o/old /tmp/ab 2>&1 | tee $R/ab.txt
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/ab/test_gpu_decode.log > $R/test_gpu_summary.txt
grep -B2 -A12 "Failure\|thrown" /tmp/ab/test_gpu_decode.log | head -60 > $R/test_gpu_failures.txt
cp -r /tmp/ab/profiles $R/; cp /tmp/ab/gpu.txt $R/ab_gpu.txt; tail -30 /tmp/ab/build_new.log > $R/build_new_tail.txt
pack; echo "A/B done ($(el) s)"
for b in old new; do
  bin=build-gpu/mamba-codesign; [[ $b == old ]] && bin=build-gpu-old/mamba-codesign
  timeout 60 $bin profile --model /tmp/ab/models/mamba-130m-gpt2 --device cuda --prefill "" --decode-batch 64 \
    --decode-mode graph --decode-steps 16 --iters 10 --trace /tmp/tr64-$b.json --out $R/b64-trace-$b.json > /dev/null 2>&1
  echo "b64 trace $b rc=$? ($(el) s)"
  python3 scripts/trace_kernels.py /tmp/tr64-$b*.decode*.json > $R/tr64-130m-$b-kernels.txt 2>&1
  head -16 $R/tr64-130m-$b-kernels.txt
done
pack
# If time is left: the staged block forward's SASS-level counters at (1, 4096, 1536, 16) bf16 (BlockFwdStaged), for
# the scan-forward target: which instructions per (step, state) there are beyond the dozen the arithmetic needs.
left=$(( ${DEADLINE:-570} - $(date +%s) + t0 ))
if (( left > 100 )); then
  timeout $(( left - 60 )) cmake --build build-gpu --target bench_ops -j16 > /tmp/bench_build.log 2>&1
  echo "bench_ops build rc=$? ($(el) s)"
  left=$(( ${DEADLINE:-570} - $(date +%s) + t0 ))
  timeout $(( left - 25 )) ncu --kernel-name-base mangled -k 'regex:block_fwd_kernel.*Li4ELi2ELb1ELb1ELb1EEE13__nv_bfloat16' \
    -c 1 --section SourceCounters --section LaunchStats --section Occupancy --import-source yes -o /tmp/prof \
    build-gpu/bench/bench_ops --shape 1,4096,1536,16 --no-composite --reps 2 --layout model > /tmp/ncu.log 2>&1
  echo "ncu rc=$? ($(el) s)"; tail -3 /tmp/ncu.log
  ncu -i /tmp/prof.ncu-rep --page source --csv --print-source sass > $R/sass_block_fwd.csv 2>/dev/null
  python3 scripts/sass_summary.py $R/sass_block_fwd.csv --top 25 > $R/sass_block_fwd_summary.txt 2>&1
  head -60 $R/sass_block_fwd_summary.txt
fi
pack; echo "done ($(el) s)"
