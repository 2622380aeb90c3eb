#!/usr/bin/env bash
# Decode and prefill latency, this tree against an older source tree, side by side on one GPU in one
# device call (PERF.md: a claim is a ratio measured in one run on one card). Both trees are built
# here at the same time (build-gpu/ with the GPU tests, build-gpu-old/ the CLI only); this tree's
# decode tests run (TEST_FILTER, a gtest filter: '*' for the whole GPU suite; TEST_TIMEOUT seconds, default
# 200); then for mamba-130m-gpt2 and mamba-370m (random weights, `init`), `profile` of
# the old and the new binary alternately, ROUNDS times (default 2): prefill 1x1024 and 1x4096,
# CUDA-graph decode at batch 1 and 64, bf16. Prints per preset and case the P50 of each run and the
# new/old ratio of the mean P50s (scripts/profile_before_after.py); raw profiles in OUT/profiles/.
# Usage: scripts/decode_before_after.sh OLD_SRC OUT
#   (OLD_SRC: e.g. `git archive --prefix=old/ COMMIT | tar -x -C /tmp/o` → /tmp/o/old)
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="$(cd "${1:?usage: decode_before_after.sh OLD_SRC OUT}" && pwd)"
out="$(mkdir -p "${2:?OUT}" && cd "$2" && pwd)"
rounds=${ROUNDS:-2}
cd "$repo"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$out/gpu.txt"
t0=$(date +%s)
(MCD_BUILD_TARGETS=mamba-codesign MCD_BUILD_DIR="$repo/build-gpu-old" bash "$old/scripts/build_gpu.sh" \
  >"$out/build_old.log" 2>&1; echo "old build rc=$?") &
MCD_BUILD_TARGETS="mamba-codesign test_gpu" MCD_BUILD_DIR="$repo/build-gpu" bash scripts/build_gpu.sh >"$out/build_new.log" 2>&1
echo "new build rc=$? ($(( $(date +%s) - t0 )) s)"; grep -m3 -A8 "error" "$out/build_new.log"
wait
filter=${TEST_FILTER:-'GpuDecodeStep.*:GpuCodesign.Graph*:GpuCodesign.Bf16Decode*:GpuSeams.*:GpuParity.*'}
timeout "${TEST_TIMEOUT:-200}" build-gpu/tests/test_gpu --gtest_filter="$filter" >"$out/test_gpu_decode.log" 2>&1
echo "GPU tests ($filter) rc=$?: $(grep -E '^\[  (PASSED|FAILED) ' "$out/test_gpu_decode.log" | tr '\n' ' ')"
grep -E "^\[ +FAILED +\]" "$out/test_gpu_decode.log" | head -20
mkdir -p "$out/profiles" "$out/models"
for p in mamba-130m-gpt2 mamba-370m; do
  build-gpu/mamba-codesign init --preset "$p" --out "$out/models/$p" >/dev/null || echo "init $p failed"
done
for r in $(seq 1 "$rounds"); do
  for p in mamba-130m-gpt2 mamba-370m; do
    for b in old new; do
      bin=build-gpu/mamba-codesign; [[ $b == old ]] && bin=build-gpu-old/mamba-codesign
      timeout 150 "$bin" profile --model "$out/models/$p" --device cuda --prefill 1x1024,1x4096 --decode-batch 1,64 \
        --decode-mode graph --decode-steps 32 --iters 30 --out "$out/profiles/$b-$p-$r.json" \
        >"$out/profiles/$b-$p-$r.log" 2>&1
      echo "profile $b $p round $r rc=$?"
    done
  done
done
python3 "$repo/scripts/profile_before_after.py" "$out/profiles"
