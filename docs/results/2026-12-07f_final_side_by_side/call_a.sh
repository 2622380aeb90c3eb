# Thirty-eighth session, call A: the same-lease side by side with mamba-ssm on the tree after the row groups left
# (src/ and tests/ as 96fe6a5's) — ours first, while mamba-ssm's and causal-conv1d's extensions build beside at nice 19
# (.gpu/ext/build_ext.sh, never committed); call B (call_b.sh) runs theirs and ours again on the same warm machine.
# Ours here: `PARTS=ours_infer` of scripts/vs_mamba_ssm.sh (prefill 1x1024/1x4096 eager and graph, graph decode b1/b64,
# bench_ops), the pruned curve's inference cases (dense and 25/50/75 % interleaved in one profile per preset: prefill
# 1x4096 graph, graph decode b64), then the whole GPU suite with the time left.
# Usage (carry .gpu): DEADLINE=560 bash docs/results/2026-12-07f_final_side_by_side/call_a.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
[[ -e /tmp/mext.finished || -d /tmp/mext ]] || (setsid nohup nice -n 19 bash .gpu/ext/build_ext.sh /tmp/mext > /tmp/mext.out 2>&1 &)
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
mkdir -p /tmp/shared/fixtures && tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
V=/tmp/vs; mkdir -p $V/profiles
pack() { tar -czf $OUT/vs_a.tgz -C $V --exclude models --exclude traces . ; }
ROUND=1 PARTS=ours_infer timeout $(( $(left) - 60 )) bash scripts/vs_mamba_ssm.sh $V > /tmp/vs_a.log 2>&1
echo "ours round 1 rc=$? ($(el) s)"; grep -E "rc=|build" /tmp/vs_a.log | head; pack
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do
  (( $(left) < 100 )) && break
  for s in 25 50 75; do [[ -d $V/models/$p-s$s ]] || $bin init --preset $p --sparsity 0.$s --out $V/models/$p-s$s > /dev/null; done
  timeout 120 $bin profile --model $V/models/$p-s0 --model $V/models/$p-s25 --model $V/models/$p-s50 --model $V/models/$p-s75 \
    --device cuda --prefill 1x4096 --prefill-mode graph --decode-batch 64 --decode-mode graph --decode-steps 32 --iters 20 \
    --out $V/profiles/pruned-infer-$p.json > $V/profiles/pruned-infer-$p.log 2>&1
  echo "pruned inference $p rc=$? ($(el) s)"
done
pack
(( $(left) > 60 )) && timeout $(( $(left) - 15 )) build-gpu/tests/test_gpu > $V/tests_all.log 2>&1
echo "all GPU tests rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED) " $V/tests_all.log; grep -E "^\[  FAILED  \]" $V/tests_all.log | head
pack; tail -2 /tmp/mext.out; echo "done ($(el) s)"
