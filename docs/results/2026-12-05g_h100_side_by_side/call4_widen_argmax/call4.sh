# Twenty-second session, call 4 (a fresh machine, ~370 s of device time left): ops::widen_argmax (the batch-64
# greedy head's widening + argmax in one kernel). Build the CLI and test_gpu; the new and the extended GPU tests;
# then graph decode at batch 64 (and 1) with --decode-fused-head off (norm, head, cast, copy, torch's argmax)
# and on (now: norm, cuBLAS head, widen_argmax), alternating processes, within DEADLINE.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-290} - $(date +%s) + t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
MCD_BUILD_TARGETS="mamba-codesign test_gpu" bash scripts/build_gpu.sh > $OUT/build.log 2>&1; echo "build rc=$? ($(el) s)"
grep -m3 -A8 " error" $OUT/build.log
timeout 60 build-gpu/tests/test_gpu --gtest_filter='GpuDecodeLinear.*:GpuCodesign.*Decod*:GpuCodesign.*Fused*:GpuCodesign.*Greedy*:GpuCodesign.*Overlapped*' > $OUT/t.log 2>&1
echo "focused tests rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]|^\[ RUN|OK \]" $OUT/t.log | grep -v "RUN" | head -30
mkdir -p /tmp/m
for p in mamba-130m mamba-370m; do build-gpu/mamba-codesign init --preset $p --out /tmp/m/$p > /dev/null; done
for r in 1 2; do for p in mamba-130m mamba-370m; do for v in off on; do
  (( $(left) > 12 )) || break 3
  timeout $(( $(left) - 5 )) build-gpu/mamba-codesign --decode-fused-head $v profile --model /tmp/m/$p --device cuda --prefill "" \
    --decode-batch 64,1 --decode-mode graph --decode-steps 64 --iters 30 --out $OUT/ab-$p-$v-$r.json > $OUT/ab-$p-$v-$r.log 2>&1
  echo "ab $p $v round $r rc=$? ($(el) s)"
done; done; done
python3 - <<'PY'
import json, glob, os
out = os.environ["OUT"]
for f in sorted(glob.glob(out + "/ab-*.json")):
    d = json.load(open(f))
    cells = []
    for c in d["cases"]:
        for r in c["results"]:
            cells.append(f'{c["label"]} {r["summary_ms"]["p50"]:.4f}')
    print(os.path.basename(f), " | ".join(cells))
PY
echo "done ($(el) s)"
