# Fortieth session (the tree that runs BlockFwdEightWarps below 768 channels where its blocks fit at once), with its
# baseline in the same lease: the committed tree's 130M pruned prefill ratios (dense and 25/50/75 % interleaved,
# 1 x 4096 as a graph) once, then eight_warps.patch applied, an incremental rebuild, the whole GPU suite and the same
# ratios twice. Written in the thirty-ninth session (which ran out of device time); the before-round added in the
# fortieth so that the ratio's change is measured on one card. `git apply` the patch in the repo too once this call
# has measured it. (Done in the fortieth session: the patch is in the library, so this script is the record of the
# call that ran, against commit 0f1ff9d.)
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=480 bash docs/results/2026-12-07i_eight_warps_at_384/call.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu" source scripts/gpu_perf_prelude.sh  # R, pack, el, left; the card, the tree, the build
pruned_prefill_ratios mamba-130m 1
for f in $R/pruned-mamba-130m-1.*; do mv "$f" "${f/pruned-/before-pruned-}"; done
git apply docs/results/2026-12-07i_eight_warps_at_384/eight_warps.patch || { echo "eight_warps.patch does not apply"; pack; exit 1; }
bash scripts/source_hash.sh | sed 's/^/patched: /' | tee -a $R/gpu.txt
MCD_BUILD_TARGETS="mamba-codesign test_gpu" bash scripts/build_gpu.sh > /tmp/build2.log 2>&1
echo "patched build rc=$? ($(el) s)"; grep -m3 -A8 " error" /tmp/build2.log
timeout 200 build-gpu/tests/test_gpu > $R/test_gpu.log 2>&1; echo "GPU tests rc=$? ($(el) s)"
grep -E '^\[  (PASSED|FAILED) |BlockForwardWithinAndBeyond' $R/test_gpu.log; pack
pruned_prefill_ratios mamba-130m 2
pack; echo "done ($(el) s)"
