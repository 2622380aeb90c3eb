# Twenty-fifth session, call 2 (chained on call 1's warm machine): the block forward with its state-group
# loop rolled (scan_lab versions 59-67, twenty-fourth session, never run) against the library's unrolled
# configurations (34, 45, 47, 48, 49) and the two-warp staged ones (54, 57) at (1, 4096, E, 16); the lab
# checks every version against float64 first; bf16 rows are what the prefill runs.
# Usage on the device: DEADLINE=560 bash .gpu/call2.sh   (carries nothing)
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git rev-parse HEAD 2>/dev/null
prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
cmake -S . -B build-lab -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DMCD_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DMCD_BUILD_DEV=ON > /tmp/cfg.log 2>&1; echo "configure rc=$? ($(el) s)"
cmake --build build-lab --target scan_lab -j16 > /tmp/lab_build.log 2>&1; echo "lab build rc=$? ($(el) s)"
grep -m3 -A8 " error" /tmp/lab_build.log
for e in 1536 2048 512 384; do
  (( $(left) > 40 )) || break
  timeout $(( $(left) - 10 )) build-lab/dev/scan_lab --shape 1,4096,$e,16 --only 34,45,47,48,49,54,57,59,60,61,62,63,64,65,66,67 \
    --reps 20 2>&1 | tee -a $OUT/scan_lab.txt | grep -E "Check|bf16|FAIL|error"
  echo "E=$e ($(el) s)"
done
echo "done ($(el) s)"
