# Twenty-third session, call 2: the carry kernel forming Δ and dy once per (t, e) and 4 time segments at
# B·E ≤ 4,096. Build; the whole test_gpu; bench_ops at the pruned training widths (segment rows); then
# the 8 × 2048 training step of dense and 75 %-pruned models, --scan-time-segments off / on alternating.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops" bash scripts/build_gpu.sh > /tmp/build.log 2>&1; echo "build rc=$? ($(el) s)"
grep -m3 -A8 " error" /tmp/build.log
timeout 120 build-gpu/tests/test_gpu > /tmp/t2.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t2.log | head -20
grep -E "OK \] ScanKernelModes.(TimeSeg|Autograd|AlgorithmChoice)" /tmp/t2.log
grep -B2 -A12 "Failure" /tmp/t2.log | head -60
cp /tmp/t2.log $OUT/test_gpu.log
timeout 200 build-gpu/bench/bench_ops --no-composite --layout model --shape 8,2048,384,16,48 --shape 8,2048,512,16,64 \
  --shape 8,2048,768,16,48 > $OUT/bench_ops.jsonl 2> /tmp/bench.err; echo "bench_ops rc=$? ($(el) s)"
python3 - "$OUT/bench_ops.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try: d = json.loads(line)
    except Exception: continue
    if d.get("bench", "").startswith("scan") and "eight" in d.get("algorithm", "") or "auto" in d.get("algorithm", ""):
        print(d["bench"], "E=%d" % d["E"], d["algorithm"], d.get("mode", ""), "%.1f" % d["median_us"])
PY
bin=build-gpu/mamba-codesign; mkdir -p /tmp/m
for p in mamba-370m mamba-130m; do for s in 0 75; do
  [[ -d /tmp/m/$p-s$s ]] || $bin init --preset $p --sparsity 0.$s --out /tmp/m/$p-s$s > /dev/null; done; done
for p in mamba-370m mamba-130m; do for r in 1 2; do for v in off on; do
  (( $(left) > 70 )) || break 3
  timeout $(( $(left) - 10 )) $bin --scan-time-segments $v profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s75 --device cuda \
    --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out /tmp/tr-$p-$v-$r.json > /tmp/tr-$p-$v-$r.log 2>&1
  echo "train $p segments $v round $r rc=$? ($(el) s)"
done; done; done
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob("/tmp/tr-*.json")):
    d = json.load(open(f)); cells = []
    for c in d["cases"]:
        rs = c["results"]
        if len(rs) == 2:
            a, b = rs[0]["summary_ms"]["p50"], rs[1]["summary_ms"]["p50"]
            cells.append(f'{c["label"]}: dense {a:.3f} s75 {b:.3f} ratio {b/a:.4f}')
    print(os.path.basename(f), " | ".join(cells))
PY
tar -czf $OUT/train.tar.gz -C /tmp $(cd /tmp && ls tr-*.json tr-*.log 2>/dev/null) 2>/dev/null
echo "done ($(el) s)"
