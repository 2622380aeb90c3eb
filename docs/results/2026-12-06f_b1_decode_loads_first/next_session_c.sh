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
source "$(dirname "$0")/b1_decode_ab.sh"  # measure, setc
measure off-a; pack
(( $(left) > 150 )) && { setc kOneRowSlicePairs true; measure pairs-a; pack; }
(( $(left) > 150 )) && { setc kOneRowSlicePairs false; measure off-b; pack; }
if (( $(left) > 60 )); then
  timeout $(( $(left) - 15 )) build-gpu/dev/gemm_lab --rows 1 --reps 200 > $R/gemm_lab_rows1.txt 2>&1
  echo "gemm_lab rc=$? ($(el) s)"; grep -E "FAIL|in_proj.*(library|cuBLAS \(Gemm)" $R/gemm_lab_rows1.txt | head -30
fi
pack; echo "done ($(el) s)"
