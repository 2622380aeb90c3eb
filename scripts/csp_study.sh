#!/usr/bin/env bash
# The CSP study (issue 16, METHOD.md §3, docs/csp.md): does a correlation-guided channel order help
# when channels are pruned in blocks of g consecutive positions?
#   1. pre-train the small GPT-2-vocabulary model with one SDM gate per channel (target sparsity);
#   2. CSP on it (gate logits permuted with the weights; calibration on an enwiki file not trained on),
#      and, as an ablation, CSP calibrated with every gate held open (--calib-gates open);
#   3. for each g: prune to the same sparsity by block-mean gate logit, without and with CSP first;
#   4. each pruned model: WikiText-2 validation loss, then the same short recovery pre-training
#      (same tokens, same seed, at the SDM run's final learning rate) and the loss again.
# Blocks are ranked by their mean gate logit over all layers; every layer keeps at least one block
# (--min-channels g), so a layer whose gates nearly all closed is not removed outright.
# A re-run reuses the finished SDM run, CSP outputs, pruned and recovered models in OUT_DIR.
# RECOVERY_STEPS=0 skips recovery (loss_after null); SEED sets the SDM run's seed.
# Every result is one JSON line in <out>/results.jsonl; scripts/csp_study_table.py prints the table.
# Usage: scripts/csp_study.sh [OUT_DIR]   (environment: SDM_STEPS, RECOVERY_STEPS, RECOVERY_LR, SPARSITY,
#        GRANULARITIES, EVAL_TOKENS, THREADS, DEVICE)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bin="${MCD_BIN:-$repo/build/mamba-codesign}"
out="${1:-runs/csp-study}"
sdm_steps="${SDM_STEPS:-600}"
recovery_steps="${RECOVERY_STEPS:-150}"
sparsity="${SPARSITY:-0.5}"
granularities="${GRANULARITIES:-1 8 16 32}"
eval_tokens="${EVAL_TOKENS:-65536}"
recovery_lr="${RECOVERY_LR:-4.0e-4}"   # the SDM run's final learning rate (4e-3 × min_lr_ratio 0.1)
threads="${THREADS:-0}"
device="${DEVICE:-cpu}"
shared="$repo/../shared/data"
wt2="$shared/wikitext2/wiki.valid.tokens"
calib="$shared/enwiki2015/AA/wiki_10"   # not among the 4 training files
mcd() { "$bin" --threads "$threads" "$@"; }
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"

score() {  # model → loss on the first EVAL_TOKENS of WikiText-2 validation
  mcd score --model "$1" --corpus "$wt2" --seq-len 256 --max-tokens "$eval_tokens" --device "$device" |
    tail -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["loss"])'
}

echo "== SDM pre-training ($sdm_steps steps, target sparsity $sparsity)"
[ -d "$out/sdm/final" ] || mcd pretrain --config configs/train/sdm-small-enwiki-cpu.yaml --quiet \
  --set run.out_dir="$out/sdm" --set train.steps="$sdm_steps" --set sdm.target_sparsity="$sparsity" \
  --set run.device="$device" --set checkpoint.interval=0 --set train.seed="${SEED:-0}" | tail -n 1 >"$out/sdm_summary.json"
echo "== CSP"
[ -d "$out/sdm-csp" ] || mcd csp --model "$out/sdm/final" --calib "$calib" --format wikiextractor --tokens 20000 --seq-len 256 \
  --per-document 512 --out "$out/sdm-csp" --device "$device" | tail -n 1 >"$out/csp_summary.json"
# Ablation: the order from u with every gate held open (the weights' correlations alone).
[ -d "$out/sdm-csp-open" ] || mcd csp --model "$out/sdm/final" --calib "$calib" --format wikiextractor --tokens 20000 \
  --seq-len 256 --per-document 512 --calib-gates open --out "$out/sdm-csp-open" --device "$device" |
  tail -n 1 >"$out/csp_open_summary.json"
dense_loss="$(score "$out/sdm/final")"
echo "{\"model\": \"gated (masked, unpruned)\", \"loss_before\": $dense_loss}" >>"$results"

for g in $granularities; do
  for order in plain csp csp-open; do
    src="$out/sdm/final"
    [ "$order" = csp ] && src="$out/sdm-csp"
    [ "$order" = csp-open ] && src="$out/sdm-csp-open"
    name="g$g-$order"
    echo "== $name"
    [ -d "$out/$name" ] || mcd prune --model "$src" --out "$out/$name" --sparsity "$sparsity" --granularity "$g" \
      --min-channels "$g" | tail -n 1 >"$out/$name.prune.json"
    before="$(score "$out/$name")"
    after=null
    if [ "$recovery_steps" -gt 0 ]; then
    [ -d "$out/$name-recovered/final" ] || mcd pretrain --config configs/train/sdm-small-enwiki-cpu.yaml --quiet \
      --set run.out_dir="$out/$name-recovered" --set 'model.preset=""' --set model.init_from="$out/$name" \
      --set sdm.enabled=false --set train.steps="$recovery_steps" --set train.warmup_steps=10 \
      --set train.lr="$recovery_lr" --set run.device="$device" --set checkpoint.interval=0 >/dev/null
    after="$(score "$out/$name-recovered/final")"
    fi
    python3 - "$out/$name.prune.json" "$g" "$order" "$before" "$after" >>"$results" <<'PY'
import json, sys
prune = json.load(open(sys.argv[1]))
print(json.dumps({"model": f"g{sys.argv[2]}-{sys.argv[3]}", "granularity": int(sys.argv[2]), "order": sys.argv[3],
                  "sparsity": prune["sparsity"], "kept_width": prune["kept_width"], "flops_ratio": prune["flops_ratio"],
                  "loss_before": float(sys.argv[4]), "loss_after": json.loads(sys.argv[5])}))
PY
  done
done
echo "== results: $results"
cat "$results"
