# Thirtieth session (or later), call A — copy to .gpu/ with b1_decode_ab.sh (scripts/pack_gpu_carry.sh recreates the carried assets),
# run with carry [".gpu"]:  DEADLINE=560 bash .gpu/next_session.sh ; then at once, on the warm machine, call B
# (next_session_b.sh: the side by side with mamba-ssm, whose extensions this call starts building beside), then C.
# 1. The twenty-ninth session's unrun library change: the batch-1 fused norm + in_proj kernel issues all of its
#    norm-phase loads before the first sum (kOneRowNormLoadsFirst in ops/cuda/decode_linear.cu; its PTX had
#    consumed each of the 6 / 8 steps' L2 loads before issuing the next). The whole GPU suite first.
# 2. The A/B: batch-1 graph decode per token (130M, 370M) and each kernel's own time with the overlapped launches
#    off (trace): as committed, the previous loop (kOneRowNormLoadsFirst false), as committed again — the constant
#    edited, the CLI rebuilt on the machine. Prediction: the fused kernel 8.1 → ~5.5 µs (130M) and 10.8 → ~7.5 µs
#    (370M) on an H100; per token ~0.35 → ~0.31 ms and ~0.85 → ~0.72 ms. Keep it only if it wins in both rounds.
# Call C (next_session_c.sh) A/Bs kOneRowSlicePairs and runs dev/gemm_lab --rows 1 (built here).
set -u
[[ -e /tmp/mext.finished || -d /tmp/mext ]] || (setsid nohup nice -n 19 bash .gpu/ext/build_ext.sh /tmp/mext > /tmp/mext.out 2>&1 &)
BUILD_ARGS=-DMCD_BUILD_DEV=ON BUILD_TARGETS="mamba-codesign test_gpu bench_ops gemm_lab" source scripts/gpu_perf_prelude.sh
timeout 100 build-gpu/tests/test_gpu > /tmp/t.log 2>&1
echo "whole test_gpu rc=$? ($(el) s)"; grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED  \]" /tmp/t.log | head -20
grep -B2 -A12 "Failure" /tmp/t.log | head -40
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |^\[==========\]" /tmp/t.log > $R/test_gpu_summary.txt; pack
bin=build-gpu/mamba-codesign
source "$(dirname "$0")/b1_decode_ab.sh"  # measure, setc
measure first-a; pack   # as committed: kOneRowNormLoadsFirst true, kOneRowSlicePairs false
(( $(left) > 150 )) && { setc kOneRowNormLoadsFirst false; measure loop; pack; }
(( $(left) > 150 )) && { setc kOneRowNormLoadsFirst true; measure first-b; pack; }
grep -q "^constexpr bool kOneRowNormLoadsFirst = true;" src/ops/cuda/decode_linear.cu || setc kOneRowNormLoadsFirst true
pack; cat /tmp/mext/status.txt 2>/dev/null; echo "done ($(el) s)"
