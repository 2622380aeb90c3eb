#!/usr/bin/env bash
# Plots a run's metrics.jsonl (training loss per logged step, validation loss per evaluation) to
# <run>/loss.png with gnuplot, and writes the same numbers to <run>/loss.csv.
# Usage: scripts/plot_metrics.sh RUN_DIR
set -euo pipefail
run="${1:?usage: plot_metrics.sh RUN_DIR}"
metrics="$run/metrics.jsonl"
[[ -f "$metrics" ]] || { echo "plot_metrics: $metrics not found" >&2; exit 1; }
num='-?[0-9.]+([eE][-+]?[0-9]+)?'
extract() {  # extract KEY -> "step value" lines of records that have KEY
  grep -E "\"$1\":" "$metrics" | sed -E "s/.*\"$1\":($num).*\"step\":($num).*/\3 \1/; s/.*\"step\":($num).*\"$1\":($num).*/\1 \3/"
}
extract loss > "$run/train_loss.dat"
extract val_loss > "$run/val_loss.dat"
{ echo "step,train_loss"; tr ' ' ',' < "$run/train_loss.dat"; } > "$run/loss.csv"
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 900,540 noenhanced
set output "$run/loss.png"
set title "$run"
set xlabel "step"; set ylabel "loss (nats/token)"; set grid
plot "$run/train_loss.dat" using 1:2 with lines lw 2 title "train", \
     "$run/val_loss.dat" using 1:2 with linespoints lw 2 pt 7 title "validation"
GP
  echo "plot_metrics: wrote $run/loss.png"
else
  echo "plot_metrics: gnuplot not installed; numbers in $run/loss.csv"
fi
