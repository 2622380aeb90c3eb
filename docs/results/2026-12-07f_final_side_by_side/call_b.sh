# Thirty-eighth session, call B (at once after call_a.sh, on its warm machine): mamba-ssm's prefill, decode and
# scan-op cases through bench/compare/mamba_ssm_side_by_side.py once its extensions (started in call A) are built,
# then ours again (round 2), and the summary of both calls' files (scripts/vs_mamba_ssm_summary.py).
# Usage (carry .gpu): DEADLINE=560 bash docs/results/2026-12-07f_final_side_by_side/call_b.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-560} - $(date +%s) + t0 )); }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared PYTHONPATH=/tmp/mext/mamba:/tmp/mext/causal-conv1d
V=/tmp/vs
pack() { tar -czf $OUT/vs_b.tgz -C $V --exclude models --exclude traces . ; }
for _ in $(seq 1 60); do [[ -e /tmp/mext.finished ]] && break; (( $(left) < 330 )) && break; sleep 5; done
echo "extensions ($(el) s): $(head -2 /tmp/mext/status.txt 2>/dev/null | tr '\n' ' ')"; tail -3 /tmp/mext.out
PARTS=theirs_infer timeout $(( $(left) - 100 )) bash scripts/vs_mamba_ssm.sh $V > /tmp/vs_b1.log 2>&1
echo "theirs rc=$? ($(el) s)"; grep -E "rc=|skipped" /tmp/vs_b1.log | head; pack
(( $(left) > 90 )) && ROUND=2 PARTS=ours_infer timeout $(( $(left) - 10 )) bash scripts/vs_mamba_ssm.sh $V > /tmp/vs_b2.log 2>&1
echo "ours round 2 rc=$? ($(el) s)"; grep -E "rc=" /tmp/vs_b2.log | head
cat $V/summary.md 2>/dev/null | head -40
pack; echo "done ($(el) s)"
