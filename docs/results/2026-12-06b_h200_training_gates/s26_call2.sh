# Twenty-sixth session, call 2: the gates' noise copied asynchronously from pinned memory, its logistic
# transform on the host (model/channel_gate.cpp). Build; the whole test_gpu (with the new
# GpuSeams.SampledGatesOnTheDeviceEqualTheHostsSample); the gate overhead: bench_model dense,gated twice per
# preset (eager 8 x 2048 step, one process each). Files: $OUT/results.tgz.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res2; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="test_gpu bench_model" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log
timeout 30 build-gpu/tests/test_gpu --gtest_filter='GpuSeams.*' > $R/seams.log 2>&1
echo "GpuSeams rc=$? ($(el) s)"; grep -E "^\[ +(OK|FAILED|PASSED) " $R/seams.log; grep -A8 Failure $R/seams.log | head -20; pack
for p in mamba-130m mamba-370m; do
  timeout 60 build-gpu/bench/bench_model --preset $p --variants dense,gated,dense,gated --prefill "" --decode 0 --iters 20 > $R/bm-$p.jsonl 2> /dev/null
  echo "bench_model $p rc=$? ($(el) s)"
  python3 -c '
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    print(d["preset"], d["variant"], "%.2f ms" % d["timing"]["median_ms"], "peak %.2f GB" % (d.get("peak_memory_bytes", 0) / 1e9))' $R/bm-$p.jsonl
done; pack
timeout 90 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] GpuSeams" /tmp/t.log; grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
echo "done ($(el) s)"
