# Sourced by next_session.sh and next_session_c.sh (both copied with it into .gpu/): the batch-1 decode A/B helpers.
# Needs bin (the CLI), R (the results folder) and el (seconds since the start).
# measure TAG: graph decode per token (P50 of 30 samples of 64 steps) for 130M and 370M, then each kernel's own time
#   from a trace with the overlapped launches off; init's random models in /tmp on first use.
# setc NAME VALUE...: set decode_linear.cu's bool constants, rebuild the CLI.
measure() {
  for p in mamba-130m mamba-370m; do
    [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null
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
setc() {
  while (( $# >= 2 )); do
    sed -i "s/^constexpr bool $1 = [a-z]*;/constexpr bool $1 = $2;/" src/ops/cuda/decode_linear.cu; shift 2
  done
  cmake --build build-gpu --target mamba-codesign -j16 > /tmp/rb.log 2>&1; echo "rebuild rc=$? ($(el) s)"
}
