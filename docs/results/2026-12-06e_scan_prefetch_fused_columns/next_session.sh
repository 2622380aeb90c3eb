# Thirtieth session (or later), one call — copy to .gpu/ (scripts/pack_gpu_carry.sh recreates the carried assets),
# run with carry [".gpu"]:  DEADLINE=540 bash .gpu/next_session.sh
# The twenty-ninth session found the batch-1 decode's fused norm + in_proj (+ conv step) kernel at 8.1 / 10.8 µs per
# 130M / 370M layer (out_proj's plain product: 3.0 / 3.6 µs for half the bytes), waiting on global loads (ncu: 7.9 of
# 15.6 cycles per issued instruction on the long scoreboard, DRAM 12 % busy) and not on its block count. This call
# says which loads: dev/gemm_lab's fused versions (the norm and the conv step toggled, one row), then ncu's
# per-source-line warp-stall samples for that kernel and, beside it, out_proj's, inside the graph decode
# (`--cache-control none`: the residual rows stay in L2 as they do between graph nodes). Then mamba-ssm's
# extensions (built beside from the first minute) for a same-lease side by side of every issue-14 item.
set -u
[[ -e /tmp/mext.finished || -d /tmp/mext ]] || (setsid nohup nice -n 19 bash .gpu/ext/build_ext.sh /tmp/mext > /tmp/mext.out 2>&1 &)
BUILD_ARGS=-DMCD_BUILD_DEV=ON BUILD_TARGETS="mamba-codesign test_gpu bench_ops gemm_lab" source scripts/gpu_perf_prelude.sh
# What the norm and the conv step add to in_proj's product at one row (dev/gemm_lab's fused versions, new in the
# twenty-ninth session, compiled there but not yet run): plain and overlapped, inside a CUDA graph.
timeout 120 build-gpu/dev/gemm_lab --rows 1 --reps 200 > $R/gemm_lab_rows1.txt 2>&1
echo "gemm_lab rc=$? ($(el) s)"; grep -E "FAIL|in_proj.*(library|cuBLAS \(Gemm)" $R/gemm_lab_rows1.txt | head -30; pack
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
lines() {  # REPORT TAG: the source lines with the most warp-stall samples
  ncu --import "$1" --page source --csv --print-source cuda > $R/$2-source.csv 2> $R/$2-source.err \
    || ncu --import "$1" --page source --csv --print-source sass > $R/$2-source.csv 2>> $R/$2-source.err
  python3 - $R/$2-source.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
if not rows: sys.exit("no source page")
head = rows[0]
col = next((i for i, h in enumerate(head) if "Warp Stall Sampling (All" in h), None)
src = next((i for i, h in enumerate(head) if h in ("Source", "Address Source")), 1)
if col is None: sys.exit("no stall column: " + ", ".join(head))
def num(x):
    try: return float(x.replace(",", ""))
    except ValueError: return 0.0
body = sorted(rows[1:], key=lambda r: -num(r[col]) if len(r) > col else 0)
total = sum(num(r[col]) for r in rows[1:] if len(r) > col)
for r in body[:15]: print("%6.1f %%  %s" % (100 * num(r[col]) / max(total, 1), r[src][:150]))
PY
}
for k in add_norm_decode_linear decode_linear_kernel; do
  (( $(left) > 200 )) || break
  timeout 150 ncu --set full --import-source yes --cache-control none -k regex:$k --launch-skip 60 --launch-count 1 \
    -o $R/ncu-$k $bin profile --model /tmp/mamba-130m --device cuda --prefill "" --decode-batch 1 --decode-mode graph \
    --decode-steps 8 --iters 2 --out /tmp/ncu-profile.json > $R/ncu-$k.log 2>&1
  echo "ncu $k rc=$? ($(el) s)"; lines $R/ncu-$k.ncu-rep $k; rm -f $R/ncu-$k.ncu-rep; pack
done
timeout 100 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
# The side by side (theirs needs /tmp/mext, ~250 s from the start): scripts/vs_mamba_ssm.sh's infer part.
if (( $(left) > 240 )); then
  export PYTHONPATH=/tmp/mext/mamba:/tmp/mext/causal-conv1d
  MCD_WAIT_FOR=/tmp/mext.finished PARTS=infer timeout $(( $(left) - 10 )) bash scripts/vs_mamba_ssm.sh $R/vs > $R/vs.log 2>&1
  echo "side by side rc=$? ($(el) s)"; tail -30 $R/vs/summary.md 2>/dev/null
fi
pack; echo "done ($(el) s)"
