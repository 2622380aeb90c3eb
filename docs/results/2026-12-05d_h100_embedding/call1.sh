# Twenty-first session, call 1 (prepared in the twentieth): this tree (ops::embedding's CUDA backward, unrun) and
# the old tree 0f975de (.gpu/old_src.tar.xz) built side by side; focused GPU tests incl. GpuEmbedding; 130M pruned
# training A/B (new, old), traced once (new).
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
out=$OUT/c1; mkdir -p $out /tmp/shared/fixtures /tmp/old /tmp/m; t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $out/gpu.txt
tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
tar -xJf .gpu/old_src.tar.xz -C /tmp/old
[[ -n ${NO_OLD:-} ]] && echo "old build skipped" > /tmp/old_rc.txt || (MCD_BUILD_TARGETS=mamba-codesign MCD_BUILD_DIR=/tmp/old/build-gpu bash /tmp/old/old/scripts/build_gpu.sh > $out/build_old.log 2>&1; echo "old build rc=$? ($(el) s)" > /tmp/old_rc.txt) &
MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops" bash scripts/build_gpu.sh > $out/build.log 2>&1; echo "build rc=$? ($(el) s)"
grep -m3 -A8 " error" $out/build.log
wait; cat /tmp/old_rc.txt; grep -m3 -A8 " error" $out/build_old.log
NEW=build-gpu/mamba-codesign OLD=/tmp/old/build-gpu/mamba-codesign
timeout 150 build-gpu/tests/test_gpu --gtest_filter='GpuEmbedding.*:GpuCrossEntropyRows.*:GpuAddRmsNorm.*:GpuChunkedCrossEntropy.*:GpuPretrain.*:GpuParity.*:GpuTrain.*:GpuCodesign.Graph*' > $out/t1.log 2>&1; echo "focused tests rc=$? ($(el) s)"
grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $out/t1.log; grep -B2 -A6 "Failure" $out/t1.log | head -40
for s in 0 25 50 75; do $NEW init --preset mamba-130m --sparsity 0.$s --out /tmp/m/130-s$s > /dev/null || echo "init s$s failed"; done
prof() {  # label binary preset-prefix [extra]
  timeout 200 $2 profile --model /tmp/m/$3-s0 --model /tmp/m/$3-s25 --model /tmp/m/$3-s50 --model /tmp/m/$3-s75 --device cuda \
    --prefill '' --decode-batch '' --train-batch 8x2048 --train-mode both --iters 20 --out $out/$1.json "${@:4}" > $out/$1.log 2>&1
  echo "$1 rc=$? ($(el) s)"
  python3 - "$out/$1.json" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
for c in d["cases"]:
    rows=[]
    for r in c["results"]:
        q=r.get("ratio_to_model0")
        rows.append(f'{r["summary_ms"]["p50"]:.2f}' + (f' ({q["ratio_of_medians"]:.3f})' if q else ''))
    print(" ", c["label"], " | ".join(rows))
PY
}
prof new130a $NEW 130 --trace $out/tr130.json
[[ -z ${NO_OLD:-} ]] && prof old130a $OLD 130
for f in $out/tr130*.json; do python3 scripts/trace_kernels.py "$f" > "${f%.json}-kernels.txt" 2>&1; head -22 "${f%.json}-kernels.txt"; rm -f "$f"; done
left() { echo $(( ${DEADLINE:-575} - $(date +%s) + t0 )); }
if (( $(left) > 150 )); then
  timeout $(( $(left) - 15 )) build-gpu/tests/test_gpu > $out/test_gpu.log 2>&1; echo "test_gpu rc=$? ($(el) s)"
  grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $out/test_gpu.log | head -30; tail -3 $out/test_gpu.log
fi
echo "done ($(el) s)"
# Then on the warm machine (call 2): DEADLINE-free, bash .gpu/t2.sh (130M second round old-first, 370M A/B, whole suite).
