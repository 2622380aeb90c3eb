# Thirty-first session, call B (right after next_session_a.sh, on its warm machine and build): the same-lease side by
# side with mamba-ssm on the final tree, `PARTS=infer scripts/vs_mamba_ssm.sh` (ours, theirs, ours again).
# Usage on the device (carry .gpu): DEADLINE=560 bash .gpu/next_session_b2.sh
# (The thirtieth session's version packed /tmp/vs whole — its random models too — and lost the raw data:
# models and traces are left out here.)
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared PYTHONPATH=/tmp/mext/mamba:/tmp/mext/causal-conv1d
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; bash scripts/source_hash.sh
MCD_WAIT_FOR=/tmp/mext.finished PARTS=infer timeout $(( ${DEADLINE:-560} - 30 )) bash scripts/vs_mamba_ssm.sh /tmp/vs > /tmp/vs.log 2>&1
echo "side by side rc=$? ($(el) s)"; tail -5 /tmp/vs.log; cat /tmp/vs/summary.md 2>/dev/null | head -60
tar -czf $OUT/vs.tgz -C /tmp/vs --exclude models --exclude traces .; echo "done ($(el) s)"
