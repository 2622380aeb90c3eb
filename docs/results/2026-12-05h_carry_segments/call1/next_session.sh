# Twenty-third session, call 1: the GPU verdict for df63f98 / b3a6ff0 (ops::widen_argmax), the whole
# test_gpu, then the widen_argmax A/B at 370M batch 64 (130M ran last session). Prints the key lines.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/shared/fixtures && tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -5
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops" bash scripts/build_gpu.sh > /tmp/build.log 2>&1; echo "build rc=$? ($(el) s)"
grep -m3 -A8 " error" /tmp/build.log
timeout 90 build-gpu/tests/test_gpu --gtest_filter='GpuDecodeLinear.*:GpuCodesign.*Decod*:GpuCodesign.*Fused*:GpuCodesign.*Greedy*:GpuCodesign.*Overlapped*' > /tmp/t1.log 2>&1
echo "focused tests rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]|OK \]" /tmp/t1.log | head -40
grep -B2 -A12 "Failure" /tmp/t1.log | head -60
timeout $(( $(left) - 150 )) build-gpu/tests/test_gpu > /tmp/t2.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]|tests ran" /tmp/t2.log | head -20
grep -B2 -A12 "Failure" /tmp/t2.log | head -60
cp /tmp/t2.log $OUT/test_gpu.log
mkdir -p /tmp/m; build-gpu/mamba-codesign init --preset mamba-370m --out /tmp/m/mamba-370m > /dev/null
for r in 1 2; do for v in off on; do
  (( $(left) > 25 )) || break 2
  timeout $(( $(left) - 10 )) build-gpu/mamba-codesign --decode-fused-head $v profile --model /tmp/m/mamba-370m --device cuda --prefill "" \
    --decode-batch 64,1 --decode-mode graph --decode-steps 64 --iters 30 --out /tmp/ab-370m-$v-$r.json > /tmp/ab-$v-$r.log 2>&1
  echo "ab 370m $v round $r rc=$? ($(el) s)"
done; done
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob("/tmp/ab-370m-*.json")):
    d = json.load(open(f)); cells = []
    for c in d["cases"]:
        for r in c["results"]: cells.append(f'{c["label"]} {r["summary_ms"]["p50"]:.4f}')
    print(os.path.basename(f), " | ".join(cells))
PY
tar -czf $OUT/ab370m.tar.gz -C /tmp $(cd /tmp && ls ab-370m-*.json ab-*.log 2>/dev/null) 2>/dev/null
echo "done ($(el) s)"
