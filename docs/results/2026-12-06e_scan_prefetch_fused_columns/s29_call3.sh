# Twenty-ninth session, call 3: the fused norm + in_proj (+ conv step) kernel at batch 1 with 16 columns per block
# (kFusedOneRowCols, decode_linear.cu) — the whole test_gpu on that tree, then the batch-1 graph decode per token
# of 130M and 370M with 16, 4 (the previous code), 8, 16, 4 columns (the constant edited and the CLI rebuilt
# between rounds, on this machine), and per-kernel traces with the overlapped launches off at 16 columns.
# Usage on the device (carry .gpu): DEADLINE=560 bash .gpu/s29_call3.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu" source scripts/gpu_perf_prelude.sh
timeout 100 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
measure() {  # tag
  for p in mamba-130m mamba-370m; do
    timeout 60 $bin profile --model /tmp/$p --device cuda --prefill "" --decode-batch 1 --decode-mode graph \
      --decode-steps 64 --iters 30 --out $R/b1-$p-$1.json > /tmp/d.log 2>&1
    echo "$1 $p rc=$? ($(el) s) $(python3 -c "
import json
d = json.load(open('$R/b1-$p-$1.json'))
print(' '.join('%.4f ms per token' % (c['results'][0]['summary_ms']['p50'] / 64) for c in d['cases']))")"
  done
}
measure c16a
for p in mamba-130m mamba-370m; do
  timeout 60 $bin --decode-overlap off profile --model /tmp/$p --device cuda --prefill "" --decode-batch 1 --decode-mode graph \
    --decode-steps 16 --iters 10 --trace $R/tr-$p-c16.json --out $R/tr-$p-c16-profile.json > /dev/null 2>&1
  python3 scripts/trace_kernels.py $R/tr-$p-c16*.decode*.json > $R/tr-$p-c16-kernels.txt 2>&1; head -8 $R/tr-$p-c16-kernels.txt
  xz -9 $R/tr-$p-c16*.decode*.json
done
pack
for c in 4 8 16 4; do
  (( $(left) > 90 )) || break
  sed -i "s/^constexpr int kFusedOneRowCols = [0-9]*;/constexpr int kFusedOneRowCols = $c;/" src/ops/cuda/decode_linear.cu
  cmake --build build-gpu --target mamba-codesign -j16 > /tmp/rb.log 2>&1; echo "rebuild cols=$c rc=$? ($(el) s)"
  measure c$c-$(el)
  pack
done
sed -i "s/^constexpr int kFusedOneRowCols = [0-9]*;/constexpr int kFusedOneRowCols = 16;/" src/ops/cuda/decode_linear.cu
echo "done ($(el) s)"
