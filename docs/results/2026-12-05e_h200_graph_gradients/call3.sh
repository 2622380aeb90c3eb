# Twenty-first session, call 3: the graphed step's gradients as the replays' outputs (ops/step_gradients.h,
# unrun) against the old tree 2f5b223 (.gpu/old_src.tar.xz) built side by side; focused GPU tests; 130M and
# 370M pruned training A/B (profile, graph and eager); end-to-end pretrain with train.cuda_graphs (new graph,
# old graph, new eager; 130M); the whole suite within DEADLINE.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
out=$OUT/c3; mkdir -p $out /tmp/shared/fixtures /tmp/old /tmp/m /tmp/wiki; t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-575} - $(date +%s) + t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $out/gpu.txt
tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
tar -xJf .gpu/old_src.tar.xz -C /tmp/old
(tar -xJf .gpu/enwiki_aa.tar.xz -C /tmp/wiki; echo "enwiki rc=$?" > /tmp/wiki_rc.txt) &
(MCD_BUILD_TARGETS=mamba-codesign MCD_BUILD_DIR=/tmp/old/build-gpu bash /tmp/old/old/scripts/build_gpu.sh > $out/build_old.log 2>&1; echo "old build rc=$? ($(el) s)" > /tmp/old_rc.txt) &
MCD_BUILD_TARGETS="mamba-codesign test_gpu" bash scripts/build_gpu.sh > $out/build.log 2>&1; echo "build rc=$? ($(el) s)"
grep -m3 -A8 " error" $out/build.log
wait; cat /tmp/old_rc.txt /tmp/wiki_rc.txt; grep -m3 -A8 " error" $out/build_old.log
NEW=build-gpu/mamba-codesign OLD=/tmp/old/build-gpu/mamba-codesign
timeout 150 build-gpu/tests/test_gpu --gtest_filter='GpuCodesign.*Graph*:GpuCodesign.StepGraphs*:GpuCodesign.Profile*:GpuPretrain.*:GpuFinetune.*:GpuTrain.*' > $out/t1.log 2>&1; echo "focused tests rc=$? ($(el) s)"
grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $out/t1.log; grep -B2 -A8 "Failure" $out/t1.log | head -40
for p in 130 370; do for s in 0 25 50 75; do
  [[ -d /tmp/m/$p-s$s ]] || $NEW init --preset mamba-${p}m --sparsity 0.$s --out /tmp/m/$p-s$s > /dev/null || echo "init $p s$s failed"
done; done
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
        rows.append(f'{r["summary_ms"]["p50"]:.2f}' + (f' ({q["ratio_of_medians"]:.4f})' if q else ''))
    print(" ", c["label"], " | ".join(rows), " peak reserved GB", [round(r["memory_bytes"]["peak_reserved"]/1e9,2) for r in c["results"]])
PY
}
prof new130a $NEW 130 --trace $out/tr130.json
prof old130a $OLD 130
for f in $out/tr130*.json; do python3 scripts/trace_kernels.py "$f" > "${f%.json}-kernels.txt" 2>&1; head -16 "${f%.json}-kernels.txt"; grep -E "vectorized_elementwise|multi_tensor" "${f%.json}-kernels.txt"; rm -f "$f"; done
prof new370a $NEW 370
prof old370a $OLD 370
e2e() {  # label binary [pretrain options]
  bash scripts/pretrain_timed_run.sh $2 mamba-130m-gpt2 /tmp/wiki/enwiki2015/AA /tmp/tokens /tmp/runs/$1 --threads 8 -- "${@:3}"
  echo "$1 rc=$? ($(el) s)"; python3 scripts/pretrain_run_line.py /tmp/runs/$1/metrics.jsonl build $1 130m 1 0 | tee -a $out/e2e.jsonl
  tail -2 /tmp/runs/$1.log | cut -c1-200
}
if (( $(left) > 200 )); then
  e2e new-graph $NEW --set train.cuda_graphs=true
  e2e old-graph $OLD --set train.cuda_graphs=true
  e2e new-eager $NEW
fi
if (( $(left) > 80 )); then
  timeout $(( $(left) - 15 )) build-gpu/tests/test_gpu > $out/test_gpu.log 2>&1; echo "test_gpu rc=$? ($(el) s)"
  grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $out/test_gpu.log | head -30; tail -3 $out/test_gpu.log
fi
echo "done ($(el) s)"
