# Twenty-eighth session, call 3 — why the dense-state backward in 4 time segments lost (call 2): one eager
# 130M 25 %-pruned step traced with segments on and off in one process each, kernel time by name (the carry
# pass, the backward kernel). Copy to .gpu/, run with carry [".gpu"]:  DEADLINE=400 bash .gpu/s28_call3.sh
set -u
BUILD_TARGETS="bench_model" source scripts/gpu_perf_prelude.sh
for seg in true false; do
  timeout 60 build-gpu/bench/bench_model --preset mamba-130m --variants p25 --prefill "" --decode 0 --iters 5 \
    --ops scan_time_segments=$seg --trace $R/tr-$seg > $R/bm-$seg.jsonl 2> /dev/null
  echo "trace segments=$seg rc=$? ($(el) s)"
  python3 scripts/trace_summary.py $R/tr-$seg.p25 --top 12 > $R/tr-$seg.sum.txt 2>&1; xz -T8 $R/tr-$seg.p25
  head -24 $R/tr-$seg.sum.txt
done; pack
echo "done ($(el) s)"
