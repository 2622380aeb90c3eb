# Twenty-seventh session, calls 3 and 4 (NVIDIA H100): the SDM gate as one op (ops/channel_gate, one kernel each
# way) and all layers' noise in one pinned copy (resample_gates). Build; GpuChannelGate and GpuSeams first,
# then the gate overhead (bench_model dense,gated twice per preset, eager step; before this change on this
# card: 130M +6.4 %, 370M +4.0 / +3.1 %), a trace of one gated 130M step, the whole test_gpu, and issue 13's
# training curve (dense and 25/50/75 % pruned in one profile per preset, graph step) while time lasts.
# Usage: DEADLINE=560 bash .gpu/s27_call3.sh   (carry [".gpu"]; files: $OUT/results.tgz)
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_model" bash scripts/build_gpu.sh > /tmp/build.log 2>&1
echo "build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log
timeout 40 build-gpu/tests/test_gpu --gtest_filter='GpuChannelGate.*:GpuSeams.*' > $R/gate_tests.log 2>&1
echo "gate tests rc=$? ($(el) s)"; grep -E "^\[ +(OK|FAILED|PASSED) " $R/gate_tests.log; grep -A8 Failure $R/gate_tests.log | head -20; pack
for p in mamba-130m mamba-370m; do
  timeout 70 build-gpu/bench/bench_model --preset $p --variants dense,gated,dense,gated --prefill "" --decode 0 --iters 20 > $R/bm-$p.jsonl 2> /dev/null
  echo "bench_model $p rc=$? ($(el) s)"
  python3 -c '
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except Exception: continue
    print(d["preset"], d["variant"], "%.2f ms" % d["timing"]["median_ms"], "peak %.2f GB" % (d.get("peak_memory_bytes", 0) / 1e9))' $R/bm-$p.jsonl
done; pack
timeout 40 build-gpu/bench/bench_model --preset mamba-130m --variants gated --prefill "" --decode 0 --iters 5 --trace $R/tr > /dev/null 2>&1
python3 scripts/trace_summary.py $R/tr.gated > $R/tr.gated.sum.txt 2>&1; head -9 $R/tr.gated.sum.txt; xz -T8 $R/tr.gated; pack
timeout 90 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
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
  (( $(left) > 110 )) || break
  for q in 0 25 50 75; do [[ -d /tmp/m/$p-s$q ]] || $bin init --preset $p --sparsity 0.$q --out /tmp/m/$p-s$q > /dev/null; done
  timeout 100 $bin profile --model /tmp/m/$p-s0 --model /tmp/m/$p-s25 --model /tmp/m/$p-s50 --model /tmp/m/$p-s75 \
    --device cuda --prefill "" --decode-batch "" --train-batch 8x2048 --train-mode graph --iters 20 --out $R/tr-$p.json > $R/tr-$p.log 2>&1
  echo "train $p dense,s25,s50,s75 rc=$? ($(el) s)"; ratios $R/tr-$p.json
done; pack
echo "done ($(el) s)"
