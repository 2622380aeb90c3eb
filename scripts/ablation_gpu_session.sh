#!/usr/bin/env bash
# Device calls of the whole ablation (issue 19): `mamba-codesign run` of an experiment file
# (default configs/experiments/glue-small-gpu.yaml) on one GPU, resumable across calls. Expects
# .gpu/enwiki_aa.tar.xz (enwiki2015/AA), .gpu/glue5.tar.xz (glue/…) and .gpu/gpt2 carried into the
# repository root (see docs/glue.md; .gpu/wikitext2.tar.xz for the WikiText-2 validation), and $OUT. Each call:
#   unpack the data (once per machine) → build (incremental) → the experiment with this machine's
#   data paths → `run --jobs JOBS` (default 12) until BUDGET seconds after the call's start (the
#   run's process group is stopped then; the next call on the same machine resumes every started
#   stage from its checkpoints) → $OUT/bundle.tgz with progress, the run's log, every stage.json,
#   every result.json, the report folder and each stage log's last lines.
# A fresh machine (a chained call that did not find the warm one) starts over: its pre-training
# differs in rounding (bf16 on a GPU is not bit-reproducible), so its results are another run.
# Example: BUILD_TARGETS=mamba-codesign BUDGET=570 JOBS=12 bash scripts/ablation_gpu_session.sh [EXPERIMENT]
set -u
experiment=${1:-configs/experiments/glue-small-gpu.yaml}
source scripts/gpu_session_prelude.sh  # D, R, BIN, t; data unpacked, tree built
# The file's ../shared/data paths → this machine's copies.
sed -e "s#\.\./shared/data/enwiki2015#$D/enwiki2015#g; s#\.\./shared/data/glue#$D/glue#g; s#\.\./shared/data/wikitext2#$D/wikitext2#g" \
  "$experiment" > $D/experiment.yaml
# CUDA MPS (MPS=0 turns it off): the stages' processes then share the GPU's SMs instead of taking
# time slices; 12 small fine-tunings ran 1.5x faster with it (docs/results/2026-12-03_h200_finetune_graphs).
if [[ ${MPS:-1} == 1 ]] && command -v nvidia-cuda-mps-control > /dev/null; then
  nvidia-cuda-mps-control -d && t "MPS daemon started" || t "MPS daemon did not start: time slices"
fi
out_dir=$(sed -n 's/^out_dir: *//p' $D/experiment.yaml)
# Across sessions (docs/REPRODUCE.md): .gpu/carry/ holds an earlier session's bundle parts. Its
# finished fine-tunings' records are imported (the run skips a stage whose record has its key); the
# upstream stages run again, deterministically, and must give the same models: checked below
# against the carried hashes.
if [[ -f .gpu/carry/stages.tgz && ! -d $out_dir/stages ]]; then
  mkdir -p $out_dir && tar -xzf .gpu/carry/stages.tgz -C $out_dir --wildcards 'stages/finetune/*' &&
    t "imported $(find $out_dir/stages/finetune -name result.json | wc -l) finished fine-tunings"
fi
left=$(( ${BUDGET:-560} - ($(date +%s) - T0) - 30 ))
# Its own process group, so the deadline stops the stages' child processes too. Deterministic
# (DETERMINISTIC=off to turn it off): a later session re-creates the same models bit for bit.
setsid $BIN --threads 1 --deterministic ${DETERMINISTIC:-on} run --jobs ${JOBS:-12} $D/experiment.yaml > $R/run.log 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && (( $(date +%s) - T0 < ${BUDGET:-560} - 30 )); do sleep 2; done
if kill -0 $pid 2>/dev/null; then kill -TERM -- -$pid; sleep 3; kill -KILL -- -$pid 2>/dev/null; t "stopped at the deadline ($left s of running)"; fi
wait $pid 2>/dev/null; t "run ended: $(tail -1 $R/run.log | cut -c1-200)"
grep -c '"status": "done"' $out_dir/stages/*/stage.json $out_dir/stages/*/*/stage.json $out_dir/stages/*/*/*/*/stage.json 2>/dev/null | awk -F: '{s+=$2} END {print "stages done:", s}' | tee -a $R/progress.txt
# Every record and result, and what the report reads besides (profiles, importance files, the
# pre-training curves, the deployed models' configs), so that the report can be written again from the bundle alone.
( cd $out_dir && find stages -name stage.json -o -name result.json -o -path 'stages/report/*' -o -path 'stages/profile/*.json' \
    -o -path 'stages/prune/*/importance.json' -o -path 'stages/importance/*.json' \
    -o -path 'stages/pretrain/*/run/metrics.jsonl' -o -path 'stages/pretrain/*/run/summary.json' \
    -o -path 'stages/pretrain/*/run/final/config.json' -o -path 'stages/csp/*/model/config.json' \
    -o -path 'stages/prune/*/model/config.json' | tar -czf $R/stages.tgz -T - )
# The models every fine-tuning starts from, by content: what a later session must re-create. A
# line: sha256, path, the key of the stage that wrote it.
( cd $out_dir && for f in $(find stages/pretrain stages/prune stages/csp -name model.safetensors 2>/dev/null | sort); do
    key=$(sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' "$(echo $f | sed -E 's#/(model|run)/.*##')/stage.json" | head -1)
    echo "$(sha256sum < $f | cut -d' ' -f1)  $f  ${key:-?}"
  done ) > $R/model_hashes.txt
# Compared where both sessions have the file from a stage of the same key: a stage whose settings
# changed since (so its fine-tunings' keys changed too) ran again on purpose; listed, not compared.
if [[ -f .gpu/carry/model_hashes.txt ]]; then
  join -j 2 <(sort -k2,2 .gpu/carry/model_hashes.txt) <(sort -k2,2 $R/model_hashes.txt) > $R/model_hashes.joined
  # joined: path, carried sha, carried key, new sha, new key (a carried file without keys: path, sha, sha, key)
  awk 'NF == 5 && $3 == $5 { print $1, $2, $4 } NF == 4 { print $1, $2, $3 }' $R/model_hashes.joined > $R/model_hashes.common
  awk 'NF == 5 && $3 != $5 { print $1, "settings changed:", $3, "->", $5 }' $R/model_hashes.joined > $R/model_hashes.rerun
  awk '$2 != $3' $R/model_hashes.common > $R/model_hashes.diff
  if [[ -s $R/model_hashes.common && ! -s $R/model_hashes.diff ]]; then
    t "upstream models bit-identical to the carried session's ($(wc -l < $R/model_hashes.common) files): the imported fine-tunings stand"
  else
    t "UPSTREAM MODELS DIFFER from the carried session's (model_hashes.diff): the imported fine-tunings are not valid"
  fi
fi
for l in $(find $out_dir/stages -name log.txt); do echo "== $l"; tail -3 $l; done > $R/log_tails.txt
[[ ${MPS:-1} == 1 ]] && echo quit | nvidia-cuda-mps-control 2> /dev/null
cd $OUT && tar -czf bundle.tgz r && rm -rf r
