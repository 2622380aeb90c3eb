#!/usr/bin/env bash
# One device call for the GLUE study (docs/glue.md): expects .gpu/enwiki_aa.tar.xz, .gpu/glue5.tar.xz and
# .gpu/gpt2 carried into the repo root; run as `BUDGET=560 bash scripts/glue_gpu_session.sh` with $OUT set.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2
D=/tmp/mcdd; R=$OUT/r; G=runs/glue-gpu; mkdir -p $D $R
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
tar -xJf .gpu/enwiki_aa.tar.xz -C $D && tar -xJf .gpu/glue5.tar.xz -C $D
nvidia-smi --query-gpu=name,driver_version --format=csv > $R/gpu.txt
(python3 -c "import sklearn, scipy" && python3 scripts/gen_metric_reference.py > $R/metric_reference.json) > $R/sk.txt 2>&1; tail -1 $R/sk.txt
scripts/build_gpu.sh > $R/build.log 2>&1 || { grep -E "error" $R/build.log | head -30; exit 1; }; t built
build-gpu/tests/test_gpu --gtest_brief=1 > $R/test_gpu.txt 2>&1; grep -E "Failure|FAILED" -A2 $R/test_gpu.txt | head -20; tail -3 $R/test_gpu.txt; t tested
TASKS="" scripts/glue_gpu.sh build-gpu/mamba-codesign $D/glue $D/AA $G 8 > $R/pre.txt 2>&1; t pretrained
cp $G/pretrain.log $G/importance.json $G/importance.line $R/; tail -1 $G/pretrain.log | cut -c1-400
scripts/finetune_step_bench.sh build-gpu/mamba-codesign $G/pretrain/final $D/glue $G/bench $G/importance.json 300 > $R/step_bench.md 2>&1; cat $R/step_bench.md; t benched
left=$(( ${BUDGET:-560} - ($(date +%s) - T0) - 25 ))
SKIP_PRETRAIN=1 FT_TIMEOUT=$left FT_ARGS="--max-train-examples 8000" scripts/glue_gpu.sh build-gpu/mamba-codesign $D/glue $D/AA $G 8 > $R/grid.txt 2>&1; t grid
cp $G/summary.md $G/summary.json $G/finetune_wall.txt $G/ft_errors.log $G/jobs.txt $R/ 2>/dev/null
find $G/ft -name result.json | tar -czf $R/results.tgz -T -
cat $G/summary.md; tail -3 $G/ft_errors.log
cd $OUT && tar -czf bundle.tgz r && rm -rf r
