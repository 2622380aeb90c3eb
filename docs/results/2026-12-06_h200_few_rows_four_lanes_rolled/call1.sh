# Twenty-fifth session, call 1 (one H100/H200): build; the whole test_gpu (the new
# GpuDecodeLinear.FewRowLimitSaysWhichRowCountsRunTheKernels and GpuCodesign.FewRowLimitKeepsTheDecodedLogits);
# graph decode per token at batches 1-9, --decode-few-row-limit 8 (today's dispatch) vs 1 (cuBLAS from 2 rows),
# 130M and 370M, two rounds; the 8 x 2048 graph training step dense vs 75 % pruned, 370M and 130M,
# --scan-narrow-backward eight_lanes vs four_lanes, two rounds alternating.
# Usage on the device: DEADLINE=570 bash .gpu/call1.sh   (carry [".gpu"])
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-570} - $(date +%s) + t0 )); }
R=/tmp/res1; mkdir -p $R; pack() { tar -czf $OUT/results1.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -8
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log; cp /tmp/build.log $R/
timeout 150 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] (GpuDecodeLinear.FewRow|GpuCodesign.FewRow|GpuDecodeStep.OneRow|GpuCodesign.(Overlapped|FusedConv|FusedHead))" /tmp/t.log
grep -B2 -A12 "Failure" /tmp/t.log | head -50
cp /tmp/t.log $R/test_gpu.log; pack
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
decode() {  # round
  for lim in 8 1; do for p in mamba-130m mamba-370m; do
    (( $(left) > 60 )) || return
    timeout 60 $bin --decode-few-row-limit $lim profile --model /tmp/$p --device cuda --prefill "" \
      --decode-batch 1,2,3,4,6,8,9 --decode-mode graph --decode-steps 32 --iters 20 --out $R/dec-$p-lim$lim-$1.json > /tmp/dec.log 2>&1
    echo "decode $p limit $lim round $1 rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/dec.log
    python3 - $R/dec-$p-lim$lim-$1.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[1].split("/")[-1], " ".join("b%d %.4f" % (c["batch"], c["results"][0]["per_token_ms_p50"]) for c in d["cases"]), flush=True)
PY
  done; done; pack
}
decode 1
mkdir -p /tmp/m
for p in mamba-370m mamba-130m; do for s in 0 75; do
  [[ -d /tmp/m/$p-s$s ]] || $bin init --preset $p --sparsity 0.$s --out /tmp/m/$p-s$s > /dev/null; done; done
for r in 1 2; do for p in mamba-370m mamba-130m; do for v in eight_lanes four_lanes; do
  (( $(left) > 75 )) || break 3
  timeout 70 $bin --scan-narrow-backward $v profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s75 --device cuda \
    --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-$v-$r.json > /tmp/tr.log 2>&1
  echo "train $p $v round $r rc=$? ($(el) s)"; grep -m3 -i "error" /tmp/tr.log
  python3 - "$R/tr-$p-$v-$r.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    rs = c["results"]
    if len(rs) == 2:
        a, b = rs[0]["summary_ms"]["p50"], rs[1]["summary_ms"]["p50"]
        print(sys.argv[1].split("/")[-1], c["label"], "dense %.3f s75 %.3f ratio %.4f" % (a, b, b / a), flush=True)
PY
  pack
done; done; done
decode 2
echo "done ($(el) s)"
