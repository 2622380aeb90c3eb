# Thirty-sixth session's plan for the next lease, call B: the persistent-layers lab (130M: the resident layout — 16
# or 15 clusters of 8, channels split unevenly — and 12 clusters; 370M: the resident layout), built off the device
# and carried as .gpu/pll (rebuild with the command in dev/decode_lab/persistent_layers_lab.cu's header, -o .gpu/pll);
# beside it the test binary of this tree; then the library's version (ops::decode_layers, ops option decode_layers,
# written in the thirty-sixth session, never run): its GPU test, the model's batch-64 / batch-1 graph decode with
# --decode-layers off and on (processes alternating, two rounds as time allows), and the whole GPU suite with the
# time left.
# Usage (carry .gpu): DEADLINE=560 bash docs/results/2026-12-07d_persistent_layers/call_b.sh
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
cp .gpu/pll /tmp/pll; chmod +x /tmp/pll
timeout 200 /tmp/pll --reps 20 --check-layers 3 > $R/pll.txt 2>&1; echo "lab rc=$? ($(el) s)"
grep -E "^(shape|resident|check|phases|time)" $R/pll.txt; pack
wait $B; echo "build $(tail -1 /tmp/build.log) ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; tail -3 /tmp/build.log > $R/build_tail.txt
timeout 120 build-gpu/tests/test_gpu --gtest_filter='GpuCodesign.DecodeLayers*:GpuCodesign.GraphDecodingGivesTheEagerGreedyTokens' > $R/tests_decode_layers.log 2>&1
echo "decode_layers tests rc=$? ($(el) s)"; grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) " $R/tests_decode_layers.log; grep -B2 -A12 "Failure" $R/tests_decode_layers.log | head -40
pack
MCD_BUILD_TARGETS="mamba-codesign" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build2.log 2>&1
echo "CLI build rc=$? ($(el) s)"
bin=build-gpu/mamba-codesign
for p in mamba-130m-gpt2 mamba-370m; do $bin init --preset $p --out /tmp/m/$p > /dev/null; done
for spec in "mamba-130m-gpt2 1" "mamba-370m 1" "mamba-130m-gpt2 2" "mamba-370m 2"; do  # as time allows
  set -- $spec
  for opt in off on; do
    (( $(left) < 60 )) && break 2
    b=old; [[ $opt == on ]] && b=new  # (scripts/profile_before_after.py's names: old = off, new = on)
    timeout 50 $bin --decode-layers $opt profile --model /tmp/m/$1 --device cuda --prefill "" --decode-batch 64,1 \
      --decode-mode graph --decode-steps 32 --iters 20 --out $R/p/$b-$1-$2.json > $R/p/$b-$1-$2.log 2>&1
    echo "$1 $opt round $2 rc=$? ($(el) s): $(python3 -c "import json;d=json.load(open('$R/p/$b-$1-$2.json'));print([(c['label'],c['results'][0]['per_token_ms_p50']) for c in d['cases']])" 2>&1 | tail -c 200)"
  done
done
python3 scripts/profile_before_after.py $R/p | tee $R/ab.md
pack
(( $(left) > 40 )) && timeout $(( $(left) - 10 )) build-gpu/tests/test_gpu > $R/tests_all.log 2>&1
echo "all GPU tests rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) " $R/tests_all.log; grep -E "^\[  FAILED  \]" $R/tests_all.log | head; tail -3 $R/tests_all.log
pack; echo "done ($(el) s)"
