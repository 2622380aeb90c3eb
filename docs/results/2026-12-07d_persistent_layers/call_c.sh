# Thirty-seventh session, call C: where the persistent kernel's layer time goes. The lab (rebuilt with sub-phase
# clock64 stamps of block 0 and three variant bits: the next layer's states loaded in phase 4 instead of at the
# end of phase 3, and its in_proj slice requested in phase 4 after y's so phase 4 no longer waits for it, and dt_proj as one tensor-core product), then Nsight
# Compute on one 24-layer launch of the 130M kernel (variant 0) with source-level stall sampling.
# Usage (carry .gpu, the lab built as .gpu/pll): DEADLINE=300 bash docs/results/2026-12-07d_persistent_layers/call_c.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-300} - $(date +%s) + t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
cp .gpu/pll /tmp/pll; chmod +x /tmp/pll
timeout 200 /tmp/pll --reps 20 --check-layers 3 > $R/pll.txt 2>&1; echo "lab rc=$? ($(el) s)"
grep -E "^(shape|resident|phases|subphases|time)|FAILED" $R/pll.txt; pack
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
if [[ -n "$NCU" && "${NCU_ON:-1}" == 1 && $(left) -gt 60 ]]; then
  # launches of the 120-block 130M kernel: 16 checks (8 variants × 64 and 7 rows), then 16 stamped runs: skip to the
  # first stamped run of variant 0 (24 layers)
  timeout $(( $(left) > 160 ? 150 : $(left) - 10 )) $NCU --kernel-name regex:persistent_layers_kernel --launch-skip 16 --launch-count 1 --set full \
    --import-source yes -o $R/ncu /tmp/pll --reps 3 --check-layers 1 > $R/ncu.log 2>&1
  echo "ncu rc=$? ($(el) s)"; tail -3 $R/ncu.log
  $NCU -i $R/ncu.ncu-rep --page details --csv > $R/ncu_details.csv 2>&1
  $NCU -i $R/ncu.ncu-rep --page source --csv --print-source cuda > $R/ncu_source_cuda.csv 2>&1
  $NCU -i $R/ncu.ncu-rep --page source --csv --print-source sass > $R/ncu_source_sass.csv 2>&1
  wc -c $R/ncu_*.csv; head -c 600 $R/ncu_source_cuda.csv
  grep -E '"(Duration|DRAM Throughput|Memory Throughput|Registers Per Thread|L2 Hit Rate|Compute \(SM\) Throughput)"' $R/ncu_details.csv | awk -F'","' '{print $(NF-2)": "$NF}' | head -8
else echo "no ncu"; fi
pack; echo "done ($(el) s)"
