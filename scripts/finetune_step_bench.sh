#!/usr/bin/env bash
# Fine-tuning step speed by method, one process at a time on one device (issue: adapters must not
# make a step slower than full fine-tuning). Each method trains STEPS steps on SST-2 (batch 32,
# length-bucketed; one epoch of STEPS×32 examples, so the loop logs every STEPS/10 steps) from the
# same model; the examples/s of the loop's log lines after the first tenth are averaged. ROUNDS
# rounds (default 2) run the methods in alternation, so drift over the call hits every method; the
# table has each round's rate and the ratio of the means to full fine-tuning. `lora-nodrop` is LoRA
# with dropout 0 (its weight form), for reference beside METHOD's default dropout 0.05. On CUDA
# steps are CUDA-graph replays (train/step_graphs.h); `full-eager` and `lora-eager` run the same
# steps eagerly (--no-cuda-graphs), to show what the graphs save.
# Prints a Markdown table; the raw metrics.jsonl files stay under OUT.
# Usage: scripts/finetune_step_bench.sh BIN MODEL GLUE_DIR OUT [IMPORTANCE] [STEPS] [ROUNDS]
set -euo pipefail
bin=$1 model=$2 glue=$3 out=$4 importance=${5:-} steps=${6:-400} rounds=${7:-2}
mkdir -p "$out"
methods=(full lora lora-nodrop ia3 sgh probe full-eager lora-eager)
declare -A rates mems
for round in $(seq 1 "$rounds"); do
  for m in "${methods[@]}"; do
    extra=()
    method=$m
    [[ $m == lora-nodrop ]] && { method=lora; extra=(--dropout 0); }
    [[ $m == *-eager ]] && { method=${m%-eager}; extra=(--no-cuda-graphs); }
    if [[ $m == sgh ]]; then
      [[ -n "$importance" ]] || continue
      extra=(--importance "$importance")
    fi
    dir="$out/$m/round$round"
    rm -rf "$dir"
    "$bin" --threads 4 finetune --model "$model" --task sst2 --data-dir "$glue" --method "$method" "${extra[@]}" \
      --max-steps "$steps" --max-train-examples $((steps * 32)) --batch 32 --max-eval-examples 64 --seed 1 --quiet \
      --keep-checkpoints --out "$dir" >/dev/null
    # Mean examples/s of the step lines (they carry "loss") after the first tenth of the run.
    read -r rate mem < <(python3 - "$dir/metrics.jsonl" "$steps" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
rows = [r for r in rows if r["step"] > int(sys.argv[2]) // 10]
print(sum(r["tokens_per_s"] for r in rows) / len(rows), max(r["peak_memory_bytes"] for r in rows) / 2**20)
PY
)
    rates[$m]="${rates[$m]:-} $rate"
    mems[$m]=$mem
  done
done
mean() { python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; print(sum(v)/len(v))" $1; }
full=$(mean "${rates[full]}")
echo "| method | examples/s per round | vs full (ratio of means) | peak memory (MiB) |"
echo "| --- | --- | --- | --- |"
for m in "${methods[@]}"; do
  [[ -n "${rates[$m]:-}" ]] || continue
  printf "| %s | %s | %.3f | %.0f |\n" "$m" "$(printf '%.0f ' ${rates[$m]})" \
    "$(python3 -c "print($(mean "${rates[$m]}") / $full)")" "${mems[$m]}"
done
