# Forty-sixth session: sampled decoding from the CUDA graph (model/generation.h's one loop over infer::GraphDecoder;
# the token chosen on the device), min-p and the repetition penalty. Builds with LibTorch 2.11, runs the new and the
# touched tests (GPU: graph sampling = eager draws, the device draw's distribution, the profile's sampled case, the
# greedy graph tests on the new loop; CPU tests of generation / profile / CLI under 2.11), then times decode of
# random-weight mamba-130m and mamba-370m (bf16) per token with `profile`: greedy and sampled, eager and graph, batch
# 1 and 64, one process per sampling so each file holds its eager/graph pair; then, where mamba_ssm is importable
# (built beside, never committed), its generate(cg=True) greedy and sampled with the same settings.
# Carry .gpu. Usage: DEADLINE=480 bash docs/results/2026-12-08b_sampled_graph_decode/call.sh
set -u
BUILD_TARGETS="mamba-codesign test_gpu test_model test_infer test_cli test_eval" source scripts/gpu_perf_prelude.sh
timeout 200 build-gpu/tests/test_gpu \
  --gtest_filter='GpuCodesign.Graph*:GpuCodesign.DeviceSampling*:GpuCodesign.ProfileSampled*:GpuCodesign.ProfileMemory*:GpuCodesign.Bf16Decode*:GpuCodesign.ChoiceScores*:GpuParity.*' \
  > $R/test_gpu.log 2>&1
echo "test_gpu rc=$? ($(el) s) $(grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED' $R/test_gpu.log | tr '\n' ' ')"
for t in "test_model Generation.*:Model.*" "test_infer Profile*:Choice*" "test_cli Cli.Generate*:Cli.Prompts*" "test_eval *"; do
  set -- $t
  timeout 120 build-gpu/tests/$1 --gtest_filter="$2" > $R/$1.log 2>&1
  echo "$1 rc=$? ($(el) s) $(grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED' $R/$1.log | tr '\n' ' ')"
done
bin=build-gpu/mamba-codesign
sampled="temperature=0.8,top_p=0.9,repetition_penalty=1.2"
for p in mamba-130m mamba-370m; do
  [[ -d /tmp/m-$p ]] || $bin init --preset $p --out /tmp/m-$p > /dev/null
  for how in greedy sampled; do
    (( $(left) < 60 )) && break
    extra=(); [[ $how == sampled ]] && extra=(--decode-sampling "$sampled")
    timeout 150 $bin profile --model /tmp/m-$p --device cuda --prefill "" --decode-batch 1,64 --decode-mode both \
      --decode-steps 32 --iters 20 "${extra[@]}" --out $R/decode-$p-$how.json > $R/decode-$p-$how.log 2>&1
    echo "profile $p $how rc=$? ($(el) s)"; grep ' p50 ' $R/decode-$p-$how.log
  done
done
# The CLI as a user runs it: 256 sampled tokens of one prompt, graph and eager (wall clock, the load included).
for g in on off; do
  s=$(date +%s.%N)
  $bin generate --model /tmp/m-mamba-130m --prompt-ids 1,2,3,4 --max-new-tokens 256 --ignore-eos --temperature 0.8 \
    --top-p 0.9 --repetition-penalty 1.2 --device cuda --dtype bfloat16 --cuda-graph $g > $R/generate-$g.txt 2>&1
  echo "generate --cuda-graph $g rc=$? $(python3 -c "print(round($(date +%s.%N) - $s, 2))") s, $(tail -1 $R/generate-$g.txt | tr ',' '\n' | wc -l) ids"
done
if python3 -c "import mamba_ssm, causal_conv1d" 2>/dev/null && (( $(left) > 150 )); then
  for spec in "" "temperature=0.8,top_p=0.9,repetition_penalty=1.2"; do
    PYTHONUNBUFFERED=1 timeout 200 python3 bench/compare/mamba_ssm_side_by_side.py --cases decode --models 130m,370m \
      --decode-sampling "$spec" --out $R/theirs.jsonl > /dev/null 2> $R/theirs.err
    echo "theirs decode '${spec:-greedy}' rc=$? ($(el) s)"; tail -2 $R/theirs.err
  done
else
  echo "mamba_ssm not importable (or no time left): ours only"
fi
pack
echo "done ($(el) s)"
