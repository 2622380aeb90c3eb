# Next session, first call (carry .gpu; written in the thirty-third session, not run: no machine): the ops option decode_prefetch_state (the conv step prefetching the
# scan state into L2) off and on in one binary, alternating processes: its GPU tests first, then batch-64 graph
# decode P50s (130M and 370M, two rounds as time allows); first the scan-step rows lab (dev/scan_lab/scan_step_rows.cu).  Usage: DEADLINE=225 bash docs/results/2026-12-06j_fixed_column_staging/next_session_e.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-220} - $(date +%s) + t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
R=/tmp/res; mkdir -p $R/p; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
# First the scan-step rows lab (dev/scan_lab/scan_step_rows.cu: ~15 s to build, seconds to run), then the library.
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
$NVCC -std=c++17 -O3 -arch=sm_90 --use_fast_math -lineinfo --expt-relaxed-constexpr -I src -o /tmp/ssr \
  dev/scan_lab/scan_step_rows.cu > $R/ssr_build.log 2>&1 && timeout 60 /tmp/ssr --reps 40 2>&1 | tee $R/scan_step_rows.txt
echo "scan_step_rows rc=$? ($(el) s)"; pack
MCD_BUILD_TARGETS="mamba-codesign test_gpu" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; tail -3 /tmp/build.log > $R/build_tail.txt
timeout 60 build-gpu/tests/test_gpu --gtest_filter='GpuDecodeStep.ConvStep*:GpuCodesign.GraphDecoding*' > /tmp/t.log 2>&1
echo "tests rc=$? ($(el) s)"; grep -E "^\[ +(OK|PASSED|FAILED) " /tmp/t.log | tee $R/tests.txt; grep -B2 -A10 "Failure" /tmp/t.log | head -30
pack
bin=build-gpu/mamba-codesign
for p in mamba-130m-gpt2 mamba-370m; do $bin init --preset $p --out /tmp/m/$p > /dev/null; done
for spec in "mamba-130m-gpt2 1" "mamba-370m 1" "mamba-130m-gpt2 2" "mamba-370m 2"; do
  set -- $spec
  for opt in off on; do
    (( $(left) < 20 )) && break 2
    b=old; [[ $opt == on ]] && b=new  # (scripts/profile_before_after.py's names: old = off, new = on)
    timeout 30 $bin --decode-prefetch-state $opt profile --model /tmp/m/$1 --device cuda --prefill "" --decode-batch 64 \
      --decode-mode graph --decode-steps 32 --iters 20 --out $R/p/$b-$1-$2.json > $R/p/$b-$1-$2.log 2>&1
    echo "$1 $opt round $2 rc=$? ($(el) s): $(python3 -c "import json;d=json.load(open('$R/p/$b-$1-$2.json'));print([(c['label'],c['results'][0]['per_token_ms_p50']) for c in d['cases']])" 2>&1 | tail -c 200)"
  done
done
python3 scripts/profile_before_after.py $R/p | tee $R/ab.md
pack; echo "done ($(el) s)"
