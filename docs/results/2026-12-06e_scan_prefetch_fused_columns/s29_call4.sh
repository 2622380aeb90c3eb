# Twenty-ninth session, call 4: the final tree (the fused batch-1 in_proj kernel with 8 columns per block) — the
# whole test_gpu, the batch-1 graph decode per token (130M, 370M) with 8 columns, then ncu on one fused in_proj
# kernel (130M, eager decode: where its ~8 µs go), then 4 columns (the previous code) rebuilt and measured.
# Usage on the device (carry .gpu): DEADLINE=480 bash .gpu/s29_call4.sh
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
measure c8a
timeout 120 ncu --set full -k regex:add_norm_decode_linear --launch-skip 30 --launch-count 1 -o $R/ncu_inproj \
  $bin --decode-overlap off profile --model /tmp/mamba-130m --device cuda --prefill "" --decode-batch 1 --decode-mode eager \
  --decode-steps 4 --iters 2 --out /tmp/ncu-profile.json > $R/ncu.log 2>&1
echo "ncu rc=$? ($(el) s)"; tail -2 $R/ncu.log
ncu --import $R/ncu_inproj.ncu-rep --page details --print-details all > $R/ncu_details.txt 2>&1
ncu --import $R/ncu_inproj.ncu-rep --page raw > $R/ncu_raw.txt 2>&1
grep -E "Grid Size|Duration|Registers Per|Achieved Occupancy|Issue Slots Busy|Warp Cycles Per Issued|DRAM Throughput|L2 Hit" $R/ncu_details.txt | head -12
grep -E "smsp__average_warps_issue_stalled_[a-z_]+_per_issue_active.ratio " $R/ncu_raw.txt | sort -k3 -g -r | head -8
pack
for c in 4 8; do
  (( $(left) > 70 )) || break
  sed -i "s/^constexpr int kFusedOneRowCols = [0-9]*;/constexpr int kFusedOneRowCols = $c;/" src/ops/cuda/decode_linear.cu
  cmake --build build-gpu --target mamba-codesign -j16 > /tmp/rb.log 2>&1; echo "rebuild cols=$c rc=$? ($(el) s)"
  measure c$c-$(el)
  pack
done
sed -i "s/^constexpr int kFusedOneRowCols = [0-9]*;/constexpr int kFusedOneRowCols = 8;/" src/ops/cuda/decode_linear.cu
echo "done ($(el) s)"
