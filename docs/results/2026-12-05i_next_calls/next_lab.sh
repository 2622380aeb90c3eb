# The block forward with its state-group loop rolled (scan_lab versions 59–67, twenty-fourth session, not
# yet run) against the library's unrolled configurations (34, 45, 47, 48, 49) and the two-warp staged
# ones (54, 57); the bf16 rows are what the prefill runs. The lab checks every version against float64
# first. ~150 s to build the lab and the CLI side by side. Then the graph decode's per-token time at
# batches 1 … 64, and the row-group step against the whole-batch one (130M, 370M). Key lines on stdout;
# every file in $OUT/results.tgz, refreshed after each phase (the device returns at most 8 files).
# Usage on the device: DEADLINE=560 bash .gpu/next_lab.sh   (carries nothing; no data needed)
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res_lab; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git rev-parse HEAD 2>/dev/null
prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
cmake -S . -B build-lab -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DMCD_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DMCD_BUILD_DEV=ON > /tmp/cfg.log 2>&1; echo "configure rc=$? ($(el) s)"
cmake --build build-lab --target scan_lab mamba-codesign -j16 > /tmp/lab_build.log 2>&1; echo "lab + CLI build rc=$? ($(el) s)"
grep -m3 -A8 " error" /tmp/lab_build.log
for e in 1536 2048 512 384; do
  (( $(left) > 40 )) || break
  timeout $(( $(left) - 10 )) build-lab/dev/scan_lab --shape 1,4096,$e,16 --only 34,45,47,48,49,54,57,59,60,61,62,63,64,65,66,67 \
    --reps 20 2>&1 | tee -a $R/scan_lab.txt | grep -E "Check|bf16|FAIL|error"
  echo "E=$e ($(el) s)"; pack
done
# How a graph decode step's time grows with the batch (the few-row kernels up to 8 rows, cuBLAS's products
# above; never measured between 1 and 64), and the row-group step (ops option decode_row_groups, twenty-fourth
# session, unrun): 8-row groups side by side as branches of the graph against one set of kernels for every
# row. Issue 14's batch-64 item: 1.10× mamba-ssm's throughput against 1.5× (0.768 ms per 130M token; 1.5×
# needs ~0.57). First the GPU tests that cover it (this build has no test_gpu: call 1's build-gpu does).
bin=build-lab/mamba-codesign
if [[ -x build-gpu/tests/test_gpu ]]; then
  timeout 120 build-gpu/tests/test_gpu --gtest_filter='GpuCodesign.RowGroup*' 2>&1 | grep -E "^\[  (PASSED|FAILED) |FAILED  \]|Failure" | head
fi
summary() {
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    print(sys.argv[1].split("/")[-1], c["label"], " ".join("%.4f" % r["summary_ms"]["p50"] for r in c["results"]), "ms per token")
PY
}
if (( $(left) > 60 )) && [[ -x $bin ]]; then
  for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
  for r in 1 2; do for g in 0 8; do for p in mamba-130m mamba-370m; do
    (( $(left) > 40 )) || break 3
    b=16,32,64; [[ $p == mamba-130m && $g == 0 && $r == 1 ]] && b=1,2,4,8,9,16,32,64
    timeout $(( $(left) - 10 )) $bin --decode-row-groups $g profile --model /tmp/$p --device cuda --prefill "" \
      --decode-batch $b --decode-mode graph --decode-steps 32 --iters 20 --out $R/dec-$p-g$g-$r.json > /tmp/dec.log 2>&1
    echo "decode $p row groups $g round $r rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/dec.log
    summary $R/dec-$p-g$g-$r.json; pack
  done; done; done
fi
echo "done ($(el) s)"
