#!/usr/bin/env bash
# The GLUE study of docs/glue.md on one GPU: pre-train mamba-glue-384 on enwiki2015/AA, write its
# magnitude-proxy importance (the model has no gates: METHOD §4's labelled proxy), fine-tune
# TASKS x METHODS x SEEDS with JOBS processes sharing the GPU, and summarize over seeds.
# Usage: scripts/glue_gpu.sh BIN GLUE_DIR ENWIKI_AA_DIR OUT [JOBS]
#   env: TASKS (default "sst2 cola mrpc rte stsb"), METHODS ("full lora ia3 sgh"), SEEDS ("1 2 3 4 5"),
#        EPOCHS (3), FT_ARGS (extra finetune options), PRETRAIN_ARGS (extra pretrain options, e.g.
#        "--set run.max_minutes=4"), SKIP_PRETRAIN=1 to reuse OUT/pretrain, PRETRAIN_ONLY=1 to stop after
#        pre-training and importance, FT_TIMEOUT (seconds for the
#        whole grid; runs not finished by then are left out of the summary, which says n per cell, and
#        resume from their last epoch checkpoint when the script runs again; finished runs are skipped).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin=$1 glue=$2 enwiki=$3 out=$4 jobs=${5:-6}
tasks=${TASKS:-"sst2 cola mrpc rte stsb"}
methods=${METHODS:-"full lora ia3 sgh"}
seeds=${SEEDS:-"1 2 3 4 5"}
epochs=${EPOCHS:-3}
mkdir -p "$out"

if [[ "${SKIP_PRETRAIN:-0}" != 1 ]]; then
  sed "s#paths: \[.*\]#paths: [$enwiki]#; s#out_dir: .*#out_dir: $out/pretrain#; s#cache_dir: .*#cache_dir: $out/tokens#" \
    "$repo/configs/train/glue-base-enwiki-gpu.yaml" > "$out/pretrain.yaml"
  start=$(date +%s)
  "$bin" --threads 8 pretrain --config "$out/pretrain.yaml" ${PRETRAIN_ARGS:-} 2>&1 | tail -n 40 > "$out/pretrain.log"
  echo "pretrain_wall_s $(( $(date +%s) - start ))" >> "$out/pretrain.log"
fi
"$bin" importance --model "$out/pretrain/final" --out "$out/importance.json" > "$out/importance.line"
[[ "${PRETRAIN_ONLY:-0}" == 1 ]] && exit 0

: > "$out/jobs.txt"
# Seeds outermost: with FT_TIMEOUT, the runs that finish cover every cell with the first seeds.
for seed in $seeds; do
  for task in $tasks; do
    for method in $methods; do
      run="$out/ft/$task/$method/seed$seed"
      [[ -f $run/result.json ]] && continue  # finished in an earlier call; a cut run resumes
      imp=""
      [[ $method == sgh ]] && imp="--importance $out/importance.json"
      echo "$bin --threads 2 finetune --model $out/pretrain/final --task $task --data-dir $glue --method $method $imp --seed $seed --epochs $epochs --quiet --resume ${FT_ARGS:-} --out $run" >> "$out/jobs.txt"
    done
  done
done
start=$(date +%s)
# Each line is one run; a failed run is logged and the others go on.
limit=()
[[ -n "${FT_TIMEOUT:-}" ]] && limit=(timeout "$FT_TIMEOUT")
"${limit[@]}" xargs -P "$jobs" -I{} bash -c '{} > /dev/null 2>> '"$out"'/ft_errors.log || echo "FAILED: {}" >> '"$out"'/ft_errors.log' < "$out/jobs.txt" || true
echo "finetune_wall_s $(( $(date +%s) - start )) jobs $jobs runs $(wc -l < "$out/jobs.txt") seeds $seeds" >> "$out/finetune_wall.txt"
"$bin" summarize "$out/ft" --out "$out/summary.json" > "$out/summary.md"
cat "$out/summary.md"
