# Thirty-ninth session (the tree that runs BlockFwdEightWarps below 768 channels where its blocks fit at once): the whole GPU suite, then the 130M
# pruned prefill ratios (dense and 25/50/75 % interleaved, 1 x 4096 as a graph), two processes.
# Written in the thirty-ninth session, not yet run (the session's device time ran out): the change is eight_warps.patch
# (this folder's README), applied here before the build; `git apply` it in the repo too once this call has measured it.
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=420 bash docs/results/2026-12-07i_eight_warps_at_384/call.sh
set -u
git apply docs/results/2026-12-07i_eight_warps_at_384/eight_warps.patch || { echo "eight_warps.patch does not apply"; exit 1; }
BUILD_TARGETS="mamba-codesign test_gpu" source scripts/gpu_perf_prelude.sh  # R, pack, el, left; the card, the tree, the build
timeout 200 build-gpu/tests/test_gpu > $R/test_gpu.log 2>&1; echo "GPU tests rc=$? ($(el) s)"
grep -E '^\[  (PASSED|FAILED) |BlockForwardWithinAndBeyond' $R/test_gpu.log; pack
pruned_prefill_ratios mamba-130m 2
pack; echo "done ($(el) s)"
