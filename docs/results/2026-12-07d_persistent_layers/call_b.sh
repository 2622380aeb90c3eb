# Thirty-sixth session's plan for the next lease, call B: the persistent-layers lab (every resident layout: 16 or 15
# clusters of 8 with channels split unevenly, and 12 clusters with 16 channels per block), built off the device and
# carried as .gpu/pll (rebuild with the command in dev/decode_lab/persistent_layers_lab.cu's header, -o .gpu/pll).
# Usage (carry .gpu): bash docs/results/2026-12-07d_persistent_layers/call_b.sh
set -u
R=$OUT; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
cp .gpu/pll /tmp/pll; chmod +x /tmp/pll
timeout 200 /tmp/pll --reps 20 --check-layers 3 2>&1 | tee $R/pll.txt; echo "rc=${PIPESTATUS[0]}"
