# Forty-fourth session: the model folder's own tokenizer.json and Hugging Face's sharded safetensors, built with the
# GPU machine's LibTorch 2.11: the CPU tests that name them (through the binary where they use it) and the whole GPU
# suite. No CUDA code changed.
# Usage (carry .gpu; results in $OUT/results.tgz): DEADLINE=540 bash docs/results/2026-12-07l_model_folder_files/call.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu test_model test_data test_train test_cli test_io" source scripts/gpu_perf_prelude.sh
run_tests() {  # BINARY FILTER: its summary lines
  timeout 120 build-gpu/tests/$1 --gtest_filter="$2" > $R/$1.log 2>&1; echo "$1 rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $R/$1.log | tr '\n' ' ')"
}
run_tests test_model 'Checkpoint.*'
run_tests test_data 'VocabMap.*'
run_tests test_train 'ModelTokenizer.*'
run_tests test_cli 'Cli.Tokenize*:Cli.EverySubcommandHasHelp'
run_tests test_io '*'
pack
timeout $(( $(left) - 10 )) build-gpu/tests/test_gpu > $R/test_gpu.log 2>&1; echo "test_gpu rc=$? ($(el) s)"
tail -3 $R/test_gpu.log; grep -E "^\[  FAILED" $R/test_gpu.log | head
pack
echo "done ($(el) s)"
