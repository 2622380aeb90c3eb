# Forty-fifth session: the PyTorch checkpoint reader against real torch.save files (PyTorch 2.11 on the GPU
# machine), and its tests with LibTorch 2.11. make_checkpoints.py writes mamba-ssm-style folders (f32, bf16, pickle
# protocol 4, the legacy format) and a sharded Hugging Face one; mamba-codesign generates from each on CPU and
# CUDA (greedy ids against the fixture's reference.json) and converts each (compare.py: bit-identical tensors);
# the fixture converted --format mamba-ssm goes through torch.load (load_ours.py).
# Carry .gpu (with .gpu/hf_gpt2_tokenizer.json: a tokenizer.json for the mamba-ssm folders, which ship none).
# Usage: DEADLINE=400 bash docs/results/2026-12-08a_pytorch_checkpoints/call.sh
set -u
here=docs/results/2026-12-08a_pytorch_checkpoints
BUILD_TARGETS="mamba-codesign test_io test_model test_config test_data" source scripts/gpu_perf_prelude.sh
for t in "test_io PytorchCheckpoint.*:Safetensors*" "test_model MambaSsm*:Checkpoint.*" "test_config ModelConfig.*" \
         "test_data VocabMap.*"; do
  set -- $t
  timeout 120 build-gpu/tests/$1 --gtest_filter="$2" > $R/$1.log 2>&1
  echo "$1 rc=$? ($(el) s) $(grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED' $R/$1.log | tr '\n' ' ')"
done
ck=/tmp/ck conv=/tmp/conv bin=build-gpu/mamba-codesign
python3 $here/make_checkpoints.py /tmp/shared/fixtures/hf_mamba_tiny $ck 2>&1 | tee $R/make.log
for d in ssm_f32 ssm_p4 ssm_bf16 ssm_legacy; do cp .gpu/hf_gpt2_tokenizer.json $ck/$d/tokenizer.json; done
ref=/tmp/shared/fixtures/hf_mamba_tiny/reference.json
prompt=$(python3 -c "import json;print(','.join(map(str,json.load(open('$ref'))['prompt_ids'])))")
want=$(python3 -c "import json;print(','.join(map(str,json.load(open('$ref'))['greedy_ids'])))")
steps=$(python3 -c "import json;print(json.load(open('$ref'))['max_new_tokens'])")
for d in ssm_f32 ssm_p4 ssm_bf16 hf_sharded ssm_legacy; do
  for dev in cpu cuda; do
    got=$($bin generate --model $ck/$d --prompt-ids $prompt --max-new-tokens $steps --greedy --device $dev 2>$R/gen-$d-$dev.err | tail -1)
    echo "generate $d $dev rc=${PIPESTATUS[0]}: $([[ "$got" == "$want" ]] && echo 'reference greedy ids' || echo "got '$got' want '$want'") $(head -c 300 $R/gen-$d-$dev.err)"
  done
  $bin convert --model $ck/$d --out $conv/$d --dtype $([[ $d == ssm_bf16 ]] && echo bfloat16 || echo float32) > $R/convert-$d.log 2>&1
  echo "convert $d rc=$? $(tail -c 300 $R/convert-$d.log)"
done
python3 $here/compare.py $ck $conv 2>&1 | tee $R/compare.log
# The other way: our mamba-ssm folder through torch.load.
$bin convert --model /tmp/shared/fixtures/hf_mamba_tiny --out /tmp/ours_ssm --format mamba-ssm > $R/convert-ours.log 2>&1
echo "convert --format mamba-ssm rc=$?"
python3 $here/load_ours.py /tmp/shared/fixtures/hf_mamba_tiny /tmp/ours_ssm 2>&1 | tee $R/load_ours.log
$bin info --model $ck/ssm_f32 > $R/info.json 2>&1; echo "info rc=$?"; head -c 400 $R/info.json; echo
pack
echo "done ($(el) s)"
