# Twenty-fourth session, call B (on call A's warm machine and build-gpu): the second rounds and the rest —
# the decode curve at batches 1 … 64 and row groups 0 / 8 again; the 130M 75 % step's narrow backward A/B and
# 370M's second round; bench_ops at the pruned training widths; the lab at the pruned prefill widths.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-570} - $(date +%s) + t0 )); }
R=/tmp/resB; mkdir -p $R; pack() { tar -czf $OUT/resultsB.tgz -C $R . ; }
nvidia-smi --query-gpu=name --format=csv,noheader; git rev-parse HEAD 2>/dev/null
bin=build-gpu/mamba-codesign
MCD_BUILD_TARGETS="mamba-codesign bench_ops scan_lab" bash scripts/build_gpu.sh -DMCD_BUILD_DEV=ON > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"  # after call A on this machine: bench_ops only
summary() {
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    print(sys.argv[1].split("/")[-1], c["label"], " ".join("%.4f" % r["summary_ms"]["p50"] for r in c["results"]), flush=True)
PY
}
ratio() {
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    rs = c["results"]
    if len(rs) == 2:
        a, b = rs[0]["summary_ms"]["p50"], rs[1]["summary_ms"]["p50"]
        print(sys.argv[1].split("/")[-1], c["label"], "dense %.3f s75 %.3f ratio %.4f" % (a, b, b / a), flush=True)
PY
}
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
timeout 90 $bin profile --model /tmp/mamba-130m --device cuda --prefill "" --decode-batch 1,2,4,8,9,16,32,64 \
  --decode-mode graph --decode-steps 32 --iters 20 --out $R/curve-130m.json > /tmp/c.log 2>&1
echo "curve rc=$? ($(el) s)"; summary $R/curve-130m.json; pack
for g in 8 0; do for p in mamba-130m mamba-370m; do
  (( $(left) > 300 )) || break 2
  timeout 60 $bin --decode-row-groups $g profile --model /tmp/$p --device cuda --prefill "" --decode-batch 16,32,64 \
    --decode-mode graph --decode-steps 32 --iters 20 --out $R/dec-$p-g$g.json > /tmp/dec.log 2>&1
  echo "decode $p row groups $g rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/dec.log; summary $R/dec-$p-g$g.json
done; done; pack
for p in mamba-130m mamba-370m; do for s in 0 75; do
  [[ -d /tmp/m/$p-s$s ]] || $bin init --preset $p --sparsity 0.$s --out /tmp/m/$p-s$s > /dev/null; done; done
for p in mamba-130m mamba-370m; do for v in four_lanes eight_lanes; do
  (( $(left) > 120 )) || break 2
  timeout 80 $bin --scan-narrow-backward $v profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s75 --device cuda \
    --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-$v.json > /tmp/tr.log 2>&1
  echo "train $p narrow backward $v rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/tr.log; ratio $R/tr-$p-$v.json; pack
done; done
for sh in 8,2048,512,16,64 8,2048,384,16,48; do
  (( $(left) > 60 )) || break
  timeout 50 build-gpu/bench/bench_ops --no-composite --layout model --shape $sh 2> /dev/null | tee -a $R/bench_ops.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    try: d = json.loads(line)
    except Exception: continue
    a = d.get("algorithm", "")
    if d.get("bench") in ("scan_fwd_bwd",) and ("eight" in a or "segmented" in a):
        print(d["bench"], "E=%d" % d["E"], a, d.get("mode", ""), "%.1f" % d["median_us"], flush=True)'
  echo "bench $sh ($(el) s)"; pack
done
for e in 512 384; do
  (( $(left) > 30 )) || break
  timeout $(( $(left) - 10 )) build-gpu/dev/scan_lab --shape 1,4096,$e,16 --only 34,45,54,57,59,64,66,67 \
    --reps 20 2>&1 | tee -a $R/scan_lab.txt | grep -E "Check|bf16|FAIL|rror"
  echo "lab E=$e ($(el) s)"; pack
done
echo "done ($(el) s)"
