# Twenty-sixth session, call 1: mamba-ssm built beside (detached, nice 19, for a call 2 on the warm machine);
# our build; the whole test_gpu (the twenty-fifth session's unrun defaults and rolled/eight-channel staged
# block forward); issue 13's step-time evidence in one run: the 8 x 2048 graph training step, dense and
# 25/50/75 % pruned interleaved in one profile per preset; the 130M 25 % width (B*E 9,216) with the forced
# segmented four-lane backward against the default, alternating, two rounds; the gate overhead (bench_model
# dense,gated, eager); then bench_ops (scan forward at (1, 4096, 1536/2048); every algorithm at (8, 2048, 1152))
# and prefill while time lasts. Files: $OUT/results.tgz.   Usage: DEADLINE=520 bash .gpu/s26_call1.sh
set -u
if [[ ${WITH_THEIRS:-0} == 1 ]]; then
  rm -rf /tmp/mext /tmp/mext.finished
  (setsid nohup nice -n 19 bash .gpu/ext/build_ext.sh /tmp/mext > /tmp/mext.log 2>&1 &)
fi
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-520} - $(date +%s) + t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops bench_model" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log
timeout 150 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -E "OK \] (ScanKernelModes.(AlgorithmChoice|NarrowBackward|AutogradRunsTheEight|BlockForward)|GpuDecodeLinear.FewRow|GpuCodesign.FewRow)" /tmp/t.log
grep -B2 -A12 "Failure" /tmp/t.log | head -50
grep -E "^\[ +(OK|PASSED|FAILED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
bin=build-gpu/mamba-codesign
mkdir -p /tmp/m
ratios() {  # a multi-model training profile: each model's P50 and its ratio to the first (dense)
  python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cases"]:
    p = [r["summary_ms"]["p50"] for r in c["results"]]
    print(sys.argv[1].split("/")[-1], c["label"], " ".join("%.3f" % x for x in p), "| ratios", " ".join("%.4f" % (x / p[0]) for x in p[1:]), flush=True)
PY
}
for p in mamba-130m mamba-370m; do
  for q in 0 25 50 75; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout 150 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s25 --model /tmp/m/$p-s50 --model /tmp/m/$p-s75 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p.json > $R/tr-$p.log 2>&1
  echo "train $p dense,s25,s50,s75 rc=$? ($(el) s)"; ratios $R/tr-$p.json
done; pack
for r in 1 2; do for v in four_lanes auto; do
  (( $(left) > 150 )) || break 2
  timeout 60 $bin --scan-narrow-backward $v profile --model /tmp/m/mamba-130m-s0 --model /tmp/m/mamba-130m-s25 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-130m-s25-$v-$r.json > /tmp/tr.log 2>&1
  echo "train 130m s25 $v round $r rc=$? ($(el) s)"; ratios $R/tr-130m-s25-$v-$r.json
done; done; pack
for p in mamba-130m mamba-370m; do
  (( $(left) > 100 )) || break
  timeout 80 build-gpu/bench/bench_model --preset $p --variants dense,gated,dense,gated --prefill "" --decode 0 --iters 20 > $R/bm-$p.jsonl 2> /dev/null
  echo "bench_model $p rc=$? ($(el) s)"
  python3 -c '
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    print(d["preset"], d["variant"], "%.2f ms" % d["timing"]["median_ms"], "peak %.2f GB" % (d.get("peak_memory_bytes", 0) / 1e9))' $R/bm-$p.jsonl
done; pack
for run in both:1,4096,1536,16,48 both:1,4096,2048,16,64 model:8,2048,1152,16,48; do
  (( $(left) > 40 )) || break
  sh=${run#*:}
  timeout 40 build-gpu/bench/bench_ops --no-composite --layout ${run%%:*} --shape $sh 2> /dev/null | tee -a $R/bench_ops.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    try: d = json.loads(line)
    except Exception: continue
    if d.get("bench") in ("scan_fwd", "scan_fwd_bwd"):
        print(d["bench"], "E=%d" % d["E"], d.get("algorithm", ""), d.get("layout", ""), d.get("mode", ""), d.get("dtype", ""), "%.1f" % d["median_us"], flush=True)'
  echo "bench $sh ($(el) s)"; pack
done
for p in mamba-130m mamba-370m; do
  (( $(left) > 40 )) || break
  timeout 35 $bin profile --model /tmp/m/$p-s0 --device cuda --prefill 1x1024,1x4096 --prefill-mode both --decode-batch "" \
    --iters 20 --out $R/pf-$p.json > /tmp/pf.log 2>&1
  echo "prefill $p rc=$? ($(el) s)"
  python3 - $R/pf-$p.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[1].split("/")[-1], " | ".join("%s %.3f" % (c["label"], c["results"][0]["summary_ms"]["p50"]) for c in d["cases"]), flush=True)
PY
done; pack
cat /tmp/mext/status.txt 2>/dev/null; echo "done ($(el) s)"
