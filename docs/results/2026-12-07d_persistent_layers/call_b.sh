# Thirty-sixth session's plan for the next lease, call B: the persistent-layers lab (130M: the resident layout — 16 or
# 15 clusters of 8, channels split unevenly — and 12 clusters; 370M: the resident layout), built off the device and
# carried as .gpu/pll (rebuild with the command in dev/decode_lab/persistent_layers_lab.cu's header, -o .gpu/pll);
# beside it the test binary of this tree (narrow_linear left the library in the thirty-sixth session, its host files
# only syntax-checked off the device), then the whole GPU suite with the time left.
# Usage (carry .gpu): DEADLINE=540 bash docs/results/2026-12-07d_persistent_layers/call_b.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-540} - $(date +%s) + t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
R=$OUT; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
( MCD_BUILD_TARGETS="test_gpu" MCD_BUILD_DIR=$PWD/build-gpu nice -n 10 bash scripts/build_gpu.sh > /tmp/build.log 2>&1; echo "rc=$?" >> /tmp/build.log ) &
B=$!
cp .gpu/pll /tmp/pll; chmod +x /tmp/pll
timeout 200 /tmp/pll --reps 20 --check-layers 3 > $R/pll.txt 2>&1; echo "lab rc=$? ($(el) s)"
grep -E "^(shape|resident|check|phases|time)" $R/pll.txt
wait $B; echo "build $(tail -1 /tmp/build.log) ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; tail -3 /tmp/build.log > $R/build_tail.txt
(( $(left) > 40 )) && timeout $(( $(left) - 10 )) build-gpu/tests/test_gpu > $R/tests_all.log 2>&1
echo "all GPU tests rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) " $R/tests_all.log; grep -E "^\[  FAILED  \]" $R/tests_all.log | head; tail -3 $R/tests_all.log
echo "done ($(el) s)"
