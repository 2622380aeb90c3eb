# Thirtieth session, call B (right after next_session.sh, on its warm machine and build): the same-lease side by side
# with mamba-ssm (its extensions built beside since call A's first minute): scripts/vs_mamba_ssm.sh's infer part —
# ours (prefill 1x1024 / 1x4096 eager and graph, graph decode at batch 1 and 64, bench_ops), theirs, ours again.
# Usage on the device (carry .gpu): DEADLINE=560 bash .gpu/next_session_b.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared PYTHONPATH=/tmp/mext/mamba:/tmp/mext/causal-conv1d
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; bash scripts/source_hash.sh
sed -i "s/^constexpr bool kOneRowNormLoadsFirst = [a-z]*;/constexpr bool kOneRowNormLoadsFirst = true;/" \
  src/ops/cuda/decode_linear.cu  # as committed, whatever call A left
cmake --build build-gpu --target mamba-codesign -j16 > /tmp/rb.log 2>&1; echo "CLI up to date rc=$? ($(el) s)"
MCD_WAIT_FOR=/tmp/mext.finished PARTS=infer timeout $(( ${DEADLINE:-560} - 20 )) bash scripts/vs_mamba_ssm.sh /tmp/vs > /tmp/vs.log 2>&1
echo "side by side rc=$? ($(el) s)"; tail -5 /tmp/vs.log; cat /tmp/vs/summary.md 2>/dev/null | head -60
tar -czf $OUT/vs.tgz -C /tmp vs; echo "done ($(el) s)"
