# Sourced by the performance device-call scripts (docs/results/*/next_session.sh and the like): what every such
# call repeated — the HF fixture unpacked for the GPU tests, the card and the tree recorded (source_hash.sh), a
# build of BUILD_TARGETS (default: the CLI, the GPU tests and the two model/op benchmarks) — plus the timing
# helpers. Data-carrying sessions use gpu_session_prelude.sh instead. Needs .gpu/gpt2 and .gpu/hf_fixture.tar.xz
# (scripts/pack_gpu_carry.sh). BUILD_ARGS: extra CMake arguments (e.g. -DMCD_BUILD_DEV=ON for the labs).
# Defines R (files that go back, packed by `pack` into $OUT/results.tgz), el (seconds since the start), left
# (seconds to DEADLINE, default 540), BUILD_RC.
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-540} - $(date +%s) + t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt
mkdir -p /tmp/shared/fixtures && [[ -d /tmp/shared/fixtures/hf_mamba_tiny ]] || tar -xJf .gpu/hf_fixture.tar.xz -C /tmp/shared/fixtures
MCD_BUILD_TARGETS="${BUILD_TARGETS:-mamba-codesign test_gpu bench_ops bench_model}" bash scripts/build_gpu.sh ${BUILD_ARGS:-} > /tmp/build.log 2>&1
BUILD_RC=$?
echo "build rc=$BUILD_RC ($(el) s)"; grep -m3 -A8 " error" /tmp/build.log

# pruned_ratios PRESET ROUNDS NAME LABEL PROFILE_ARGS...: PRESET's dense model and its 25 / 50 / 75 % pruned widths
# (made once under /tmp/m-PRESET) timed by one `profile` process per round with PROFILE_ARGS, their iterations
# interleaved; prints each model's P50 and its ratio of medians to dense with the bootstrap interval (the profile
# log's lines). JSON and logs: $R/NAME-PRESET-ROUND.*. Stops when fewer than 30 s are left.
pruned_ratios() {
  local preset=$1 rounds=$2 name=$3 label=$4 bin=build-gpu/mamba-codesign m=/tmp/m-$1 s round
  shift 4
  for s in 0 25 50 75; do [[ -d $m/s$s ]] || $bin init --preset "$preset" --sparsity 0.$s --out $m/s$s > /dev/null; done
  for (( round = 1; round <= rounds; ++round )); do
    (( $(left) < 30 )) && break
    timeout 90 $bin profile --model $m/s0 --model $m/s25 --model $m/s50 --model $m/s75 --device cuda "$@" \
      --out $R/$name-$preset-$round.json > $R/$name-$preset-$round.log 2>&1
    echo "profile $label$preset round $round rc=$? ($(el) s)"
    grep ' p50 ' $R/$name-$preset-$round.log
  done
}
# pruned_prefill_ratios PRESET [ROUNDS]: prefill 1 x 4096 as a CUDA graph ($R/pruned-PRESET-ROUND.*).
pruned_prefill_ratios() {
  pruned_ratios "$1" "${2:-2}" pruned "" --prefill 1x4096 --prefill-mode graph --decode-batch "" --iters 30
}
# pruned_decode_ratios PRESET [ROUNDS]: batch-64 graph decode per token ($R/pruned-decode-PRESET-ROUND.*).
pruned_decode_ratios() {
  pruned_ratios "$1" "${2:-2}" pruned-decode "decode " --prefill "" --decode-batch 64 --decode-mode graph \
    --decode-steps 32 --iters 20
}
