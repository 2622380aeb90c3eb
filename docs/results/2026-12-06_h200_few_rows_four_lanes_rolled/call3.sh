# Twenty-fifth session, call 3: the tree with scan_narrow_backward auto (four lanes at B*E <= 4096),
# decode_few_row_limit 1, and the prefill's staged block forward rolled (BlockFwdStaged = lab 59) with
# BlockFwdStagedEight (lab 65) where the four-channel blocks do not fit one wave. Build; whole test_gpu;
# profile prefill 1x1024 / 1x4096
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
MCD_BUILD_TARGETS="mamba-codesign test_gpu" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; cp /tmp/build.log $R/
timeout 60 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] (ScanKernelModes.(AlgorithmChoice|NarrowBackward|AutogradRunsTheEight|BlockForward)|GpuDecodeLinear.FewRow|GpuCodesign.FewRow)" /tmp/t.log
grep -B2 -A12 "Failure" /tmp/t.log | head -50
cp /tmp/t.log $R/test_gpu.log; pack
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
for r in 1; do for p in mamba-130m mamba-370m; do
  (( $(left) > 40 )) || break 2
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
for s in 75 25 50; do for p in mamba-370m mamba-130m; do
  (( $(left) > 20 )) || break 2
  for q in 0 $s; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout $(( $(left) - 3 )) $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s$s \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-s$s.json > /tmp/tr.log 2>&1
  echo "train $p s$s rc=$? ($(el) s)"
  python3 - "$R/tr-$p-s$s.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    a, b = [r["summary_ms"]["p50"] for r in c["results"]]
    print(sys.argv[1].split("/")[-1], c["label"], "dense %.3f pruned %.3f ratio %.4f" % (a, b, b / a), flush=True)
PY
done; done; pack
echo "done ($(el) s)"
