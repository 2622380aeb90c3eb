#!/usr/bin/env bash
# One timed end-to-end pre-training run as the speed comparisons make it (scripts/pretrain_before_after.sh,
# scripts/vs_mamba_ssm.sh): `mamba-codesign pretrain` of PRESET on enwiki2015/AA, bf16 (the GPU
# config), 8 × 2048 tokens per step, 80 steps, a metrics line every 10, no evaluation or checkpoint;
# the token cache in CACHE_DIR (shared by the runs), the run in RUN_DIR (replaced), its log in RUN_DIR.log.
# Exit status: pretrain's (or timeout's after 240 s).
# Usage: scripts/pretrain_timed_run.sh BIN PRESET ENWIKI_AA_DIR CACHE_DIR RUN_DIR [global options...]
#          [-- pretrain options...]   (e.g. -- --set train.cuda_graphs=true)
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$1" preset="$2" enwiki="$3" cache="$4" dir="$5"
shift 5
globals=() extra=()
while (( $# )) && [[ $1 != -- ]]; do globals+=("$1"); shift; done
(( $# )) && shift && extra=("$@")
rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
timeout 240 "$bin" "${globals[@]}" pretrain "${extra[@]}" --config "$repo/configs/train/mamba130m-enwiki-gpu.yaml" \
  --set "model.preset=$preset" --set "data.paths=[$enwiki]" --set "data.cache_dir=$cache" \
  --set train.batch_size=8 --set train.seq_len=2048 --set train.steps=80 --set eval.interval=0 \
  --set checkpoint.interval=0 --set run.log_interval=10 --set "run.out_dir=$dir" >"$dir.log" 2>&1
