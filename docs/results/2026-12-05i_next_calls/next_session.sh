# Twenty-fifth session (or later), call 1: the twenty-third session's unrun code — state_sequential_segmented
# (the eight-lane forward with the four-lane backward in 4 time segments; chosen only under the ops option
# scan_narrow_backward four_lanes, added in the twenty-fourth session, which had no device) and the eight-lane
# backward's 8 segments at B·E ≤ 4,096 (bench-chosen; its training step unmeasured). Build; the whole
# test_gpu; bench_ops at the pruned training widths (every algorithm, segment counts 2–16); the 8 × 2048
# graph training step of dense and 75 %-pruned 370M / 130M, --scan-narrow-backward eight_lanes / four_lanes
# alternating (the one walk, --scan-time-segments off, was measured in the twenty-third session: 0.4718 / 0.6149).
# Output: the key lines on stdout; every file in $OUT/results.tgz (the device returns at most 8 files).
# Usage on the device: DEADLINE=560 bash .gpu/next_session.sh   (carry [".gpu"]: gpt2 assets, hf_fixture.tar.xz)
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -5
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops" bash scripts/build_gpu.sh > /tmp/build.log 2>&1; echo "build rc=$? ($(el) s)"
grep -m3 -A8 " error" /tmp/build.log
timeout 120 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] ScanKernelModes.(AllAlgorithms|TimeSeg|Autograd|AlgorithmChoice|NarrowBackward)" /tmp/t.log
grep -B2 -A12 "Failure" /tmp/t.log | head -60
cp /tmp/t.log $R/test_gpu.log; cp /tmp/build.log $R/build.log; pack
for sh in 8,2048,512,16,64 8,2048,384,16,48 8,2048,768,16,48; do
  timeout 90 build-gpu/bench/bench_ops --no-composite --layout model --shape $sh 2> /dev/null | tee -a $R/bench_ops.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    try: d = json.loads(line)
    except Exception: continue
    a = d.get("algorithm", "")
    if d.get("bench") in ("scan_fwd", "scan_fwd_bwd") and ("eight" in a or "segmented" in a or a.startswith("state_sequential")):
        print(d["bench"], "E=%d" % d["E"], a, d.get("mode", ""), "%.1f" % d["median_us"], flush=True)'
  echo "bench $sh ($(el) s)"; pack
done
bin=build-gpu/mamba-codesign; mkdir -p /tmp/m
for p in mamba-370m mamba-130m; do for s in 0 75; do
  [[ -d /tmp/m/$p-s$s ]] || $bin init --preset $p --sparsity 0.$s --out /tmp/m/$p-s$s > /dev/null; done; done
for p in mamba-370m mamba-130m; do for r in 1 2; do for v in eight_lanes four_lanes; do
  (( $(left) > 30 )) || break 3
  timeout $(( $(left) - 10 )) $bin --scan-narrow-backward $v profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s75 --device cuda \
    --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-$v-$r.json > $R/tr-$p-$v-$r.log 2>&1
  echo "train $p narrow backward $v round $r rc=$? ($(el) s)"; pack
  python3 - "$R/tr-$p-$v-$r.json" <<'PY'
import json, sys, os
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    rs = c["results"]
    if len(rs) == 2:
        a, b = rs[0]["summary_ms"]["p50"], rs[1]["summary_ms"]["p50"]
        print(os.path.basename(sys.argv[1]), f'{c["label"]}: dense {a:.3f} s75 {b:.3f} ratio {b/a:.4f}', flush=True)
PY
done; done; done
echo "done ($(el) s)"
