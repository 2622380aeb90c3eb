# Twenty-sixth session (or later), call 1: the twenty-fifth session's unrun code on a GPU — the prefill's
# staged block forward rolled (BlockFwdStaged = lab 59) and BlockFwdStagedEight (lab 65), the new defaults
# (scan_narrow_backward auto: four lanes at B*E <= 4096; decode_few_row_limit 1) — then what they change.
# Build; the whole test_gpu; bench_ops: the scan forward at (1, 4096, 1536 / 2048) (issue 14's scan item)
# and every algorithm at the 130M 25 % training width (8, 2048, 1152) — does state_sequential_segmented
# (the four-lane backward in time segments) beat state_sequential_dense's 1,201-1,208 us there? (issue 13's
# last open ratio, 130M 25 %: 0.9248-0.9300 against 0.9253); profile prefill 1x1024 / 1x4096 (eager and
# graph) of 130M / 370M, two rounds; the 8 x 2048 graph training step, dense against 25 / 50 / 75 % pruned,
# both presets, under the defaults.
# Output: key lines on stdout; every file in $OUT/results.tgz (the device returns at most 8 files).
# Usage on the device: DEADLINE=560 bash .gpu/next_session.sh   (carry [".gpu"]: gpt2 assets, hf_fixture.tar.xz)
# Then, on the warm machine, issue 14's side by side: mamba-ssm built beside ours (never committed; see
# docs/results/2026-12-05g_h100_side_by_side/README.md for how the twenty-second session ran it) and
# PARTS=ours_infer ROUND=1, theirs_infer, ours_infer ROUND=2 of scripts/vs_mamba_ssm.sh.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -8
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log
timeout 120 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] (ScanKernelModes.(AlgorithmChoice|NarrowBackward|AutogradRunsTheEight|BlockForward)|GpuDecodeLinear.FewRow|GpuCodesign.FewRow)" /tmp/t.log
grep -B2 -A12 "Failure" /tmp/t.log | head -50
grep -E "^\[ +(OK|PASSED|FAILED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
for run in both:1,4096,1536,16,48 both:1,4096,2048,16,64 model:8,2048,1152,16,48; do
  sh=${run#*:}
  timeout 90 build-gpu/bench/bench_ops --no-composite --layout ${run%%:*} --shape $sh 2> /dev/null | tee -a $R/bench_ops.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    try: d = json.loads(line)
    except Exception: continue
    if d.get("bench") in ("scan_fwd", "scan_fwd_bwd"):
        print(d["bench"], "E=%d" % d["E"], d.get("algorithm", ""), d.get("layout", ""), d.get("mode", ""), d.get("dtype", ""), "%.1f" % d["median_us"], flush=True)'
  echo "bench $sh ($(el) s)"; pack
done
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
for r in 1 2; do for p in mamba-130m mamba-370m; do
  (( $(left) > 60 )) || break 2
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
ratio() {  # a two-model training profile: dense, pruned and their ratio of P50s
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    a, b = [r["summary_ms"]["p50"] for r in c["results"]]
    print(sys.argv[1].split("/")[-1], c["label"], "dense %.3f pruned %.3f ratio %.4f" % (a, b, b / a), flush=True)
PY
}
for s in 25 75 50; do for p in mamba-130m mamba-370m; do
  (( $(left) > 25 )) || break 2
  for q in 0 $s; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout $(( $(left) - 3 )) $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s$s \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p-s$s.json > /tmp/tr.log 2>&1
  echo "train $p s$s rc=$? ($(el) s)"
  ratio "$R/tr-$p-s$s.json"
done; done; pack
# The segmented four-lane backward at the 130M 25 % width (B*E = 9,216) and dense (12,288), forced by
# --scan-narrow-backward four_lanes (scan_params.h), against the default, alternating, two rounds.
for r in 1 2; do for v in four_lanes auto; do
  (( $(left) > 20 )) || break 2
  timeout $(( $(left) - 3 )) $bin --scan-narrow-backward $v profile --model /tmp/m/mamba-130m-s0 --model /tmp/m/mamba-130m-s25 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-130m-s25-$v-$r.json > /tmp/tr.log 2>&1
  echo "train 130m s25 $v round $r rc=$? ($(el) s)"
  ratio "$R/tr-130m-s25-$v-$r.json"
done; done; pack
echo "done ($(el) s)"
