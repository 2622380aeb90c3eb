# Thirty-first session (or later), call A — copy to .gpu/ with b1_decode_ab.sh (scripts/pack_gpu_carry.sh recreates
# the carried assets), run with carry [".gpu"]:  DEADLINE=560 bash .gpu/next_session_a.sh ; then at once, on the warm
# machine, call B (next_session_b2.sh: the same-lease side by side with mamba-ssm, whose extensions this call starts
# building beside).
# 1. The whole GPU suite on the final tree (the thirtieth session's commit: the slice pairs and the norm loads
#    first without their switches; PTX identical to the measured builds', but the suite has run with the pairs
#    only on a machine without the GPT-2 files, where the fine-tuning test could not start).
# 2. Batch-1 per token and per kernel (b1_decode_ab.sh's measure), then batch-64 graph decode traces (per-kernel
#    tables: where a batch-64 token goes now).
set -u
[[ -e /tmp/mext.finished || -d /tmp/mext ]] || (setsid nohup nice -n 19 bash .gpu/ext/build_ext.sh /tmp/mext > /tmp/mext.out 2>&1 &)
BUILD_TARGETS="mamba-codesign test_gpu bench_ops" source scripts/gpu_perf_prelude.sh
timeout 120 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure\|thrown" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
bin=build-gpu/mamba-codesign
source "$(dirname "$0")/b1_decode_ab.sh"  # measure
measure final; pack
for p in mamba-130m mamba-370m; do
  timeout 90 $bin profile --model /tmp/$p --device cuda --prefill "" --decode-batch 64 --decode-mode graph \
    --decode-steps 16 --iters 10 --trace $R/tr64-$p.json --out $R/b64-$p.json > /dev/null 2>&1
  echo "b64 trace $p rc=$? ($(el) s)"
  python3 scripts/trace_kernels.py $R/tr64-$p*.decode*.json > $R/tr64-$p-kernels.txt 2>&1; head -14 $R/tr64-$p-kernels.txt
  rm -f $R/tr64-$p*.json
done
pack; cat /tmp/mext/status.txt 2>/dev/null; echo "done ($(el) s)"
