# Thirty-seventh session's plan for the next lease: the batch-64 decode's layers as 2, 4 or 8 independent row groups
# run as parallel branches of one CUDA graph (dev/decode_lab/split_batch_lab.cu, built off the device and carried as
# .gpu/sbl; rebuild with the command in its header, -o .gpu/sbl), against the one 64-row chain, 130M and 370M.
# Usage (carry .gpu): DEADLINE=120 bash docs/results/2026-12-07e_split_batch/call_a.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res_split; mkdir -p $R; pack() { tar -czf $OUT/results_split.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
cp .gpu/sbl /tmp/sbl; chmod +x /tmp/sbl
for round in 1 2; do
  timeout 100 /tmp/sbl --reps 20 > $R/sbl_$round.txt 2>&1; echo "split lab round $round rc=$? ($(el) s)"
  grep -E "^(time|check: )|FAILED" $R/sbl_$round.txt
done
pack; echo "done ($(el) s)"
