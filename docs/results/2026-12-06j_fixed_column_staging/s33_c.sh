# Thirty-third session, call C: the staged forward's neighbours by fixed columns (dev/scan_lab/staged_variants.cu), and
# staging_pair.cu again after its set-up moved into staged_bench.cuh (same checks).  bash .gpu/s33_c.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
F="-std=c++17 -O3 -arch=sm_90 --use_fast_math -lineinfo --expt-relaxed-constexpr -I src"
$NVCC $F --resource-usage -o /tmp/sv dev/scan_lab/staged_variants.cu > $R/sv_build.log 2>&1 & 
$NVCC $F -o /tmp/sp dev/scan_lab/staging_pair.cu > $R/sp_build.log 2>&1 &
wait; echo "builds done ($(el) s)"; ls -la /tmp/sv /tmp/sp
timeout 200 /tmp/sv --reps 40 2>&1 | tee $R/staged_variants.txt; echo "staged_variants rc=$? ($(el) s)"; pack
timeout 120 /tmp/sp --reps 20 --shape 4096,1536,16 2>&1 | tee $R/staging_pair.txt; echo "staging_pair rc=$? ($(el) s)"; pack
