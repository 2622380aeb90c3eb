#!/usr/bin/env bash
# Builds on a GPU machine with no network: PyTorch's own LibTorch (CUDA), sm_90, Ninja, into
# build-gpu/. Needs the packages that machine image has (CMake, nvcc, yaml-cpp, nlohmann-json,
# CLI11, GoogleTest, Google Benchmark) and python3 with torch; fetches nothing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MCD_BUILD_DIR:-$repo/build-gpu}"
prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DMCD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" "$@"
# MCD_BUILD_TARGETS: build only these targets (space-separated), e.g. the CLI for a run without tests.
cmake --build "$build" -j"$(nproc)" ${MCD_BUILD_TARGETS:+--target $MCD_BUILD_TARGETS}
