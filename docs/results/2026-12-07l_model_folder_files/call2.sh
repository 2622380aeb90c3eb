# Forty-fourth session, second check: the pipeline's model.init_from end to end on the GPU machine (the stages' device
# is `auto`, so the pre-trainings, CSP, pruning, fine-tunings and profile run on CUDA), with LibTorch 2.11.
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=400 bash docs/results/2026-12-07l_model_folder_files/call2.sh
set -u
BUILD_TARGETS="mamba-codesign test_finetune test_pipeline" source scripts/gpu_perf_prelude.sh
for t in "test_pipeline Experiment.*" "test_finetune RunCommand.InitFrom*:RunCommand.ARestrictedVocabularyTravelsWithEveryModel"; do
  set -- $t
  timeout $(( $(left) - 20 )) build-gpu/tests/$1 --gtest_filter="$2" > $R/$1.log 2>&1
  echo "$1 rc=$? ($(el) s) $(grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[       OK|^\[  FAILED' $R/$1.log | tr '\n' ' ')"
done
pack
echo "done ($(el) s)"
