# Session 36, call B: the persistent-layers lab (built off the device, carried as .gpu/pll).
set -u
R=$OUT; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
cp .gpu/pll /tmp/pll; chmod +x /tmp/pll
timeout 150 /tmp/pll --reps 20 --check-layers 3 2>&1 | tee $R/pll.txt; echo "rc=${PIPESTATUS[0]}"
