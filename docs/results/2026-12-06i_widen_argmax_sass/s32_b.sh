# Thirty-second session, call B (carry .gpu): the scan lab's staged block forwards with B and C staged by fixed
# columns (79, 80, 81) against the library's configurations (59, 65, 60), each checked against float64 first, at
# B = 1, L = 4096, E = 1,536 / 2,048 / 1,152, two rounds.  Usage: DEADLINE=280 bash .gpu/s32_b.sh
set -u
BUILD_ARGS=-DMCD_BUILD_DEV=ON BUILD_TARGETS="scan_lab" source scripts/gpu_perf_prelude.sh
for round in 1 2; do
  for e in 1536 2048 1152; do
    (( $(left) > 20 )) || break
    timeout $(( $(left) - 5 )) build-gpu/dev/scan_lab --shape 1,4096,$e,16 --only 59,65,60,79,80,81 --reps 30 > /tmp/lab.txt 2>&1
    echo "lab round $round E=$e rc=$? ($(el) s)"; cat /tmp/lab.txt >> $R/scan_lab.txt
    grep -E "FAIL|bf16|check:" /tmp/lab.txt | sed 's/  */ /g' | head -10; pack
  done
done
pack; echo "done ($(el) s)"
