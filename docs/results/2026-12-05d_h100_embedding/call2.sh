# Twentieth session, call 2 (warm machine after t1.sh): 130M A/B second round (old first), 370M A/B,
# then the whole GPU suite on this tree.
set -u
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
out=$OUT/c2; mkdir -p $out /tmp/m; t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $out/gpu.txt
NEW=build-gpu/mamba-codesign OLD=/tmp/old/build-gpu/mamba-codesign
ls -la $NEW $OLD || exit 1
for s in 0 25 50 75; do [[ -d /tmp/m/370-s$s ]] || $NEW init --preset mamba-370m --sparsity 0.$s --out /tmp/m/370-s$s > /dev/null || echo "init s$s failed"; done
prof() {  # label binary preset-prefix [extra]
  timeout 200 $2 profile --model /tmp/m/$3-s0 --model /tmp/m/$3-s25 --model /tmp/m/$3-s50 --model /tmp/m/$3-s75 --device cuda \
    --prefill '' --decode-batch '' --train-batch 8x2048 --train-mode both --iters 20 --out $out/$1.json "${@:4}" > $out/$1.log 2>&1
  echo "$1 rc=$? ($(el) s)"
  python3 - "$out/$1.json" <<'PY'
import json,sys
d=json.load(open(sys.argv[1]))
for c in d["cases"]:
    rows=[]
    for r in c["results"]:
        q=r.get("ratio_to_model0")
        rows.append(f'{r["summary_ms"]["p50"]:.2f}' + (f' ({q["ratio_of_medians"]:.3f})' if q else ''))
    print(" ", c["label"], " | ".join(rows))
PY
}
prof old130b $OLD 130
prof new130b $NEW 130
prof new370a $NEW 370
prof old370a $OLD 370
timeout 260 build-gpu/tests/test_gpu > $out/test_gpu.log 2>&1; echo "test_gpu rc=$? ($(el) s)"
grep -E "^\[  (PASSED|FAILED) |FAILED  \]|SKIPPED \]" $out/test_gpu.log | head -30
echo "done ($(el) s)"
