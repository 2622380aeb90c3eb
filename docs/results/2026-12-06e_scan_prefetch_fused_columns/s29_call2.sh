# Twenty-ninth session, call 2: where a batch-1 graph decode token goes on this card, kernel by kernel, with the
# overlapped launches off (each kernel's own duration) and on (what runs): 130M and 370M, bf16.
# Usage on the device (carry .gpu): DEADLINE=300 bash .gpu/s29_call2.sh
set -u
BUILD_TARGETS="mamba-codesign" source scripts/gpu_perf_prelude.sh
bin=build-gpu/mamba-codesign
for p in mamba-130m mamba-370m; do
  [[ -d /tmp/$p ]] || $bin init --preset $p --out /tmp/$p > /dev/null
  for ov in off on; do
    (( $(left) > 30 )) || break 2
    timeout 60 $bin --decode-overlap $ov profile --model /tmp/$p --device cuda --prefill "" --decode-batch 1 \
      --decode-mode graph --decode-steps 16 --iters 20 --trace $R/$p-b1-$ov.json --out $R/$p-b1-$ov-profile.json > /tmp/d.log 2>&1
    echo "$p b1 overlap $ov rc=$? ($(el) s)"; grep -m2 -i error /tmp/d.log
    python3 -c "
import json
d = json.load(open('$R/$p-b1-$ov-profile.json'))
for c in d['cases']: print(c['label'], '%.4f ms per token' % (c['results'][0]['summary_ms']['p50'] / 16))"
    python3 scripts/trace_kernels.py $R/$p-b1-$ov*.decode*.json > $R/$p-b1-$ov-kernels.txt 2>&1; head -12 $R/$p-b1-$ov-kernels.txt
    xz -9 $R/$p-b1-$ov*.decode*.json 2>/dev/null
  done
done
pack; echo "done ($(el) s)"
