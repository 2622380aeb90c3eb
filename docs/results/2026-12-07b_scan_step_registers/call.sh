# Thirty-fourth session, call C: the batch scan step's registers against its waves. The library's kernel (64 registers
# at the model's batch-64 instantiation, 8 blocks of 128 per SM, ~2.9 waves at (64, 1536)) built with
# __launch_bounds__ min blocks 1 (as now) / 10 / 12 / 16 (48 / 40 / 32 registers, with spills) and with the rank's
# vector loads off (46 registers), and 2 or 1 lanes per channel (8 / 16 states per thread: 88 / 110 registers; 2 lanes
# at min blocks 6: 80), each in dev/scan_lab/scan_step_rows.cu (its library kernel also checked against float64);
# then the winner's batch-64 A/B in the model, ncu on the library kernel (min 1) and M = 12, and on the model's kernels.
# Usage (carry .gpu): DEADLINE=450 bash docs/results/2026-12-07b_scan_step_registers/call.sh
set -u
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
R=/tmp/res; mkdir -p $R; pack() { tar -czf $OUT/results.tgz -C $R . ; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $R/gpu.txt
bash scripts/source_hash.sh | tee -a $R/gpu.txt; git diff --stat >> $R/gpu.txt 2>/dev/null
# The two lab switches (compile-time only, never committed to the library): applied here unless already in the tree.
grep -q MCD_LAB_SCAN_STEP src/ops/cuda/decode_step.cu || git apply docs/results/2026-12-07b_scan_step_registers/scan_step_lab_switches.patch 2>/dev/null || patch -p1 < docs/results/2026-12-07b_scan_step_registers/scan_step_lab_switches.patch
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
b() { $NVCC -std=c++17 -O3 -arch=sm_90 --use_fast_math -lineinfo --expt-relaxed-constexpr -I src "$@" dev/scan_lab/scan_step_rows.cu; }
b -DMCD_LAB_SCAN_STEP_MIN_BLOCKS=1 -o /tmp/ssr1 > $R/b1.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_MIN_BLOCKS=10 -o /tmp/ssr10 > $R/b10.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_MIN_BLOCKS=12 -o /tmp/ssr12 > $R/b12.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_MIN_BLOCKS=16 -o /tmp/ssr16 > $R/b16.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_NO_RANK_VEC4 -o /tmp/ssrnv > $R/bnv.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_NO_RANK_VEC4 -DMCD_LAB_SCAN_STEP_MIN_BLOCKS=12 -o /tmp/ssrnv12 > $R/bnv12.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_LANES=2 -o /tmp/ssrl2 > $R/bl2.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_LANES=2 -DMCD_LAB_SCAN_STEP_MIN_BLOCKS=6 -o /tmp/ssrl2m6 > $R/bl2m6.log 2>&1 &
b -DMCD_LAB_SCAN_STEP_LANES=1 -o /tmp/ssrl1 > $R/bl1.log 2>&1 &
wait; echo "built ($(el) s)"; ls -la /tmp/ssr*
for round in 1; do
  for v in 1 10 12 16 nv nv12 l2 l2m6 l1; do
    timeout 60 /tmp/ssr$v --reps 40 > $R/ssr$v-$round.txt 2>&1
    echo "$v round $round ($(el) s): $(grep -E 'round 1  library' $R/ssr$v-$round.txt | sed -E 's/ +/ /g' | cut -c1-200 | tr '\n' ';')"
  done
done
grep -h "check:" $R/ssr*-1.txt
pack

# Pick the lab's winner at (64, 1536): the library kernel's median over both rounds against min-blocks 1's.
win=$(python3 - <<'PY'
import re,glob,statistics
def med(v):
    xs=[]
    for f in glob.glob(f"/tmp/res/ssr{v}-*.txt"):
        for l in open(f):
            m=re.search(r"B64 E1536 N16 R48 round \d  library.*median ([0-9.]+) us",l)
            if m: xs.append(float(m.group(1)))
    return statistics.mean(xs) if xs else 1e9
base=med("1"); best=min(["10","12","16","nv","nv12","l2","l2m6","l1"],key=med)
print(best if med(best) < 0.93*base else "none", base, med(best))
PY
)
echo "winner: $win ($(el) s)"; set -- $win
if [[ $1 != none ]] && (( $(el) + 260 < ${DEADLINE:-450} )); then
  export MCD_ASSETS_DIR=$PWD/.gpu/gpt2
  MCD_BUILD_TARGETS="mamba-codesign" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build.log 2>&1
  echo "build base rc=$? ($(el) s)"; cp build-gpu/mamba-codesign /tmp/mcd_old
  cp src/ops/cuda/decode_step.cu /tmp/decode_step_before.cu; cp src/ops/cuda/decode_step_params.h /tmp/decode_step_params_before.h
  case $1 in
    nv) sed -i 's|^#ifdef MCD_LAB_SCAN_STEP_NO_RANK_VEC4|#if 1|' src/ops/cuda/decode_step.cu ;;
    nv12) sed -i 's|^#ifdef MCD_LAB_SCAN_STEP_NO_RANK_VEC4|#if 1|; s|^#define MCD_LAB_SCAN_STEP_MIN_BLOCKS 1|#define MCD_LAB_SCAN_STEP_MIN_BLOCKS 12|' src/ops/cuda/decode_step.cu ;;
    l2|l1) sed -i "s|^#define MCD_LAB_SCAN_STEP_LANES 4|#define MCD_LAB_SCAN_STEP_LANES ${1#l}|" src/ops/cuda/decode_step_params.h ;;
    l2m6) sed -i "s|^#define MCD_LAB_SCAN_STEP_LANES 4|#define MCD_LAB_SCAN_STEP_LANES 2|" src/ops/cuda/decode_step_params.h
          sed -i "s|^#define MCD_LAB_SCAN_STEP_MIN_BLOCKS 1|#define MCD_LAB_SCAN_STEP_MIN_BLOCKS 6|" src/ops/cuda/decode_step.cu ;;
    *) sed -i "s|^#define MCD_LAB_SCAN_STEP_MIN_BLOCKS 1|#define MCD_LAB_SCAN_STEP_MIN_BLOCKS $1|" src/ops/cuda/decode_step.cu ;;
  esac
  { diff -u /tmp/decode_step_before.cu src/ops/cuda/decode_step.cu; diff -u /tmp/decode_step_params_before.h src/ops/cuda/decode_step_params.h; } > $R/variant.diff
  MCD_BUILD_TARGETS="mamba-codesign" MCD_BUILD_DIR=$PWD/build-gpu bash scripts/build_gpu.sh > /tmp/build2.log 2>&1
  echo "build variant rc=$? ($(el) s)"; cp build-gpu/mamba-codesign /tmp/mcd_new
  mkdir -p $R/p /tmp/m
  for p in mamba-130m-gpt2 mamba-370m; do /tmp/mcd_old init --preset $p --out /tmp/m/$p > /dev/null; done
  for round in 1 2; do for p in mamba-130m-gpt2 mamba-370m; do for b in old new; do
    (( $(el) + 25 > ${DEADLINE:-450} )) && break 3
    timeout 30 /tmp/mcd_$b profile --model /tmp/m/$p --device cuda --prefill "" --decode-batch 64 --decode-mode graph \
      --decode-steps 32 --iters 20 --out $R/p/$b-$p-$round.json > $R/p/$b-$p-$round.log 2>&1
    echo "$p $b round $round rc=$? ($(el) s): $(python3 -c "import json;d=json.load(open('$R/p/$b-$p-$round.json'));print([(c['label'],c['results'][0]['per_token_ms_p50']) for c in d['cases']])" 2>&1 | tail -c 120)"
  done; done; done
  python3 scripts/profile_before_after.py $R/p | tee $R/ab.md
fi
pack
(( $(el) < ${NCU_BEFORE:-150} )) && { if [[ -n "$NCU" ]]; then
  for v in 1 12; do
    timeout 60 $NCU --kernel-name regex:scan_step_kernel --launch-skip 20 --launch-count 1 --set full -o $R/ncu$v /tmp/ssr$v --reps 40 > $R/ncu$v.log 2>&1
    echo "ncu $v rc=$? ($(el) s)"
    $NCU -i $R/ncu$v.ncu-rep --page details --csv > $R/ncu$v-details.csv 2>&1
    grep -E '"(Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per Thread|Theoretical Occupancy|Waves Per SM|L2 Hit Rate|Compute \(SM\) Throughput)"' $R/ncu$v-details.csv | awk -F'","' '{print $(NF-2)": "$NF}' | head -12
    rm -f $R/ncu$v.ncu-rep.bak
  done
else echo "no ncu"; fi }
# With time left and the CLI built: ncu on the model's own batch-64 decode kernels inside the graph (scan step, conv
# step, norm), one launch each after warm-up, 130M.
if [[ -x /tmp/mcd_old && -n "$NCU" ]] && (( $(el) + 90 < ${DEADLINE:-450} )); then
  timeout 80 $NCU --kernel-name regex:"scan_step_kernel|conv_step_kernel|add_norm_fwd_vec_kernel" --launch-skip 300 \
    --launch-count 3 --set full -o $R/ncu_model /tmp/mcd_old profile --model /tmp/m/mamba-130m-gpt2 --device cuda \
    --prefill "" --decode-batch 64 --decode-mode graph --decode-steps 8 --iters 2 --out /tmp/ncu_profile.json > $R/ncu_model.log 2>&1
  echo "ncu model rc=$? ($(el) s)"
  $NCU -i $R/ncu_model.ncu-rep --page details --csv > $R/ncu_model-details.csv 2>&1
  grep -E '"(Duration|DRAM Throughput|Achieved Occupancy|Registers Per Thread|Waves Per SM)"' $R/ncu_model-details.csv | awk -F'","' '{print $5" | "$(NF-2)": "$NF}' | cut -c1-160
fi
pack; echo "done ($(el) s)"
