#!/usr/bin/env bash
# Device calls of the GLUE study (docs/glue.md). Expects .gpu/enwiki_aa.tar.xz (enwiki2015/AA),
# .gpu/glue5.tar.xz (glue/…) and .gpu/gpt2 carried into the repo root, and $OUT set. One call does
# what is still missing on the (warm) machine, so the study can span chained calls:
#   build (incremental) → test_gpu (TESTS=1) → pre-training (once: kept in runs/glue-gpu) →
#   step bench (BENCH=1) → the fine-tuning grid (GRID=0 skips it) for SEEDS (default "1 2 3 4 5")
#   with PROCS processes (default 8) until BUDGET seconds after the call's start → summary of
#   every run present → $OUT/bundle.tgz.
# Example: TESTS=1 BENCH=1 SEEDS="1 2" BUDGET=560 bash scripts/glue_gpu_session.sh
set -u
source scripts/gpu_session_prelude.sh  # D, R, BIN, t; data unpacked, tree built
G=runs/glue-gpu; mkdir -p $G
if [[ ${TESTS:-0} == 1 ]]; then
  build-gpu/tests/test_gpu --gtest_brief=1 > $R/test_gpu.txt 2>&1
  grep -E "Failure|FAILED" -A2 $R/test_gpu.txt | head -20; tail -3 $R/test_gpu.txt; t tested
fi
if [[ ! -f $G/pretrain/final/model.safetensors ]]; then
  PRETRAIN_ONLY=1 scripts/glue_gpu.sh $BIN $D/glue $D/enwiki2015/AA $G 8 > $R/pre.txt 2>&1; t pretrained
fi
cp $G/pretrain.log $G/importance.json $G/importance.line $R/ 2>/dev/null; tail -2 $G/pretrain.log | cut -c1-400
if [[ ${BENCH:-0} == 1 ]]; then
  scripts/finetune_step_bench.sh $BIN $G/pretrain/final $D/glue $G/bench $G/importance.json 200 ${ROUNDS:-2} > $R/step_bench.md 2>&1
  cat $R/step_bench.md; t benched
fi
left=$(( ${BUDGET:-560} - ($(date +%s) - T0) - 25 ))
if [[ ${GRID:-1} == 1 ]]; then
  SEEDS="${SEEDS:-1 2 3 4 5}" SKIP_PRETRAIN=1 FT_TIMEOUT=$left FT_ARGS="--max-train-examples 8000" \
    scripts/glue_gpu.sh $BIN $D/glue $D/enwiki2015/AA $G ${PROCS:-8} > $R/grid.txt 2>&1; t grid
fi
cp $G/summary.md $G/summary.json $G/finetune_wall.txt $G/ft_errors.log $G/jobs.txt $R/ 2>/dev/null
find $G/ft -name result.json | tar -czf $R/results.tgz -T -
cat $G/summary.md; tail -3 $G/ft_errors.log
cd $OUT && tar -czf bundle.tgz r && rm -rf r
