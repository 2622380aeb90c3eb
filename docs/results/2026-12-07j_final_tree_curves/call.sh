# Forty-first session: issue 14's pruned curves on the final tree, both presets, one lease — prefill 1 x 4096 as a
# graph and batch-64 graph decode, dense and 25 / 50 / 75 % pruned interleaved in one `profile` process per case.
# No tests here: the whole GPU suite ran in a second call on the same lease (README).
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=400 bash docs/results/2026-12-07j_final_tree_curves/call.sh
set -u
BUILD_TARGETS="mamba-codesign" source scripts/gpu_perf_prelude.sh  # R, pack, el, left; the card, the tree, the build
for preset in mamba-130m mamba-370m; do
  pruned_prefill_ratios $preset 1; pack
  pruned_decode_ratios $preset 1; pack
done
echo "done ($(el) s)"
