# Twenty-fourth session, call A2 (call A without the lab, for the device time left): build (with the lab), the whole test_gpu on this session's unrun code, then the
# three A/B switches in priority order: row-group decode (issue 14 b64), the 370M 75 % step's narrow backward
# (issue 13), the rolled block-forward lab versions (issue 14 scan fwd / 370M prefill).
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-570} - $(date +%s) + t0 )); }
R=/tmp/resA; mkdir -p $R; pack() { tar -czf $OUT/resultsA.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -5
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; cp /tmp/build.log $R/
timeout 150 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] (ScanKernelModes.(AllAlgorithms|TimeSeg|Autograd|AlgorithmChoice|NarrowBackward)|GpuCodesign.RowGroup)" /tmp/t.log
grep -B2 -A12 "Failure" /tmp/t.log | head -50
cp /tmp/t.log $R/test_gpu.log; pack
bin=build-gpu/mamba-codesign
summary() {
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    print(sys.argv[1].split("/")[-1], c["label"], " ".join("%.4f" % r["summary_ms"]["p50"] for r in c["results"]), flush=True)
PY
}
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
for g in 0 8; do for p in mamba-130m mamba-370m; do
  (( $(left) > 150 )) || break 2
  timeout 60 $bin --decode-row-groups $g profile --model /tmp/$p --device cuda --prefill "" --decode-batch 8,16,64 \
    --decode-mode graph --decode-steps 32 --iters 20 --out $R/dec-$p-g$g-$(el).json > /tmp/dec.log 2>&1
  echo "decode $p row groups $g rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/dec.log
  summary $(ls -t $R/dec-$p-g$g-*.json | head -1)
done; done; pack
for p in mamba-370m; do for s in 0 75; do
  [[ -d /tmp/m/$p-s$s ]] || $bin init --preset $p --sparsity 0.$s --out /tmp/m/$p-s$s > /dev/null; done; done
for v in eight_lanes four_lanes; do
  (( $(left) > 80 )) || break
  timeout 80 $bin --scan-narrow-backward $v profile --model /tmp/m/mamba-370m-s0 --model /tmp/m/mamba-370m-s75 --device cuda \
    --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-370m-$v.json > /tmp/tr.log 2>&1
  echo "train 370m narrow backward $v rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/tr.log
  python3 - "$R/tr-370m-$v.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    rs = c["results"]
    if len(rs) == 2:
        a, b = rs[0]["summary_ms"]["p50"], rs[1]["summary_ms"]["p50"]
        print(sys.argv[1].split("/")[-1], c["label"], "dense %.3f s75 %.3f ratio %.4f" % (a, b, b / a), flush=True)
PY
  pack
done
for g in 0 8; do for p in mamba-130m mamba-370m; do
  (( $(left) > 25 )) || break 2
  timeout $(( $(left) < 65 ? $(left) - 5 : 60 )) $bin --decode-row-groups $g profile --model /tmp/$p --device cuda --prefill "" --decode-batch 8,16,64 \
    --decode-mode graph --decode-steps 32 --iters 20 --out $R/dec-$p-g$g-$(el).json > /tmp/dec.log 2>&1
  echo "decode $p row groups $g rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/dec.log
  summary $(ls -t $R/dec-$p-g$g-*.json | head -1)
done; done; pack
echo "done ($(el) s)"
