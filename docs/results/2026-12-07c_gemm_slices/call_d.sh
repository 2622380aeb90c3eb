# Thirty-fifth session, call D: the narrow product in the library (ops/cuda/narrow_linear.cu, ops option
# decode_narrow_linear): the whole GPU suite on this tree, then batch-64 graph decode with --decode-narrow-linear off
# and on in one binary, alternating processes (130M and 370M, two rounds as time allows; the test binary is built
# first, so a short lease still gets the tests); beside the build, the lab's
# x_proj rows at 9 and 16 rows (the kernel's smaller batches, not timed in calls A–C) and the conv step inside x_proj
# (dev/decode_lab/conv_xproj_lab.cu).
# Usage (carry .gpu): DEADLINE=560 bash docs/results/2026-12-07c_gemm_slices/call_d.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
R=/tmp/res; mkdir -p $R/p; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
( MCD_BUILD_TARGETS="test_gpu" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build.log 2>&1; echo "rc=$?" >> /tmp/build.log ) &
B=$!
cp .gpu/gl4 /tmp/gl4; chmod +x /tmp/gl4
timeout 60 /tmp/gl4 --rows 16,9 --reps 200 --cases x_proj --versions "v3 16 cols, cluster 8" > $R/gemm_lab_small_rows.txt 2>&1
echo "lab rc=$? ($(el) s)"; grep -E "^time" $R/gemm_lab_small_rows.txt | sed -E 's/ +/ /g; s/\(weights.*//'
# The conv step inside x_proj (dev/decode_lab/conv_xproj_lab.cu, built off the device and carried as .gpu/cxl).
cp .gpu/cxl /tmp/cxl; chmod +x /tmp/cxl
timeout 60 /tmp/cxl --reps 100 > $R/conv_xproj_lab.txt 2>&1; echo "conv_xproj lab rc=$? ($(el) s)"; grep -E "^(check|time)" $R/conv_xproj_lab.txt
wait $B; echo "build $(tail -1 /tmp/build.log) ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; tail -3 /tmp/build.log > $R/build_tail.txt
timeout 60 build-gpu/tests/test_gpu --gtest_filter='GpuNarrowLinear.*:GpuDecodeLinear.*:GpuCodesign.*Decod*' > $R/tests_narrow.log 2>&1
echo "narrow tests rc=$? ($(el) s)"; grep -E "^\[ +(OK|PASSED|FAILED) " $R/tests_narrow.log; grep -B2 -A12 "Failure" $R/tests_narrow.log | head -40
pack
# The CLI after the tests (the libraries are built: only its own sources), so a short lease still gets the tests.
MCD_BUILD_TARGETS="mamba-codesign" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build2.log 2>&1
echo "CLI build rc=$? ($(el) s)"
bin=build-gpu/mamba-codesign
for p in mamba-130m-gpt2 mamba-370m; do $bin init --preset $p --out /tmp/m/$p > /dev/null; done
for spec in "mamba-130m-gpt2 1" "mamba-370m 1" "mamba-130m-gpt2 2" "mamba-370m 2"; do  # as time allows
  set -- $spec
  for opt in off on; do
    (( $(left) < 45 )) && break 2
    b=old; [[ $opt == on ]] && b=new  # (scripts/profile_before_after.py's names: old = off, new = on)
    timeout 40 $bin --decode-narrow-linear $opt profile --model /tmp/m/$1 --device cuda --prefill "" --decode-batch 64 \
      --decode-mode graph --decode-steps 32 --iters 20 --out $R/p/$b-$1-$2.json > $R/p/$b-$1-$2.log 2>&1
    echo "$1 $opt round $2 rc=$? ($(el) s): $(python3 -c "import json;d=json.load(open('$R/p/$b-$1-$2.json'));print([(c['label'],c['results'][0]['per_token_ms_p50']) for c in d['cases']])" 2>&1 | tail -c 200)"
  done
done
python3 scripts/profile_before_after.py $R/p | tee $R/ab.md
pack
# The whole GPU suite with the time left.
(( $(left) > 40 )) && timeout $(( $(left) - 10 )) build-gpu/tests/test_gpu > $R/tests_all.log 2>&1
echo "all GPU tests rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) " $R/tests_all.log; grep -E "^\[  FAILED  \]" $R/tests_all.log | head; tail -3 $R/tests_all.log
pack; echo "done ($(el) s)"
