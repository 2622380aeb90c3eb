# Thirty-ninth session, call D: dev/gemm_lab at 64 rows for 130M dense and pruned 25 / 50 / 75 %, cuBLAS GemmEx beside every
# algorithm cuBLASLt's heuristic offers (the binary built off the device: nvcc -std=c++17 -O3 -arch=sm_90
# --expt-relaxed-constexpr -lineinfo -I src dev/gemm_lab/gemm_lab.cu build/libmcd_kernels.a -lcublas -lcublasLt -o .gpu/gl).
set -u
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
cp .gpu/gl /tmp/gl; chmod +x /tmp/gl
if ! /tmp/gl --help > /dev/null 2>&1 && /tmp/gl --help 2>&1 | grep -q 'cannot open shared'; then
  d=$(dirname "$(find / -name 'libcublasLt.so.13*' 2>/dev/null | head -1)"); export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; echo "libs from $d"
fi
timeout 200 /tmp/gl --rows 64 --cases 130M --versions Lt --reps 200 > $OUT/gemm_lab.txt 2>&1; echo "rc=$?"
grep -E "^time" $OUT/gemm_lab.txt | sed -e "s/ *(weights.*//" -e "s/^time *//" | head -150; grep -ci fail $OUT/gemm_lab.txt
