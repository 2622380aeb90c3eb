# Thirty-fifth session, call A: (1) dev/gemm_lab's whole-slice products (staged_slice_gemm: one wave of narrow column
# tiles, each block's inner slice requested at once, clusters along K where it does not fit) against cuBLAS at 64 and
# 32 rows; (2) the thirty-fourth session's scan-step registers/lanes lab (docs/results/2026-12-07b_scan_step_registers,
# its labs only: DEADLINE keeps its model A/B out). Both checked against float64 before they are timed.
# Usage (carry .gpu): bash docs/results/2026-12-07c_gemm_slices/call.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res; mkdir -p $R
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
( $NVCC -std=c++17 -O3 -arch=sm_90 -lineinfo --expt-relaxed-constexpr -Xptxas -v -I src dev/gemm_lab/gemm_lab.cu \
    src/ops/cuda/decode_linear.cu -lcublas -lcublasLt -o /tmp/gl > $R/gemm_lab_build.log 2>&1; echo "rc=$?" >> $R/gemm_lab_build.log ) &
GL=$!
DEADLINE=200 NCU_BEFORE=0 bash docs/results/2026-12-07b_scan_step_registers/call.sh 2>&1 | tee $R/registers.txt | grep -v "^-r"
wait $GL; echo "gemm_lab built: $(tail -1 $R/gemm_lab_build.log) ($(el) s)"
grep -A1 "staged_slice" $R/gemm_lab_build.log | grep -E "registers|spill" | sort | uniq -c | head -12
timeout 240 /tmp/gl --rows 64,32 --reps 200 > $R/gemm_lab.txt 2>&1; echo "gemm_lab rc=$? ($(el) s)"
grep -c " ok" $R/gemm_lab.txt; grep FAIL $R/gemm_lab.txt | head
# per case and rows: cuBLAS's graph time, the best staged slice's, the best Lt's
python3 - <<'PY'
import re,collections
t=collections.defaultdict(dict)
for l in open('/tmp/res/gemm_lab.txt'):
    m=re.match(r"time  (.{14}) M=\s*(\d+) (.*?)\s+plain\s+([0-9.]+) us\s+graph\s+([0-9.]+) us",l)
    if m: t[(m.group(1).strip(),int(m.group(2)))][m.group(3).strip()]=float(m.group(5))
for k,v in t.items():
    cb=v.get("cuBLAS (GemmEx, fp32 compute)")
    sl={n:x for n,x in v.items() if n.startswith("staged slice")}
    lt=min((x for n,x in v.items() if n.startswith("Lt#")),default=float('nan'))
    if sl:
        b=min(sl,key=sl.get); print(f"{k[0]:14} M={k[1]:2}: cuBLAS {cb:6.2f}  best Lt {lt:6.2f}  best slice {sl[b]:6.2f} ({b}) ratio {sl[b]/cb:.3f}")
        for n,x in sorted(sl.items(),key=lambda i:i[1]): print(f"      {x:6.2f}  {n}")
PY
tar -czf $OUT/results.tgz -C $R . ; echo "done ($(el) s)"
