# Thirty-seventh session's plan for the next lease: the batch-64 decode step as 2, 4 or 8 independent row groups on
# parallel CUDA-graph branches — the lab (dev/decode_lab/split_batch_lab.cu, built off the device and carried as
# .gpu/sbl; rebuild with the command in its header, -o .gpu/sbl), then the model's version (GraphDecoder's
# row_groups): its GPU test and `profile --decode-row-groups 1,2,4` at batch 64, 130M and 370M, two rounds; then the
# whole GPU suite with the time left.
# Usage (carry .gpu): DEADLINE=560 bash docs/results/2026-12-07e_split_batch/call_a.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
R=/tmp/res_split; mkdir -p $R/p; pack() { tar -czf $OUT/results_split.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
( MCD_BUILD_TARGETS="test_gpu mamba-codesign" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build.log 2>&1; echo "rc=$?" >> /tmp/build.log ) &
B=$!
cp .gpu/sbl /tmp/sbl; chmod +x /tmp/sbl
for round in 1 2; do
  timeout 100 /tmp/sbl --reps 20 > $R/sbl_$round.txt 2>&1; echo "split lab round $round rc=$? ($(el) s)"
  grep -E "^(time|check: )|FAILED" $R/sbl_$round.txt
done
pack
wait $B; echo "build $(tail -1 /tmp/build.log) ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; tail -3 /tmp/build.log > $R/build_tail.txt
timeout 120 build-gpu/tests/test_gpu --gtest_filter='GpuCodesign.GraphDecoding*' > $R/tests_groups.log 2>&1
echo "row-group tests rc=$? ($(el) s)"; grep -E "^\[ +(OK|PASSED|FAILED) " $R/tests_groups.log; grep -B2 -A12 "Failure" $R/tests_groups.log | head -30
pack
bin=build-gpu/mamba-codesign
for p in mamba-130m-gpt2 mamba-370m; do $bin init --preset $p --out /tmp/m/$p > /dev/null; done
for spec in "mamba-130m-gpt2 1" "mamba-370m 1" "mamba-130m-gpt2 2" "mamba-370m 2"; do  # as time allows
  set -- $spec
  (( $(left) < 60 )) && break
  timeout 60 $bin profile --model /tmp/m/$1 --device cuda --prefill "" --decode-batch 64 --decode-mode graph \
    --decode-row-groups 1,2,4 --decode-steps 32 --iters 20 --out $R/p/$1-$2.json > $R/p/$1-$2.log 2>&1
  echo "$1 round $2 rc=$? ($(el) s): $(python3 -c "import json;d=json.load(open('$R/p/$1-$2.json'));print([(c['label'],round(c['results'][0]['per_token_ms_p50'],4)) for c in d['cases']])" 2>&1 | tail -c 300)"
done
pack
# With the time left: this tree's whole GPU suite (GraphDecoder changed; every graph-decoding test goes through it).
(( $(left) > 40 )) && timeout $(( $(left) - 10 )) build-gpu/tests/test_gpu > $R/tests_all.log 2>&1
echo "all GPU tests rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) " $R/tests_all.log; grep -E "^\[  FAILED  \]" $R/tests_all.log | head
pack; echo "done ($(el) s)"
