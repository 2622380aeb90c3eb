# The block forward with its state-group loop rolled (scan_lab versions 59–67, twenty-fourth session, not
# yet run) against the library's unrolled configurations (34, 45, 47, 48, 49) and the two-warp staged
# ones (54, 57); the bf16 rows are what the prefill runs. The lab checks every version against float64
# first. ~150 s to build the lab and the CLI side by side. Then the graph decode's per-token time at
# batches 1 … 64 (130M).
# Usage on the device: DEADLINE=560 bash .gpu/next_lab.sh   (carries nothing; no data needed)
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
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
    --reps 20 2>&1 | tee -a $OUT/scan_lab.txt | grep -E "Check|bf16|FAIL|error"
  echo "E=$e ($(el) s)"
done
# The graph decode per token at batches 1 … 16 for 370M (130M's curve: call_a2/decode_curve_130m.json), the
# baseline for the few-row dispatch fix (twenty-fourth session: batches 2–8 on the few-row kernels are slower
# than 9–16 on cuBLAS's products).
bin=build-lab/mamba-codesign
if (( $(left) > 60 )) && [[ -x $bin ]]; then
  [[ -d /tmp/mamba-370m ]] || $bin init --preset mamba-370m --out /tmp/mamba-370m > /dev/null
  timeout $(( $(left) - 10 )) $bin profile --model /tmp/mamba-370m --device cuda --prefill "" --decode-batch 1,2,4,8,9,16 \
    --decode-mode graph --decode-steps 32 --iters 15 --out $R/curve-370m.json > /tmp/c.log 2>&1
  echo "curve rc=$? ($(el) s)"; pack
  python3 -c "
import json
d = json.load(open('$R/curve-370m.json'))
for c in d['cases']: print(c['label'], '%.4f ms per token' % (c['results'][0]['summary_ms']['p50'] / 32))"
fi
echo "done ($(el) s)"
