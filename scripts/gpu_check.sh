#!/usr/bin/env bash
# One pass on a GPU machine (no network): build with PyTorch's LibTorch, run every test (GPU
# ones included), then the pre-training throughput runs on 1 GPU and, when there are two, on 2
# GPUs with NCCL. Logs and JSON go to $OUT (or ./gpu-out). Expects, in ignored folders carried
# along: .gpu/shared (fixtures), .gpu/data/enwiki_aa_00_09.tar.xz, .cache/assets/gpt2.
# Usage: scripts/gpu_check.sh [steps]
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$repo/gpu-out}"
steps="${1:-60}"
mkdir -p "$out"
cd "$repo"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
ngpu=$(nvidia-smi -L | wc -l)
export MCD_SHARED_DIR="$repo/.gpu/shared" MCD_ASSETS_DIR="$repo/.cache/assets"
{ time bash scripts/build_gpu.sh; } >"$out/build.log" 2>&1 ||
  { echo "build failed; retrying without NCCL"; bash scripts/build_gpu.sh -DMCD_NCCL=OFF >>"$out/build.log" 2>&1; } ||
  { tail -40 "$out/build.log"; exit 1; }
grep -E "^real" "$out/build.log"
(cd build-gpu && ctest -j8 --timeout 600 >"$out/ctest.log" 2>&1; grep -E "tests passed|tests failed" "$out/ctest.log"; grep -E "\*\*\*Failed|\(Failed\)" "$out/ctest.log" | head)
build-gpu/tests/test_gpu >"$out/test_gpu.log" 2>&1; tail -3 "$out/test_gpu.log"

mkdir -p .gpu/data && tar xJf .gpu/data/enwiki_aa_00_09.tar.xz -C .gpu/data
paths="[$(printf '%s,' "$repo"/.gpu/data/enwiki2015/AA/wiki_0* | sed 's/,$//')]"
common=(--config configs/train/mamba130m-enwiki-gpu.yaml --set "data.paths=$paths" --set "train.steps=$steps" --quiet)
build-gpu/mamba-codesign pretrain "${common[@]}" --set run.out_dir=runs/gpu1 >"$out/pretrain_1gpu.log" 2>&1
tail -2 "$out/pretrain_1gpu.log"; cp runs/gpu1/metrics.jsonl "$out/metrics_1gpu.jsonl"
if [[ $ngpu -ge 2 ]]; then
  build-gpu/mamba-codesign launch --nproc 2 -- pretrain "${common[@]}" --set run.out_dir=runs/gpu2 \
    >"$out/pretrain_2gpu.log" 2>&1
  tail -2 "$out/pretrain_2gpu.log"; cp runs/gpu2/metrics.jsonl "$out/metrics_2gpu.jsonl"
fi
