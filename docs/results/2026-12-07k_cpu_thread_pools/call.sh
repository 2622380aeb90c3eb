# Forty-second session: the commit that makes `--threads` set OpenBLAS's pool (util/cpu_threads.h) built with the GPU
# machine's LibTorch 2.11 (MKL: no OpenBLAS pool, so `cpu_threads.blas` should read null), its CPU tests there, the
# whole GPU suite on it, and what `profile` records for the pools on CPU and CUDA.
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=500 bash docs/results/2026-12-07k_cpu_thread_pools/call.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu test_infer test_util test_cli" source scripts/gpu_perf_prelude.sh
bin=build-gpu/mamba-codesign
build-gpu/tests/test_util --gtest_filter='CpuThreads.*' > $R/test_util.log 2>&1; tail -1 $R/test_util.log
build-gpu/tests/test_infer --gtest_filter='ProfileCli.*' > $R/test_infer.log 2>&1; grep -E "SKIPPED|skipped|PASSED|FAILED" $R/test_infer.log | head -5
build-gpu/tests/test_cli --gtest_filter='Cli.Launch*' > $R/test_cli.log 2>&1; tail -1 $R/test_cli.log
$bin init --preset mamba-tiny --out /tmp/tiny > /dev/null
for g in "" "--threads 1" "--threads 4 --blas-threads 2"; do
  $bin $g profile --model /tmp/tiny --device cpu --prefill 1x8 --decode-batch "" --iters 2 --warmup 0 --resamples 10 \
    --out $R/cpu.json > /dev/null 2>&1
  echo "cpu '$g': $(python3 -c "import json;print(json.load(open('$R/cpu.json'))['cpu_threads'])")"
done
$bin --threads 1 profile --model /tmp/tiny --device cuda --prefill 1x8 --decode-batch 1 --iters 2 --warmup 0 \
  --resamples 10 --out $R/cuda.json > $R/cuda.log 2>&1
echo "cuda '--threads 1': $(python3 -c "import json;print(json.load(open('$R/cuda.json'))['cpu_threads'])")"
pack
timeout $(( $(left) - 10 )) build-gpu/tests/test_gpu > $R/test_gpu.log 2>&1; echo "test_gpu rc=$? ($(el) s)"
tail -3 $R/test_gpu.log; grep -E "^\[  FAILED" $R/test_gpu.log | head
pack
echo "done ($(el) s)"
