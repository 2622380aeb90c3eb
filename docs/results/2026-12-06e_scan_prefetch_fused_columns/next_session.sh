# Thirtieth session (or later), call A — copy to .gpu/ (scripts/pack_gpu_carry.sh recreates the carried assets),
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
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
measure() {  # tag
  for p in mamba-130m mamba-370m; do
    timeout 60 $bin profile --model /tmp/$p --device cuda --prefill "" --decode-batch 1 --decode-mode graph \
      --decode-steps 64 --iters 30 --out $R/b1-$p-$1.json > /tmp/d.log 2>&1
    echo "$1 $p rc=$? ($(el) s) $(python3 -c "
import json
d = json.load(open('$R/b1-$p-$1.json'))
print(' '.join('%.4f ms per token' % (c['results'][0]['summary_ms']['p50'] / 64) for c in d['cases']))")"
    timeout 60 $bin --decode-overlap off profile --model /tmp/$p --device cuda --prefill "" --decode-batch 1 \
      --decode-mode graph --decode-steps 16 --iters 10 --trace $R/tr-$p-$1.json --out /tmp/tr.json > /dev/null 2>&1
    python3 scripts/trace_kernels.py $R/tr-$p-$1*.decode*.json > $R/tr-$p-$1-kernels.txt 2>&1
    grep -E "add_norm|decode_linear|scan_step" $R/tr-$p-$1-kernels.txt; rm -f $R/tr-$p-$1*.decode*.json
  done
}
setc() {  # NAME VALUE...: set decode_linear.cu's constants, rebuild the CLI
  while (( $# >= 2 )); do sed -i "s/^constexpr bool $1 = [a-z]*;/constexpr bool $1 = $2;/" src/ops/cuda/decode_linear.cu; shift 2; done
  cmake --build build-gpu --target mamba-codesign -j16 > /tmp/rb.log 2>&1; echo "rebuild rc=$? ($(el) s)"; }
measure first-a; pack   # as committed: kOneRowNormLoadsFirst true, kOneRowSlicePairs false
(( $(left) > 150 )) && { setc kOneRowNormLoadsFirst false; measure loop; pack; }
(( $(left) > 150 )) && { setc kOneRowNormLoadsFirst true; measure first-b; pack; }
grep -q "^constexpr bool kOneRowNormLoadsFirst = true;" src/ops/cuda/decode_linear.cu || setc kOneRowNormLoadsFirst true
pack; cat /tmp/mext/status.txt 2>/dev/null; echo "done ($(el) s)"
