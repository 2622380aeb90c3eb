# Twenty-fifth session, call 3: the tree with scan_narrow_backward auto (four lanes at B*E <= 4096),
# decode_few_row_limit 1, and the prefill's staged block forward rolled (BlockFwdStaged = lab 59) with
# BlockFwdStagedEight (lab 65) where the four-channel blocks do not fit one wave. Build; whole test_gpu;
# bench_ops scan forward at (1, 4096, 1536) and (1, 4096, 2048); profile prefill 1x1024 / 1x4096
# (eager and graph) of 130M / 370M, and the 75 %-pruned training steps under the new defaults.
# Usage on the device: DEADLINE=450 bash .gpu/call3.sh   (carry [".gpu"])
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-450} - $(date +%s) + t0 )); }
R=/tmp/res3; mkdir -p $R; pack() { tar -czf $OUT/results3.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -12
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; cp /tmp/build.log $R/
timeout 150 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] (ScanKernelModes.(AlgorithmChoice|NarrowBackward|AutogradRunsTheEight|BlockForward)|GpuDecodeLinear.FewRow|GpuCodesign.FewRow)" /tmp/t.log
grep -B2 -A12 "Failure" /tmp/t.log | head -50
cp /tmp/t.log $R/test_gpu.log; pack
for sh in 1,4096,1536,16,48 1,4096,2048,16,64; do
  timeout 60 build-gpu/bench/bench_ops --no-composite --layout both --shape $sh 2> /dev/null | tee -a $R/bench_ops.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    try: d = json.loads(line)
    except Exception: continue
    if d.get("bench") == "scan_fwd" and "block" in d.get("algorithm", ""):
        print(d["bench"], "E=%d" % d["E"], d["algorithm"], d.get("layout", ""), d.get("dtype", ""), "%.1f" % d["median_us"], flush=True)'
  echo "bench $sh ($(el) s)"
done; pack
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
for r in 1 2; do for p in mamba-130m mamba-370m; do
  (( $(left) > 50 )) || break 2
  timeout 60 $bin profile --model /tmp/$p --device cuda --prefill 1x1024,1x4096 --prefill-mode both --decode-batch "" \
    --iters 20 --out $R/pf-$p-$r.json > /tmp/pf.log 2>&1
  echo "prefill $p round $r rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/pf.log
  python3 - $R/pf-$p-$r.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[1].split("/")[-1], " | ".join("%s %.3f" % (c["label"], c["results"][0]["summary_ms"]["p50"]) for c in d["cases"]), flush=True)
PY
done; done; pack
mkdir -p /tmp/m
for p in mamba-370m mamba-130m; do for s in 0 75; do
  [[ -d /tmp/m/$p-s$s ]] || $bin init --preset $p --sparsity 0.$s --out /tmp/m/$p-s$s > /dev/null; done; done
for p in mamba-370m mamba-130m; do
  (( $(left) > 35 )) || break
  timeout 40 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s75 --device cuda \
    --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-default.json > /tmp/tr.log 2>&1
  echo "train $p default rc=$? ($(el) s)"
  python3 - "$R/tr-$p-default.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    rs = c["results"]
    a, b = rs[0]["summary_ms"]["p50"], rs[1]["summary_ms"]["p50"]
    print(sys.argv[1].split("/")[-1], c["label"], "dense %.3f s75 %.3f ratio %.4f" % (a, b, b / a), flush=True)
PY
done; pack
echo "done ($(el) s)"
