# Twenty-fifth session, call 4 (the last ~260 s of device time): build test_gpu only; the tests of this
# session's unrun code first (the block forward's new configurations, the algorithm choice under the new
# defaults, the narrow-backward and few-row tests), then the whole suite while time remains.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -5
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="test_gpu" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log
timeout 30 build-gpu/tests/test_gpu --gtest_filter='ScanKernelModes.Block*:ScanKernelModes.AlgorithmChoice*:ScanKernelModes.NarrowBackward*:ScanKernelModes.AutogradRunsTheEight*:GpuDecodeLinear.FewRow*:GpuCodesign.FewRow*' > /tmp/t1.log 2>&1
echo "focused rc=$? ($(el) s)"; grep -E "^\[ +(OK|FAILED|PASSED) " /tmp/t1.log; grep -B2 -A10 "Failure" /tmp/t1.log | head -40
cp /tmp/t1.log $OUT/focused.log
timeout 60 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "^\[ +(OK|PASSED|FAILED) |^\[==========\]" /tmp/t.log > $OUT/test_gpu_summary.txt
