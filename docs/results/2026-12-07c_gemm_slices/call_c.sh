# Thirty-fifth session, call C: dev/gemm_lab's whole-slice product versions 3 (version 2 with the slice length a
# compile-time constant: the copy loops without divisions, unrolled) and 4 (bulk copies, one per row and chunk, on
# mbarriers) beside version 2 and cuBLAS at 64 and 32 rows; ncu on one launch of versions 3 and 4 (32 columns, 4 groups) and of
# cuBLAS (nvjet) at 130M in_proj, 64 rows. The lab binary was built off the device (as call B; carried as .gpu/gl4).
# Usage (carry .gpu): bash docs/results/2026-12-07c_gemm_slices/call_c.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
cp .gpu/gl4 /tmp/gl4; chmod +x /tmp/gl4
timeout 200 /tmp/gl4 --rows 64,32 --reps 200 --versions "slice v" > $R/gemm_lab3.txt 2>&1; echo "gemm_lab rc=$? ($(el) s)"
grep -c " ok" $R/gemm_lab3.txt; grep -E "FAIL|error" $R/gemm_lab3.txt | head
python3 - <<'PY'
import re,collections
t=collections.defaultdict(dict)
for l in open('/tmp/res/gemm_lab3.txt'):
    m=re.match(r"time  (.{14}) M=\s*(\d+) (.*?)\s+plain\s+([0-9.]+) us\s+graph\s+([0-9.]+) us",l)
    if m: t[(m.group(1).strip(),int(m.group(2)))][m.group(3).strip()]=float(m.group(5))
for k,v in t.items():
    cb=v.get("cuBLAS (GemmEx, fp32 compute)")
    sl={n:x for n,x in v.items() if "slice" in n}
    if sl:
        b=min(sl,key=sl.get); print(f"{k[0]:14} M={k[1]:2}: cuBLAS {cb:6.2f}  best {sl[b]:6.2f} ({b}) ratio {sl[b]/cb:.3f}")
        for n,x in sorted(sl.items(),key=lambda i:i[1])[:8]: print(f"      {x:6.2f}  {n}")
PY
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
if [[ -n "$NCU" ]]; then
  timeout 90 $NCU --kernel-name regex:staged_slice_gemm2 --launch-skip 3 --launch-count 1 --set full -o $R/ncu_v3 \
    /tmp/gl4 --rows 64 --cases "130M in_proj" --versions "slice v3 32 cols, 4 groups" --reps 10 > $R/ncu_v3.log 2>&1
  echo "ncu v3 rc=$? ($(el) s)"
  timeout 90 $NCU --kernel-name regex:staged_slice_gemm4 --launch-skip 3 --launch-count 1 --set full -o $R/ncu_v4 \
    /tmp/gl4 --rows 64 --cases "130M in_proj" --versions "slice v4 32 cols, 4 groups" --reps 10 > $R/ncu_v4.log 2>&1
  echo "ncu v4 rc=$? ($(el) s)"
  timeout 90 $NCU --kernel-name regex:nvjet --launch-skip 3 --launch-count 1 --set full -o $R/ncu_cublas \
    /tmp/gl4 --rows 64 --cases "130M in_proj" --versions nothing --reps 10 > $R/ncu_cublas.log 2>&1
  echo "ncu cublas rc=$? ($(el) s)"
  for f in ncu_v3 ncu_v4 ncu_cublas; do
    $NCU -i $R/$f.ncu-rep --page details --csv > $R/$f-details.csv 2>&1
    echo "== $f"; grep -E '"(Duration|DRAM Throughput|L2 Cache Throughput|Grid Size|Block Size|Dynamic Shared Memory Per Block|Executed Instructions|Issue Slots Busy|No Eligible|SM Active Cycles|Elapsed Cycles)"' $R/$f-details.csv | awk -F'","' '{print $(NF-2)": "$NF}' | cut -c1-100 | head -20
  done
fi
tar -czf $OUT/results.tgz -C $R . ; echo "done ($(el) s)"
