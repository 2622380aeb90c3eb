# Thirtieth session, call C (on call A's / B's warm machine and build-gpu): kOneRowSlicePairs — the plain one-row
# product (out_proj, x_proj) loading two inner slices before summing either, written off in the twenty-ninth
# session — against off, twice, with each kernel's own time (trace, overlapped launches off); then dev/gemm_lab
# --rows 1 (the fused kernel's lab versions beside the plain product; built in call A). Adopting the pairs needs
# the whole GPU suite run with them on (the last step here, when they are on).
# Usage on the device (carry .gpu): DEADLINE=500 bash .gpu/next_session_c.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( ${DEADLINE:-500} - $(date +%s) + t0 )); }
R=/tmp/resC; mkdir -p $R; pack() { tar -czf $OUT/resultsC.tgz -C $R . ; }
export MCD_ASSETS_DIR=$PWD/.gpu/gpt2 MCD_SHARED_DIR=/tmp/shared
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt; bash scripts/source_hash.sh | tee -a $R/gpu.txt
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null; done
measure() {  # tag
  for p in mamba-130m mamba-370m; do
    timeout 60 $bin profile --model /tmp/$p --device cuda --prefill "" --decode-batch 1 --decode-mode graph \
      --decode-steps 64 --iters 30 --out $R/b1-$p-$1.json > /tmp/d.log 2>&1
    echo "$1 $p rc=$? ($(el) s) $(python3 -c "
import json
d = json.load(open('$R/b1-$p-$1.json'))
print(' '.join('%.4f ms per token' % (c['results'][0]['summary_ms']['p50'] / 64) for c in d['cases']))")"
    timeout 60 $bin --decode-overlap off profile --model /tmp/$p --device cuda --prefill "" --decode-batch 1 \
      --decode-mode graph --decode-steps 16 --iters 10 --trace $R/tr-$p-$1.json --out /tmp/tr.json > /dev/null 2>&1
    python3 scripts/trace_kernels.py $R/tr-$p-$1*.decode*.json > $R/tr-$p-$1-kernels.txt 2>&1
    grep -E "add_norm|decode_linear|scan_step" $R/tr-$p-$1-kernels.txt; rm -f $R/tr-$p-$1*.decode*.json
  done
}
setc() {  # NAME VALUE: set decode_linear.cu's constant, rebuild the CLI
  sed -i "s/^constexpr bool $1 = [a-z]*;/constexpr bool $1 = $2;/" src/ops/cuda/decode_linear.cu
  cmake --build build-gpu --target mamba-codesign -j16 > /tmp/rb.log 2>&1; echo "rebuild $1=$2 rc=$? ($(el) s)"; }
measure off-a; pack
(( $(left) > 150 )) && { setc kOneRowSlicePairs true; measure pairs-a; pack; }
(( $(left) > 150 )) && { setc kOneRowSlicePairs false; measure off-b; pack; }
if (( $(left) > 60 )); then
  timeout $(( $(left) - 15 )) build-gpu/dev/gemm_lab --rows 1 --reps 200 > $R/gemm_lab_rows1.txt 2>&1
  echo "gemm_lab rc=$? ($(el) s)"; grep -E "FAIL|in_proj.*(library|cuBLAS \(Gemm)" $R/gemm_lab_rows1.txt | head -30
fi
pack; echo "done ($(el) s)"
