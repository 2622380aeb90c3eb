#!/usr/bin/env bash
# Fine-tuning step speed by method, one process at a time on one device (issue: adapters must not
# make a step slower than full fine-tuning). Each method trains STEPS steps on SST-2 (batch 32,
# length-bucketed; one epoch of STEPS×32 examples, so the loop logs every STEPS/10 steps) from the same model; the examples/s of the loop's log lines after the first
# tenth are averaged. Prints a Markdown table; the raw metrics.jsonl files stay under OUT.
# Usage: scripts/finetune_step_bench.sh BIN MODEL GLUE_DIR OUT [IMPORTANCE] [STEPS]
set -euo pipefail
bin=$1 model=$2 glue=$3 out=$4 importance=${5:-} steps=${6:-400}
mkdir -p "$out"
echo "| method | examples/s | vs full | peak memory (MiB) |"
echo "| --- | --- | --- | --- |"
full=""
for method in full lora ia3 sgh probe; do
  extra=()
  if [[ $method == sgh ]]; then
    [[ -n "$importance" ]] || continue
    extra=(--importance "$importance")
  fi
  dir="$out/$method"
  rm -rf "$dir"
  "$bin" --threads 4 finetune --model "$model" --task sst2 --data-dir "$glue" --method "$method" "${extra[@]}" \
    --max-steps "$steps" --max-train-examples $((steps * 32)) --batch 32 --max-eval-examples 64 --seed 1 --quiet --keep-checkpoints --out "$dir" >/dev/null
  # Mean examples/s of the step lines (they carry "loss") after the first tenth of the run.
  read -r rate mem < <(python3 - "$dir/metrics.jsonl" "$steps" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
rows = [r for r in rows if r["step"] > int(sys.argv[2]) // 10]
print(sum(r["tokens_per_s"] for r in rows) / len(rows), max(r["peak_memory_bytes"] for r in rows) / 2**20)
PY
)
  [[ $method == full ]] && full=$rate
  printf "| %s | %.0f | %.3f | %.0f |\n" "$method" "$rate" "$(python3 -c "print($rate / $full)")" "$mem"
done
