#!/usr/bin/env bash
# Inference and end-to-end pre-training side by side with mamba-ssm, in one run on one GPU (issues
# 14 and 15's acceptance; PERF.md: a claim is a ratio measured in one run on one card). Builds this
# tree (build-gpu/) when not built, then, per part named in PARTS (default: tests,infer,pruned,pretrain;
# infer = ours_infer,theirs_infer + ours again, pretrain = ours_pretrain,theirs_pretrain, so that one
# device call can run ours and the next, on the same warm machine, theirs):
#   tests    the decode/parity GPU tests;
#   lab      (not a default) the scan lab, dev/scan_lab: every version checked, then timed at
#            (1, 4096, 1536), time-contiguous and channel-last, and at (1, 4096, 2048); the block
#            forward's versions also at the pruned widths E = 384, 512, 768, 1024;
#   gemm_lab (not a default) the decode-product lab, dev/gemm_lab: tensor-core products at 8–64 rows
#            against cuBLAS and decode_linear, checked, then timed;
#   infer    ours: `profile` of mamba-130m and mamba-370m (random weights, bf16): prefill 1x1024 and
#            1x4096 (eager and CUDA graph), CUDA-graph decode at batch 1 and 64; `bench_ops` (scan forward at (1, 4096, 1536));
#            theirs: the harness's prefill, decode and ops cases; ours again after theirs;
#   overlap_ab, fused_conv_ab, fused_head_ab (not defaults) ours: graph decode at batch 1
#            and 64 with `--decode-overlap` (`--decode-fused-conv`, `--decode-fused-head`)
#            off and on, alternating processes, two rounds (the option's effect, one run);
#   prefill_trace (not a default) ours: one 1x4096 prefill of mamba-130m and mamba-370m, eager and a
#            CUDA-graph replay, under the Kineto profiler (`profile --trace`), its GPU time by kernel
#            (scripts/trace_kernels.py);
#   decode_trace (not a default) ours: the same for the graph decode at batch 64 and 1 (one sample of its tokens);
#   train_trace (not a default) ours: the same for one 8x2048 training step, dense and 75 % pruned (what
#            does not shrink with the width, issue 13);
#   pruned   ours: dense and 25/50/75 % uniformly pruned (`init --sparsity`), interleaved in one
#            `profile` per preset: prefill 1x4096 (eager, as generate runs it, and one CUDA-graph replay,
#            without the host's launch time), graph decode at batch 64, training step 8x2048 (eager and
#            with its forward and backward one CUDA-graph replay);
#   pretrain ours: `mamba-codesign pretrain` 8 × 2048 on enwiki2015/AA (80 steps): default, the low_memory
#            scan plan, the in_proj input and weight casts recomputed in the backward (recompute),
#            all three (memory_options), and each step's forward and backward as a CUDA graph
#            (cuda_graphs: train.cuda_graphs); theirs: the harness's pretrain case (issue 15's loop).
# Theirs runs only when `mamba_ssm` and `causal_conv1d` are importable (installed or on PYTHONPATH);
# this repository ships neither their code nor a recipe that builds them. MCD_WAIT_FOR=FILE waits
# (≤ 12 min) for FILE first, for a build running beside. OURS_OPTIONS: global options for our infer
# runs (e.g. "--decode-fused-head off"), recorded in gpu.txt. Ends with summary.md (tables and ratios).
# Usage: scripts/vs_mamba_ssm.sh OUT [ENWIKI_AA_DIR]
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:?usage: vs_mamba_ssm.sh OUT [ENWIKI_AA_DIR]}" && cd "$1" && pwd)"
enwiki="${2:-}"
parts=",${PARTS:-tests,infer,pruned,pretrain},"
has() { [[ $parts == *",$1,"* ]]; }
cd "$repo"
bin=build-gpu/mamba-codesign
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$out/gpu.txt"
git log -1 --format='commit %h %s' 2>/dev/null | tee -a "$out/gpu.txt"
bash scripts/source_hash.sh | tee -a "$out/gpu.txt"  # the tree itself (the device's git metadata may be stale)
[[ -n ${OURS_OPTIONS:-} ]] && echo "our infer options: $OURS_OPTIONS" | tee -a "$out/gpu.txt"
if [[ ! -x $bin || ! -x build-gpu/tests/test_gpu || ! -x build-gpu/bench/bench_ops ]]; then
  t0=$(date +%s)
  MCD_BUILD_TARGETS="mamba-codesign test_gpu bench_ops" MCD_BUILD_DIR="$repo/build-gpu" bash scripts/build_gpu.sh \
    >"$out/build.log" 2>&1
  echo "build rc=$? ($(( $(date +%s) - t0 )) s)"; grep -m3 -A8 " error" "$out/build.log"
fi
if has tests; then
  timeout 300 build-gpu/tests/test_gpu \
    --gtest_filter='ScanKernelModes.*:Sizes/ScanKernel.*:GpuAddRmsNorm.*:GpuTrain.*:GpuDecodeStep.*:GpuDecodeLinear.*:GpuCodesign.Graph*:GpuCodesign.Bf16Decode*:GpuCodesign.Overlapped*:GpuCodesign.FusedConv*:GpuCodesign.FusedHead*:GpuCodesign.PrefetchAhead*:GpuSeams.*:GpuParity.*:GpuGraph*' \
    >"$out/test_gpu_decode.log" 2>&1
  echo "decode tests rc=$?: $(grep -E '^\[  (PASSED|FAILED) ' "$out/test_gpu_decode.log" | tr '\n' ' ')"
  grep -E "agreement|FAILED  \]" "$out/test_gpu_decode.log" | head -20
fi
if has lab; then  # the scan lab (dev/scan_lab, -DMCD_BUILD_DEV=ON): every version checked, then timed at B = 1
  cmake -S . -B build-gpu -DMCD_BUILD_DEV=ON >"$out/lab_build.log" 2>&1 && cmake --build build-gpu --target scan_lab \
    -j"$(nproc)" >>"$out/lab_build.log" 2>&1
  echo "scan_lab build rc=$?"
  for flags in "" "--channel-last"; do
    timeout 120 build-gpu/dev/scan_lab --shape 1,4096,1536,16 $flags >>"$out/scan_lab.txt" 2>&1
    echo "scan_lab (1, 4096, 1536) ${flags:-time-contiguous} rc=$?"
  done
  # 370M's width: the block forward's waves differ there (PERF_NOTES, "Seventh session").
  timeout 120 build-gpu/dev/scan_lab --shape 1,4096,2048,16 >>"$out/scan_lab.txt" 2>&1
  echo "scan_lab (1, 4096, 2048) time-contiguous rc=$?"
  # The pruned models' prefill widths (130M / 370M at 75 % and 50 %): the block forward's versions only,
  # the library's 37 / 34 / 45 / 48 among them (PERF_NOTES, "Thirteenth session", Next 4).
  for e in 384 512 768 1024; do
    timeout 90 build-gpu/dev/scan_lab --shape 1,4096,$e,16 \
      --only 13,14,15,16,17,18,19,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,54,55,56,57 \
      >>"$out/scan_lab.txt" 2>&1
    echo "scan_lab (1, 4096, $e) block forward versions rc=$?"
  done
  grep -E "FAIL|^check:|^time" "$out/scan_lab.txt"
fi
if has gemm_lab; then  # the decode-product lab (dev/gemm_lab): tensor-core versions against cuBLAS, M = 8 … 64
  cmake -S . -B build-gpu -DMCD_BUILD_DEV=ON >"$out/gemm_lab_build.log" 2>&1 && cmake --build build-gpu --target gemm_lab \
    -j"$(nproc)" >>"$out/gemm_lab_build.log" 2>&1
  echo "gemm_lab build rc=$?"
  timeout 200 build-gpu/dev/gemm_lab >"$out/gemm_lab.txt" 2>&1
  echo "gemm_lab rc=$?"; grep -E "FAIL|^time" "$out/gemm_lab.txt" | head -80
fi
mkdir -p "$out/models" "$out/profiles"
models() {  # preset: dense and pruned random models
  for s in 0 25 50 75; do
    [[ -d $out/models/$1-s$s ]] && continue
    "$bin" init --preset "$1" --sparsity "0.$s" --out "$out/models/$1-s$s" >/dev/null || echo "init $1 s$s failed"
  done
}
theirs_ok=0
wait_theirs() {
  if [[ -n "${MCD_WAIT_FOR:-}" ]]; then
    for _ in $(seq 1 144); do [[ -e $MCD_WAIT_FOR ]] && break; sleep 5; done
  fi
  python3 -c 'import mamba_ssm, causal_conv1d' 2>/dev/null && theirs_ok=1
  [[ $theirs_ok == 1 ]] || echo "mamba_ssm not importable: their rows skipped"
}
ours_infer() {  # round
  for p in mamba-130m mamba-370m; do
    # shellcheck disable=SC2086  # OURS_OPTIONS: words
    timeout 200 "$bin" ${OURS_OPTIONS:-} profile --model "$out/models/$p-s0" --device cuda --prefill 1x1024,1x4096 --prefill-mode both \
      --decode-batch 1,64 \
      --decode-mode graph --decode-steps 64 --iters 30 --out "$out/profiles/infer-$p-$1.json" \
      >"$out/profiles/infer-$p-$1.log" 2>&1
    echo "ours infer $p round $1 rc=$?"
  done
  timeout 200 build-gpu/bench/bench_ops --no-composite --layout both >"$out/bench_ops-$1.jsonl" 2>"$out/bench_ops-$1.err"
  echo "bench_ops round $1 rc=$?"
}
if has infer || has ours_infer; then  # ours, round ROUND (default 1)
  models mamba-130m; models mamba-370m
  ours_infer "${ROUND:-1}"
fi
if has infer || has theirs_infer; then
  wait_theirs
  if [[ $theirs_ok == 1 ]]; then
    PYTHONUNBUFFERED=1 timeout 400 python3 bench/compare/mamba_ssm_side_by_side.py --check --cases prefill,decode,ops \
      --models 130m,370m --out "$out/theirs.jsonl" >/dev/null 2>"$out/theirs.err"
    echo "theirs (prefill, decode, ops) rc=$?"; tail -3 "$out/theirs.err"
    has infer && ours_infer 2
  fi
fi
traced() {  # TAG GLOB LINES ARGS…: `mamba-codesign ARGS…` (a profile) under Kineto into traces/TAG*, then
            # its GPU time by kernel (scripts/trace_kernels.py over the TAG.GLOB* traces) in TAG-kernels.txt
  local tag=$1 glob=$2 lines=$3
  shift 3
  timeout 150 "$bin" "$@" --trace "$out/traces/$tag.json" --out "$out/traces/$tag-profile.json" \
    >"$out/traces/$tag.log" 2>&1
  echo "trace $tag rc=$?"
  python3 scripts/trace_kernels.py "$out/traces/$tag".$glob*.json >"$out/traces/$tag-kernels.txt"
  grep -A"$lines" "^/" "$out/traces/$tag-kernels.txt"
}
if has prefill_trace; then  # where a B = 1 prefill's GPU time goes, kernel by kernel
  mkdir -p "$out/traces"
  for p in mamba-130m mamba-370m; do
    models "$p"
    # shellcheck disable=SC2086  # OURS_OPTIONS: words
    traced "$p" prefill_1x4096 12 ${OURS_OPTIONS:-} profile --model "$out/models/$p-s0" --device cuda --prefill 1x4096 \
      --prefill-mode both --decode-batch "" --iters 5
  done
fi
if has decode_trace; then  # where a graph decode step's GPU time goes, kernel by kernel
  mkdir -p "$out/traces"
  for p in mamba-130m mamba-370m; do
    models "$p"
    for b in 64 1; do  # batch 64: the throughput target; batch 1: the latency target
      # shellcheck disable=SC2086  # OURS_OPTIONS: words
      traced "$p-decode$([[ $b == 64 ]] || echo "-b$b")" decode 15 ${OURS_OPTIONS:-} profile \
        --model "$out/models/$p-s0" --device cuda --prefill "" --decode-batch "$b" --iters 20
    done
  done
fi
if has train_trace; then  # what does not shrink with the width: one 8x2048 training step, dense and 75 % pruned
  mkdir -p "$out/traces"
  for p in mamba-130m mamba-370m; do
    models "$p"
    for s in 0 75; do
      traced "$p-s$s-train" train 19 profile --model "$out/models/$p-s$s" --device cuda --prefill "" --decode-batch "" \
        --train-batch 8x2048 --iters 5
    done
  done
fi
decode_ab() {  # FLAG: graph decode with the global option FLAG off and on, alternating processes, two rounds
  for p in mamba-130m mamba-370m; do
    models "$p"
    for r in 1 2; do
      for v in off on; do
        timeout 120 "$bin" "$1" "$v" profile --model "$out/models/$p-s0" --device cuda --prefill "" --decode-batch 1,64 \
          --decode-mode graph --decode-steps 64 --iters 30 --out "$out/profiles/ab${1#-}-$p-$v-$r.json" \
          >"$out/profiles/ab${1#-}-$p-$v-$r.log" 2>&1
        echo "$1 $v $p round $r rc=$?"
      done
    done
  done
}
has overlap_ab && decode_ab --decode-overlap
has fused_conv_ab && decode_ab --decode-fused-conv
has fused_head_ab && decode_ab --decode-fused-head
if has pruned; then
  for p in mamba-130m mamba-370m; do
    models "$p"
    timeout 300 "$bin" profile --model "$out/models/$p-s0" --model "$out/models/$p-s25" --model "$out/models/$p-s50" \
      --model "$out/models/$p-s75" --device cuda --prefill 1x4096 --prefill-mode both --decode-batch 64 --decode-mode graph \
      --decode-steps 64 --train-batch 8x2048 --train-mode both --iters 20 --out "$out/profiles/pruned-$p.json" \
      >"$out/profiles/pruned-$p.log" 2>&1
    echo "ours pruned $p rc=$?"
  done
fi
ptrain() {  # label preset [global options]
  bash scripts/pretrain_timed_run.sh "$bin" "$2" "$enwiki" "$out/tokens" "$out/pretrain/$1-$2" "${@:3}"
  echo "ours pretrain $1 $2 rc=$?"
}
if (has pretrain || has ours_pretrain) && [[ -n $enwiki ]]; then
  for p in mamba-130m-gpt2 mamba-370m; do
    ptrain default "$p"; ptrain low_memory "$p" --scan-plan low_memory
    ptrain recompute "$p" --save-in-proj-input off --keep-cast-weights off
    ptrain memory_options "$p" --scan-plan low_memory --save-in-proj-input off --keep-cast-weights off
    ptrain cuda_graphs "$p" -- --set train.cuda_graphs=true
  done
fi
if has pretrain || has theirs_pretrain; then
  [[ $theirs_ok == 1 ]] || wait_theirs
  if [[ $theirs_ok == 1 ]]; then
    PYTHONUNBUFFERED=1 timeout 300 python3 bench/compare/mamba_ssm_side_by_side.py --cases pretrain --models 130m,370m \
      --out "$out/theirs.jsonl" >/dev/null 2>>"$out/theirs.err"
    echo "theirs (pretrain) rc=$?"
  fi
fi
python3 scripts/vs_mamba_ssm_summary.py "$out" | tee "$out/summary.md"
